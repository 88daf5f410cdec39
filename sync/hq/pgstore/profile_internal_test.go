package pgstore

import (
	"encoding/json"
	"testing"
)

// bareProfile writes what json.Marshal writes for ledger.Member{ID: id}'s
// id alone.
func checkBareProfile(t *testing.T, id string) {
	t.Helper()
	q, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":` + string(q) + `}`
	if got := string(bareProfile(id)); got != want {
		t.Fatalf("bareProfile(%q) = %s, want %s", id, got, want)
	}
}

func TestBareProfile(t *testing.T) {
	for _, id := range []string{"", "m00042", "a b", `q"uote`, `back\slash`, "<tag>&", "tab\there", "\x7f", "é", "\xff", "\u2028"} {
		checkBareProfile(t, id)
	}
}

func FuzzBareProfile(f *testing.F) {
	f.Add("m1")
	f.Add("<\"\\\x00é\xff")
	f.Fuzz(checkBareProfile)
}
