package storetest

import (
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// testReusedHold: a ledger restored from an older backup (same
// incarnation) resends other content under numbers head office applied,
// then new events. Head office holds the reused ones, applies the new
// ones, and, in the register's state as committed, keeps ReusedFrom (the
// acks stay below it) across later batches until an operator dismisses
// each; approve is refused; a dismissed one resent is a duplicate.
func testReusedHold(t *testing.T, open Opener) {
	inc := func(e hqstore.Event) hqstore.Event { e.Incarnation = "aaaa"; return e }
	s := open(t, hqstore.Options{})
	for seq := uint64(1); seq <= 5; seq++ {
		apply(t, s, inc(Earn("r1", seq, "m1", 10)))
	}
	// Restored from a backup at 3: its own 4 and 5, then 6 and 7.
	res := apply(t, s, inc(Earn("r1", 4, "m2", 40)), inc(Earn("r1", 5, "m2", 50)), inc(Earn("r1", 6, "m2", 60)), inc(Earn("r1", 7, "m2", 70)))
	rs := res.Registers["r1"]
	h := res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: "aaaa"}]
	if rs.Watermark != 7 || rs.ReusedFrom != 4 || rs.AckWatermark() != 3 || h.Reason != hqstore.ReviewReused || h.Watermark != 3 || res.Reviewed != 2 {
		t.Fatalf("restored ledger's batch: state %+v hold %+v reviewed %d", rs, h, res.Reviewed)
	}
	state := func() hqstore.RegisterState {
		t.Helper()
		rs, err := s.RegisterState("r1")
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	// Later batches: the state keeps the first reused number.
	res = apply(t, s, inc(Earn("r1", 8, "m2", 80)))
	if rs := res.Registers["r1"]; rs.Watermark != 8 || rs.AckWatermark() != 3 {
		t.Fatalf("next batch: %+v", rs)
	}
	// A resend of the second alone: its notice does not go above 3.
	res = apply(t, s, inc(Earn("r1", 5, "m2", 50)))
	if h := res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: "aaaa"}]; h.Watermark != 3 || res.Reviewed != 0 {
		t.Fatalf("resend of 5: %+v", res)
	}
	if _, err := s.ResolvePolicy("r1", 4, true); !errors.Is(err, hqstore.ErrInvalid) {
		t.Fatalf("approve of a reused event: %v, want ErrInvalid", err)
	}
	if _, err := s.ResolvePolicy("r1", 2, false); !errors.Is(err, hqstore.ErrNotHeld) {
		t.Fatalf("dismiss of an event not held: %v, want ErrNotHeld", err)
	}
	if _, err := s.ResolvePolicy("r1", 4, false); err != nil {
		t.Fatal(err)
	}
	if rs := state(); rs.ReusedFrom != 5 || rs.AckWatermark() != 4 || rs.Review != 1 {
		t.Fatalf("after dismissing 4: %+v", rs)
	}
	if held, _ := s.Review(); len(held) != 1 || held[0].Seq != 5 {
		t.Fatalf("review after dismissing 4: %+v", held)
	}
	// The dismissed one resent is a duplicate, not held again.
	res = apply(t, s, inc(Earn("r1", 4, "m2", 40)))
	if res.Duplicates != 1 || res.Reviewed != 0 || len(res.Holds) != 0 || res.Registers["r1"].AckWatermark() != 4 {
		t.Fatalf("resend of the dismissed 4: %+v", res)
	}
	if _, err := s.ResolvePolicy("r1", 4, false); !errors.Is(err, hqstore.ErrNotHeld) {
		t.Fatalf("second dismissal: %v, want ErrNotHeld", err)
	}
	// Yet other content under it is held afresh, and can be dismissed.
	res = apply(t, s, inc(Earn("r1", 4, "m2", 41)))
	if res.Reviewed != 1 || res.Registers["r1"].AckWatermark() != 3 {
		t.Fatalf("third content under 4: %+v", res)
	}
	if _, err := s.ResolvePolicy("r1", 4, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolvePolicy("r1", 5, false); err != nil {
		t.Fatal(err)
	}
	if rs := state(); rs.ReusedFrom != 0 || rs.AckWatermark() != 8 || rs.Review != 0 {
		t.Fatalf("after dismissing 5: %+v", rs)
	}
	if held, _ := s.Review(); len(held) != 0 {
		t.Fatalf("review after dismissing both: %+v", held)
	}
	if b := balance(t, s, "m2"); b != 60+70+80 {
		t.Fatalf("m2 balance %d: the reused events must stay unapplied", b)
	}
	// A successor incarnation does not inherit it.
	apply(t, s, inc(Earn("r1", 3, "m3", 1)))
	if rs := state(); rs.ReusedFrom != 3 {
		t.Fatalf("reused 3: %+v", rs)
	}
	e := Earn("r1", 9, "m2", 90)
	e.Incarnation, e.PrevIncarnation = "bbbb", "aaaa"
	if rs := apply(t, s, e).Registers["r1"]; rs.Incarnation != "bbbb" || rs.ReusedFrom != 0 || rs.AckWatermark() != 9 {
		t.Fatalf("successor: %+v", rs)
	}
}
