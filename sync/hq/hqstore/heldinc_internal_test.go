package hqstore

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// heldIncStore opens a bbolt store with opts and returns it with an event
// maker and an apply helper for the held-beyond-gap tests below.
func heldIncStore(t *testing.T, opts Options) (*Store, func(seq uint64, member string, pts ledger.Points, inc, prev string) Event, func(evs ...Event) Result) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "hq.db"), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("check: %v", err)
		}
		s.Close()
	})
	ev := func(seq uint64, member string, pts ledger.Points, inc, prev string) Event {
		raw, _ := json.Marshal(ledger.PointEvent{ID: fmt.Sprintf("r1-%d", seq), Register: "r1", Seq: seq, Kind: ledger.KindEarn, MemberID: member, Points: pts})
		return Event{Register: "r1", Store: "s1", Incarnation: inc, PrevIncarnation: prev, OutboxRecord: ledger.OutboxRecord{
			Seq: seq, ID: fmt.Sprintf("r1-%d", seq), Type: ledger.OutPoints, WallTime: time.Date(2026, 11, 27, 10, int(seq%60), 0, 0, time.UTC), ClockTrusted: true, Data: raw}}
	}
	apply := func(evs ...Event) Result {
		t.Helper()
		r, err := s.Apply(evs)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return s, ev, apply
}

// TestHeldBeyondGapOfAStoreWrittenBefore: a store written before
// HeldIncarnation was kept holds aaaa's 6 beyond a gap. A restored copy
// succeeds under bbbb: aaaa's 6 must go to review, not into bbbb's stream
// (review6: it was drained, and bbbb's own 6 was lost).
func TestHeldBeyondGapOfAStoreWrittenBefore(t *testing.T) {
	s, ev, apply := heldIncStore(t, Options{})
	apply(ev(1, "m1", 1, "aaaa", ""), ev(2, "m1", 1, "aaaa", ""), ev(3, "m1", 1, "aaaa", ""))
	apply(ev(6, "m1", 1000, "aaaa", ""))
	if err := s.db.Update(func(tx *bolt.Tx) error { // as the release before wrote it
		rs, err := loadReg(tx, "r1")
		if err != nil {
			return err
		}
		rs.HeldIncarnation = ""
		v, _ := json.Marshal(rs)
		return tx.Bucket(bRegs).Put([]byte("r1"), v)
	}); err != nil {
		t.Fatal(err)
	}
	apply(ev(4, "m2", 40, "bbbb", "aaaa"))
	apply(ev(6, "m2", 60, "bbbb", "aaaa"), ev(7, "m2", 70, "bbbb", "aaaa"))
	apply(ev(5, "m2", 50, "bbbb", "aaaa"))
	m1, _ := s.Balance("m1")
	m2, _ := s.Balance("m2")
	if m1 != 3 || m2 != 220 {
		t.Fatalf("balances m1 %d (want 3), m2 %d (want 220): aaaa's 6 drained into bbbb's stream", m1, m2)
	}
}

// TestHeldBeyondGapKeptWhenItsNumberIsInReview: aaaa's 6 (the original
// ledger's, +1000 to m1) is held beyond a gap; a restored copy of aaaa
// sends 4 and its own 6 (held as reused: review slot aaaa/6). A
// replacement cccc is adopted and fills the gap: the original's 6 moves
// to review, and with its slot taken it is listed under aaaa plus
// HeldBeyondGapSuffix (review6: it was deleted, neither applied nor held).
func TestHeldBeyondGapKeptWhenItsNumberIsInReview(t *testing.T) {
	s, ev, apply := heldIncStore(t, Options{})
	apply(ev(1, "m1", 1, "aaaa", ""), ev(2, "m1", 1, "aaaa", ""), ev(3, "m1", 1, "aaaa", ""))
	apply(ev(6, "m1", 1000, "aaaa", "")) // the original's 6, beyond a gap
	apply(ev(4, "m2", 40, "aaaa", ""))   // restored copy of aaaa
	apply(ev(6, "m2", 60, "aaaa", ""))   // its own 6: reused
	apply(ev(5, "m3", 5, "cccc", ""))    // a replacement, held as incarnation
	if _, err := s.AdoptIncarnation("r1", "cccc"); err != nil {
		t.Fatal(err)
	}
	apply(ev(5, "m3", 5, "cccc", ""))
	held, err := s.Review()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range held {
		var p ledger.PointEvent
		if err := json.Unmarshal(h.Data, &p); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("%s/%d", h.Incarnation, h.Seq)] = fmt.Sprintf("%s %s %d", h.Reason, p.MemberID, p.Points)
	}
	want := map[string]string{
		"aaaa/6":                            "reused m2 60",
		"aaaa" + HeldBeyondGapSuffix + "/6": "incarnation m1 1000",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("review %v, want %v", got, want)
	}
	if m1, _ := s.Balance("m1"); m1 != 3 {
		t.Fatalf("m1 %d, want 3", m1)
	}
}

// TestEventFarAheadDropped: an event far beyond the watermark (head
// office restored from an older backup, or a bad number) is dropped, not
// held, and counted as seen only up to the bound, so no walk over the
// numbers up to the highest seen spans it (review6: one at 20,000,000
// cost 2.9 s per later commit), while the gap stays open so head office
// still asks the register to resend from its watermark (review7: with
// no gap it never asked, and the register was stuck for good).
func TestEventFarAheadDropped(t *testing.T) {
	s, ev, apply := heldIncStore(t, Options{})
	apply(ev(1, "m1", 1, "aaaa", ""))
	bound := 1 + heldAhead(s.opts.MaxHeld)
	res := apply(ev(bound+1, "m1", 1, "aaaa", ""))
	rs := res.Registers["r1"]
	if res.Dropped != 1 || rs.Held != 0 || rs.Seen != bound || !rs.Gap || rs.WaitFrom != 2 || rs.WaitTo != bound {
		t.Fatalf("event %d beyond watermark 1: dropped %d, %+v; want dropped 1, held 0, seen %d, a gap from 2 to %d", bound+1, res.Dropped, rs, bound, bound)
	}
	res = apply(ev(3, "m1", 1, "aaaa", ""), ev(bound, "m1", 1, "aaaa", ""))
	if rs := res.Registers["r1"]; res.Dropped != 0 || rs.Held != 2 || rs.WaitTo != 2 {
		t.Fatalf("events within the bound: dropped %d, %+v; want both held, waiting for 2", res.Dropped, rs)
	}
}

// TestReusedResendOneConflict: the register resends an event held as
// reused after every AckTimeout while the hold is open; the conflict is
// recorded once (review7: each resend added one).
func TestReusedResendOneConflict(t *testing.T) {
	s, ev, apply := heldIncStore(t, Options{})
	for seq := uint64(1); seq <= 5; seq++ {
		apply(ev(seq, "m1", 10, "aaaa", ""))
	}
	for range 3 {
		apply(ev(4, "m2", 40, "aaaa", ""))
	}
	rs, err := s.RegisterState("r1")
	if err != nil || rs.Conflicts != 1 || rs.ReusedFrom != 4 {
		t.Fatalf("3 resends of one reused event: %+v %v; want 1 conflict, reused from 4", rs, err)
	}
	apply(ev(4, "m3", 4, "aaaa", "")) // third content: a conflict of its own
	if rs, _ := s.RegisterState("r1"); rs.Conflicts != 2 {
		t.Fatalf("other content again: %d conflicts, want 2", rs.Conflicts)
	}
}

// TestReusedKeptPastMaxHeld: the bound incarnation's reused events are
// held for review even past MaxHeld, so the acks stay below them (review7:
// one past MaxHeld was not stored, set no ReusedFrom, and once the stored
// ones were dismissed its resend was acknowledged in full: the register
// forgot an event head office never held).
func TestReusedKeptPastMaxHeld(t *testing.T) {
	s, ev, apply := heldIncStore(t, Options{MaxHeld: 2})
	for seq := uint64(1); seq <= 6; seq++ {
		apply(ev(seq, "m1", 10, "aaaa", ""))
	}
	apply(ev(4, "m2", 40, "aaaa", ""), ev(5, "m2", 50, "aaaa", ""), ev(6, "m2", 60, "aaaa", ""))
	for _, seq := range []uint64{4, 5} {
		if _, err := s.ResolvePolicy("r1", seq, false); err != nil {
			t.Fatal(err)
		}
	}
	r := apply(ev(6, "m2", 60, "aaaa", "")) // the register resends its 6
	if wm := r.Registers["r1"].AckWatermark(); wm != 5 {
		t.Fatalf("resend of the restored copy's 6: acked %d, want 5", wm)
	}
}
