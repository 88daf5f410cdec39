package hqstore

import (
	"strconv"
	"testing"
)

func TestIsEventID(t *testing.T) {
	tests := []struct {
		id, register string
		seq          uint64
		want         bool
	}{
		{"r1-1", "r1", 1, true},
		{"r1-18446744073709551615", "r1", 1<<64 - 1, true},
		{"r1-01", "r1", 1, false},
		{"r1-2", "r1", 1, false},
		{"r1-1", "r2", 1, false},
		{"r1_1", "r1", 1, false},
		{"r1-10", "r1", 1, false},
		{"r1-", "r1", 1, false},
		{"r11", "r1", 1, false},
		{"", "r1", 1, false},
		{"a-b-7", "a-b", 7, true},
	}
	for _, tt := range tests {
		if got := isEventID(tt.id, tt.register, tt.seq); got != tt.want {
			t.Errorf("isEventID(%q, %q, %d) = %v, want %v", tt.id, tt.register, tt.seq, got, tt.want)
		}
	}
}

// FuzzIsEventID: the check without building the string agrees with
// building it.
func FuzzIsEventID(f *testing.F) {
	f.Add("r1-1", "r1", uint64(1))
	f.Add("r1-01", "r1", uint64(1))
	f.Add("x--5", "x-", uint64(5))
	f.Fuzz(func(t *testing.T, id, register string, seq uint64) {
		want := id == register+"-"+strconv.FormatUint(seq, 10)
		if got := isEventID(id, register, seq); got != want {
			t.Fatalf("isEventID(%q, %q, %d) = %v, want %v", id, register, seq, got, want)
		}
	})
}

func TestAppendQuote(t *testing.T) {
	for _, s := range []string{"", "r1-1", "points.event", `a"b`, `a\b`, "a\x00b", "a\x7fb", "caf\u00e9", "\xff", "tab\there", " ~"} {
		if got, want := string(appendQuote([]byte("x"), s)), string(strconv.AppendQuote([]byte("x"), s)); got != want {
			t.Errorf("appendQuote(%q) = %s, want %s", s, got, want)
		}
	}
}

// FuzzAppendQuote: the fast copy agrees with strconv.AppendQuote.
func FuzzAppendQuote(f *testing.F) {
	f.Add("r1-1")
	f.Add(`"\`)
	f.Add("\u00e9\x01")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendQuote(nil, s)), string(strconv.AppendQuote(nil, s)); got != want {
			t.Fatalf("appendQuote(%q) = %s, want %s", s, got, want)
		}
	})
}
