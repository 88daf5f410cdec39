package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
)

func stamped(t *testing.T, x ledger.Wire, after uint64) ([]ledger.OutboxRecord, ledger.Stamp) {
	t.Helper()
	recs, st, err := x.OutboxStamped(after, 100)
	if err != nil {
		t.Fatal(err)
	}
	ledger.OutboxStampedIntoMatches(t, x, after, 100, recs, st)
	return recs, st
}

// TestRenumberUnsent: a replacement that sold before it first reached
// head office keeps its own numbers but sends them, under a new
// incarnation, after head office's watermark; confirmations and
// summaries in head office's numbers map back to its own.
func TestRenumberUnsent(t *testing.T) {
	f := newFixture(t, nil)
	own, _ := f.l.Incarnation()
	f.sale(t, ledger.SaleRequest{ID: "a"})
	f.sale(t, ledger.SaleRequest{ID: "b"})
	x := ledger.Wire{Ledger: f.l}
	if recs, st := stamped(t, x, 0); len(recs) != 2 || recs[0].Seq != 1 || st.Incarnation != own {
		t.Fatalf("before: %+v %+v", recs, st)
	}
	if err := f.l.Rebase(41); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	x = ledger.Wire{Ledger: f.l}
	if w, err := x.Confirmed(); err != nil || w != 41 {
		t.Fatalf("confirmed on the wire %d %v, want 41", w, err)
	}
	recs, st := stamped(t, x, 41)
	if len(recs) != 2 || recs[0].Seq != 42 || recs[1].ID != "r1-43" || st.Incarnation == own || st.Prev != "" {
		t.Fatalf("renumbered: %+v %+v", recs, st)
	}
	if inc, _ := x.Incarnation(); inc != st.Incarnation || x.Owns(own) {
		t.Fatalf("incarnation %s, owns the replaced one %v", inc, x.Owns(own))
	}
	if err := x.Confirm(44); !errors.Is(err, ledger.ErrPruneNotAllowed) {
		t.Fatalf("confirm beyond: %v", err)
	}
	if err := x.Confirm(42); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.l.Confirmed(); c != 1 {
		t.Fatalf("ledger confirmed %d, want 1", c)
	}
	if recs, _ := stamped(t, x, 42); len(recs) != 1 || recs[0].Seq != 43 {
		t.Fatalf("after confirm: %+v", recs)
	}
	// A summary covering 43 on the wire covers the ledger's 2.
	if err := f.l.ApplyMemberSummary(context.Background(), ledger.MemberSummary{Member: ledger.Member{ID: "m9"}, Balance: 5, Covered: 43, Version: 1}); err != nil {
		t.Fatal(err)
	}
}

// TestReincarnateRestored: a ledger restored from an older backup goes on
// under a new incarnation; its new events wait until head office's
// watermark numbers them, then follow it and name the old incarnation.
func TestReincarnateRestored(t *testing.T) {
	f := newFixture(t, nil)
	own, _ := f.l.Incarnation()
	for _, id := range []string{"a", "b", "c"} {
		f.sale(t, ledger.SaleRequest{ID: id})
	}
	x := ledger.Wire{Ledger: f.l}
	if err := x.Confirm(2); err != nil {
		t.Fatal(err)
	}
	ep, err := x.Reincarnate(false)
	if err != nil || ep.From != 4 || ep.Known {
		t.Fatalf("reincarnate %+v %v", ep, err)
	}
	if _, ok, err := x.Learn("someone-else", 30); ok || err != nil {
		t.Fatalf("learnt from another incarnation: %v %v", ok, err)
	}
	if again, err := x.Reincarnate(true); err != nil || again.Incarnation != ep.Incarnation || !again.Claim {
		t.Fatalf("again %+v %v", again, err)
	}
	f.sale(t, ledger.SaleRequest{ID: "d"}) // local 4, waits
	if recs, st := stamped(t, x, 2); len(recs) != 1 || recs[0].Seq != 3 || st.Incarnation != own {
		t.Fatalf("the old incarnation's last: %+v %+v", recs, st)
	}
	if recs, _ := stamped(t, x, 3); len(recs) != 0 {
		t.Fatalf("sent before its numbers are known: %+v", recs)
	}
	if _, err := x.Reincarnate(false); !errors.Is(err, ledger.ErrRenumbered) {
		t.Fatalf("second waiting epoch: %v", err)
	}
	if ahead, _ := x.Ahead(30); ahead {
		t.Fatal("ahead while the epoch waits")
	}
	ep, ok, err := x.Learn(own, 30)
	if err != nil || !ok || ep.Delta != 27 || ep.Prev != own {
		t.Fatalf("learn %+v %v %v", ep, ok, err)
	}
	f.reopen(t)
	x = ledger.Wire{Ledger: f.l}
	recs, st := stamped(t, x, 3)
	if len(recs) != 1 || recs[0].Seq != 31 || recs[0].ID != "r1-31" || st.Incarnation != ep.Incarnation || st.Prev != own {
		t.Fatalf("after learning: %+v %+v", recs, st)
	}
	if ahead, _ := x.Ahead(31); ahead {
		t.Fatal("31 is this ledger's")
	}
	if ahead, _ := x.Ahead(32); !ahead {
		t.Fatal("32 is beyond")
	}
	if err := x.Confirm(30); err != nil { // head office's ack to the old incarnation
		t.Fatal(err)
	}
	if c, _ := f.l.Confirmed(); c != 3 {
		t.Fatalf("ledger confirmed %d, want 3", c)
	}
	if w, _ := x.Confirmed(); w != 30 {
		t.Fatalf("wire confirmed %d, want 30", w)
	}
	if !x.Owns(own) || !x.Owns(ep.Incarnation) {
		t.Fatal("owns")
	}
	if err := x.Confirm(31); err != nil {
		t.Fatal(err)
	}
	if pending, _, _ := f.l.OutboxStats(); pending != 0 {
		t.Fatalf("pending %d", pending)
	}
}

// TestLearnNothing: a fresh ledger's claiming incarnation with no
// acknowledgement anywhere goes on with its own numbers, and a later
// Rebase (an ack for another incarnation) no longer moves them.
func TestLearnNothing(t *testing.T) {
	f := newFixture(t, nil)
	x := ledger.Wire{Ledger: f.l}
	ep, err := x.Reincarnate(true)
	if err != nil || ep.From != 1 {
		t.Fatalf("reincarnate %+v %v", ep, err)
	}
	f.sale(t, ledger.SaleRequest{ID: "a"})
	ep, ok, err := x.LearnNothing()
	if err != nil || !ok || ep.Delta != 0 || ep.Prev != "" {
		t.Fatalf("learn nothing %+v %v %v", ep, ok, err)
	}
	if _, ok, _ := x.LearnNothing(); ok {
		t.Fatal("learnt twice")
	}
	if err := f.l.Rebase(41); !errors.Is(err, ledger.ErrNotFresh) {
		t.Fatalf("rebase after renumbering: %v", err)
	}
	if recs, st := stamped(t, x, 0); len(recs) == 0 || recs[0].Seq != 1 || st.Incarnation != ep.Incarnation {
		t.Fatalf("%+v %+v, want %+v", recs[0].Seq, st, ep)
	}
}

// TestLearnWithNothingWaitingCommitsNothing: the uplink calls Learn for
// every acknowledgement; with no epoch waiting for its numbers (the usual
// case) neither Learn nor LearnNothing writes a transaction, which would
// sync the file once per ack beside the sales.
func TestLearnWithNothingWaitingCommitsNothing(t *testing.T) {
	f := newFixture(t, nil)
	own, _ := f.l.Incarnation()
	f.sale(t, ledger.SaleRequest{ID: "a"})
	x := ledger.Wire{Ledger: f.l}
	before, err := f.l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, ok, err := x.Learn(own, 1); ok || err != nil {
			t.Fatalf("learnt with nothing waiting: %v %v", ok, err)
		}
		if _, ok, err := x.LearnNothing(); ok || err != nil {
			t.Fatalf("learnt nothing with nothing waiting: %v %v", ok, err)
		}
	}
	after, err := f.l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.Commits != before.Commits {
		t.Fatalf("%d commits for 20 acknowledgements with nothing to learn", after.Commits-before.Commits)
	}
}
