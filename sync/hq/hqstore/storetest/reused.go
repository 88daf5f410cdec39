package storetest

import (
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
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

// incEv is Earn under incarnation inc.
func incEv(seq uint64, member string, pts ledger.Points, inc string) hqstore.Event {
	e := Earn("r1", seq, member, pts)
	e.Incarnation = inc
	return e
}

// testGapAfterAdoption: an old ledger's event is held beyond a gap, a
// replacement is adopted, and the operator acknowledges the new stream's
// gap before the replacement resends. The old ledger's event goes to
// review, not into the new stream: drained there it would take the
// number of the replacement's own event, which would then be held as
// reused for good and never counted (review9).
func testGapAfterAdoption(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, incEv(1, "m1", 1, "aaaa"), incEv(2, "m1", 1, "aaaa"))
	apply(t, s, incEv(5, "m1", 1000, "aaaa")) // beyond the gap 3..4
	apply(t, s, incEv(3, "m2", 30, "cccc"))   // the replacement: held
	if _, err := s.AdoptIncarnation("r1", "cccc"); err != nil {
		t.Fatal(err)
	}
	// With only the old ledger's event beyond the gap, head office waits
	// for nothing of the new stream: refused, and nothing drained.
	if _, err := s.AcknowledgeGap("r1", 3, 4, "the replacement's card lost 3 and 4"); !errors.Is(err, hqstore.ErrInvalid) {
		t.Fatalf("gap before the replacement sent anything beyond it: %v, want ErrInvalid", err)
	}
	if m1 := balance(t, s, "m1"); m1 != 2 {
		t.Fatalf("m1 %d, want 2: a refused gap drained the old ledger's 5", m1)
	}
	apply(t, s, incEv(5, "m2", 50, "cccc"), incEv(6, "m2", 60, "cccc"))
	g, err := s.AcknowledgeGap("r1", 3, 4, "the replacement's card lost 3 and 4")
	if err != nil {
		t.Fatal(err)
	}
	if g.Released != 2 {
		t.Fatalf("gap released %d held events, want the replacement's 5 and 6", g.Released)
	}
	res := apply(t, s, incEv(7, "m2", 0, "cccc"))
	if m1, m2 := balance(t, s, "m1"), balance(t, s, "m2"); m1 != 2 || m2 != 110 {
		t.Fatalf("balances m1 %d m2 %d, want 2 and 110: the old ledger's 5 was drained into the new stream", m1, m2)
	}
	if rs := res.Registers["r1"]; rs.ReusedFrom != 0 || rs.AckWatermark() != 7 || rs.Held != 0 {
		t.Fatalf("register %+v, want the replacement's 5 to 7 applied, nothing held", rs)
	}
	held, err := s.Review()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0].Incarnation != "aaaa" || held[0].Seq != 5 || held[0].Reason != hqstore.ReviewIncarnation {
		t.Fatalf("review %+v, want the old ledger's 5 held as incarnation", held)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// testMovedWhileReused: while the bound ledger's events from 4 on are
// held as reused, its event for another store (moved without a confirmed
// move) is held for the store; that hold's notice goes to the new store's
// topic, where the acker's cap does not apply, so the notice itself must
// not acknowledge 4 or beyond (review9: it said 5, and the ledger forgot
// its reused 4).
func testMovedWhileReused(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	for seq := uint64(1); seq <= 5; seq++ {
		apply(t, s, incEv(seq, "m1", 10, "aaaa"))
	}
	if rs := apply(t, s, incEv(4, "m2", 40, "aaaa")).Registers["r1"]; rs.ReusedFrom != 4 {
		t.Fatalf("restored copy's 4: %+v, want held as reused", rs)
	}
	e := incEv(6, "m2", 60, "aaaa")
	e.Store = "s2"
	res := apply(t, s, e)
	h, ok := res.Holds[hqstore.Stream{Store: "s2", Register: "r1", Incarnation: "aaaa"}]
	if !ok || h.Reason != hqstore.ReviewStore || h.Watermark > 3 {
		t.Fatalf("store hold to the ledger whose 4 is held as reused: %+v (found %v), want watermark at most 3", h, ok)
	}
}

// testGapBeyondHeldAhead: head office restored from a backup older than
// heldAhead (65,536) events of a register. The register keeps nothing
// below 70,000 and names the gap 2..69999; its event 70,000 lies too far
// beyond the watermark to be held and is dropped, yet head office waits
// for exactly 2..69999 and takes that gap (review10: it waited for
// 2..65537 and refused the command the register printed); the resent
// 70,000 is then applied. A range past the dropped event is refused.
func testGapBeyondHeldAhead(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, Earn("r1", 1, "m1", 10))
	res := apply(t, s, Earn("r1", 70000, "m1", 100), Earn("r1", 70001, "m1", 100))
	if rs := res.Registers["r1"]; res.Dropped != 2 || !rs.Gap || rs.WaitFrom != 2 || rs.WaitTo != 69999 {
		t.Fatalf("after 70000 and 70001: %+v (dropped %d), want waiting for 2..69999", rs, res.Dropped)
	}
	for _, to := range []uint64{65537, 70000} {
		if _, err := s.AcknowledgeGap("r1", 2, to, ""); !errors.Is(err, hqstore.ErrInvalid) {
			t.Fatalf("gap 2..%d: %v, want ErrInvalid", to, err)
		}
	}
	if _, err := s.AcknowledgeGap("r1", 2, 69999, "restored"); err != nil {
		t.Fatalf("the gap the register names, 2..69999: %v", err)
	}
	res = apply(t, s, Earn("r1", 70000, "m1", 100), Earn("r1", 70001, "m1", 100))
	if rs := res.Registers["r1"]; rs.Watermark != 70001 || rs.Gap || rs.DroppedFrom != 0 {
		t.Fatalf("after the resend: %+v", rs)
	}
	if b := balance(t, s, "m1"); b != 210 {
		t.Fatalf("m1 %d, want 210", b)
	}
}
