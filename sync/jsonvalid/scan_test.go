package jsonvalid

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

func scanWhole(s string) bool { return Valid([]byte(s)) }

func TestValidMatchesJSON(t *testing.T) {
	deep := func(n int, open, close string) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	cases := []string{
		``, ` `, `{}`, `[]`, `{"a":1}`, ` {"a" : [1, 2.5, -0.1e+7, true, false, null, "x"] } `,
		`{"a":1,}`, `{"a"}`, `{"a":}`, `{,}`, `[1,]`, `[,1]`, `{"a":1]`, `[1}`, `{"a":1}}`, `{"a":1} x`,
		`0`, `-0`, `01`, `-`, `1.`, `.1`, `1e`, `1e+`, `1E5`, `-01`, `1.5e-3`, `2.`, `1x`,
		`"abc"`, `"a\"b"`, `"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\/\b\f\n\r\t\\"`, "\"a\tb\"", "\"a\x01\"", "\"\xff\xfe\"", `"abc`, `"\`,
		`tru`, `true`, `truex`, `nul`, `null`, `False`, `fals`,
		"{\"a\":\"\u2028<>&\"}", `{"a":{"b":{"c":[{"d":[]}]}}}`,
		deep(maxScanDepth, "[", "]"), deep(maxScanDepth+1, "[", "]"),
		strings.Repeat(`{"a":`, maxScanDepth) + "1" + strings.Repeat("}", maxScanDepth),
		strings.Repeat(`{"a":`, maxScanDepth+1) + "1" + strings.Repeat("}", maxScanDepth+1),
	}
	for _, c := range cases {
		if got, want := scanWhole(c), json.Valid([]byte(c)); got != want {
			n := min(len(c), 40)
			t.Errorf("%q...: Valid %v, json.Valid %v", c[:n], got, want)
		}
	}
}

func FuzzValidMatchesJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, `-0.5e+10`, `[true,false]`, `"\ud800"`, `{"a":1,}`, "\"\x00\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := scanWhole(s), json.Valid([]byte(s)); got != want {
			t.Fatalf("%q: Valid %v, json.Valid %v", s, got, want)
		}
		// Inside a message: the end found is where the value ends.
		if json.Valid([]byte(s)) && len(s) > 0 && s[0] == '{' {
			v := strings.TrimRight(s, " \t\n\r")
			msg := s + `,"x":1}`
			if end, ok := Scan(msg, 0); !ok || end != len(v) {
				t.Fatalf("%q in a message: end %d ok %v, want %d", s, end, ok, len(v))
			}
		}
	})
}

// BenchmarkValidVsJSON holds Valid against json.Valid on an events
// message's worth of point event data (the shape the decoders check).
func BenchmarkValidVsJSON(b *testing.B) {
	const n = 64
	var datas [][]byte
	for i := range n {
		datas = append(datas, []byte(fmt.Sprintf(`{"id":"r1-%d","register":"r1","seq":%d,"kind":"earn","member_id":"m%d","points":%d,"sale_id":"s-%d","reason":"a \"quoted\" caf\u00e9","wall_time":"2026-11-27T10:00:00Z","clock_trusted":true,"lines":[1,2.5,-3e2,null,false]}`, i, i, i%7, i*3, i)))
	}
	benchcmp.Compare(b, benchcmp.Options{Ratio: "jsonvalid_vs_json", Items: n, Unit: "value"},
		benchcmp.Case{Name: "scan", Op: func(b *testing.B) {
			for _, d := range datas {
				if !Valid(d) {
					b.Fatal("invalid")
				}
			}
		}},
		benchcmp.Case{Name: "json", Op: func(b *testing.B) {
			for _, d := range datas {
				if !json.Valid(d) {
					b.Fatal("invalid")
				}
			}
		}})
}
