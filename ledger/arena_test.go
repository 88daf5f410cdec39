package ledger

import (
	"bytes"
	"testing"
)

// TestArenaSlicesStayApart: what one slice of the arena is given (also
// past the room it asked for) never shows in another, as bbolt needs of
// the values it holds until the commit.
func TestArenaSlicesStayApart(t *testing.T) {
	for _, a := range []*arena{nil, {}} {
		var got [][]byte
		var want [][]byte
		for i := range 300 {
			n := 1 + i%40
			if i%50 == 0 {
				n = arenaMax + 1 // allocated apart
			}
			b := a.make(n)
			if len(b) != 0 || cap(b) < n {
				t.Fatalf("make(%d): len %d cap %d", n, len(b), cap(b))
			}
			// Write past the room asked for every third slice.
			m := n
			if i%3 == 0 {
				m = n + 7
			}
			b = append(b, bytes.Repeat([]byte{byte(i)}, m)...)
			got = append(got, b)
			want = append(want, bytes.Repeat([]byte{byte(i)}, m))
		}
		k := a.rowKey(rowEvent, "m1", 42)
		if !bytes.Equal(k, rowKey(rowEvent, "m1", 42)) {
			t.Fatalf("rowKey %q, want %q", k, rowKey(rowEvent, "m1", 42))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("nil arena %v: slice %d holds %v, want %v", a == nil, i, got[i], want[i])
			}
		}
	}
}
