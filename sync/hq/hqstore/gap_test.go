package hqstore_test

import (
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// TestAcknowledgeGap: a head office restored from an older backup waits
// for events no register still has. Only the exact gap (from the
// watermark, below the first held event) can be acknowledged; then the
// held events are applied, the stream goes on, the gap is listed and
// Check accepts it.
func TestAcknowledgeGap(t *testing.T) {
	s, _ := open(t, nil)
	apply(t, s, earn("r1", 1, "m1", 10), earn("r1", 2, "m1", 10))
	res := apply(t, s, earn("r1", 6, "m1", 100), earn("r1", 7, "m1", 100))
	rs := res.Registers["r1"]
	if !rs.Gap || rs.WaitFrom != 3 || rs.WaitTo != 5 || rs.Held != 2 {
		t.Fatalf("state before: %+v", rs)
	}
	bad := []struct {
		name     string
		reg      string
		from, to uint64
	}{
		{"unknown register", "r9", 3, 5},
		{"not from the watermark", "r1", 4, 5},
		{"over a held event", "r1", 3, 6},
		{"backwards", "r1", 3, 2},
	}
	for _, b := range bad {
		if _, err := s.AcknowledgeGap(b.reg, b.from, b.to, ""); !errors.Is(err, hqstore.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", b.name, err)
		}
	}
	if wm(t, s, "r1") != 2 {
		t.Fatalf("a refused acknowledgement changed the watermark: %d", wm(t, s, "r1"))
	}
	g, err := s.AcknowledgeGap("r1", 3, 5, "restored from Monday's backup")
	if err != nil || g.Released != 2 || g.From != 3 || g.To != 5 {
		t.Fatalf("acknowledge: %+v %v", g, err)
	}
	if wm(t, s, "r1") != 7 || balance(t, s, "m1") != 220 {
		t.Fatalf("after: watermark %d balance %d", wm(t, s, "r1"), balance(t, s, "m1"))
	}
	res = apply(t, s, earn("r1", 8, "m1", 1))
	if rs := res.Registers["r1"]; rs.Watermark != 8 || rs.Gap || rs.WaitFrom != 0 {
		t.Fatalf("the stream does not go on: %+v", rs)
	}
	// A gap at the end (nothing held beyond it yet): the watermark moves
	// over it and the next event is applied.
	if _, err := s.AcknowledgeGap("r1", 9, 10, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("check with a gap at the end: %v", err)
	}
	apply(t, s, earn("r1", 11, "m1", 1))
	if wm(t, s, "r1") != 11 {
		t.Fatalf("watermark %d", wm(t, s, "r1"))
	}
	gaps, err := s.Gaps()
	if err != nil || len(gaps) != 2 || gaps[0].Note != "restored from Monday's backup" || gaps[1].From != 9 {
		t.Fatalf("gaps %+v %v", gaps, err)
	}
}
