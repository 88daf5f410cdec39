package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// TestStatementExplainsTheBalance: a member's statement lists every point
// event with its sale, line and reason, the running sum ends at the
// balance, and refunds and voids can be listed per sale and in full.
func TestStatementExplainsTheBalance(t *testing.T) {
	f := newFixture(t, nil)
	f.enrol(t, "m1")
	f.enrol(t, "m2")
	saleOf3(t, f, "s1") // 37 points
	saleOf3(t, f, "s2")
	ctx := context.Background()
	if _, err := f.l.Refund(ctx, ledger.RefundRequest{ID: "rf1", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Void(ctx, "v1", "s2", "wrong customer"); err != nil {
		t.Fatal(err)
	}
	st, err := f.l.Statement("m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Lines) == 0 || st.Lines[len(st.Lines)-1].Running != st.Local || st.Local != f.sumEvents(t, "m1") || st.Balance != f.balance(t, "m1") || st.HQBalance != nil {
		t.Fatalf("statement %+v: local %d, sum %d, balance %d", st, st.Local, f.sumEvents(t, "m1"), f.balance(t, "m1"))
	}
	var running ledger.Points
	kinds := map[ledger.EventKind]int{}
	for i, ln := range st.Lines {
		running += ln.Points
		if ln.Running != running || (i > 0 && ln.Seq <= st.Lines[i-1].Seq) {
			t.Fatalf("line %d: running %d want %d, seq %d after %d", i, ln.Running, running, ln.Seq, st.Lines[i-1].Seq)
		}
		if ln.Kind == ledger.KindReverse && (ln.SaleID == "" || ln.Reason == "" || ln.Reverses == "") {
			t.Fatalf("a reversal that does not say why: %+v", ln)
		}
		kinds[ln.Kind]++
	}
	if kinds[ledger.KindEarn] == 0 || kinds[ledger.KindReverse] == 0 {
		t.Fatalf("kinds %v", kinds)
	}
	if _, err := f.l.Statement("nobody"); !errors.Is(err, ledger.ErrUnknownMember) {
		t.Fatalf("statement of an unknown member: %v", err)
	}

	rfs, err := f.l.Refunds("s1")
	if err != nil || len(rfs) != 1 || rfs[0].ID != "rf1" || rfs[0].Amount != 1000 || rfs[0].Void {
		t.Fatalf("refunds of s1: %+v %v", rfs, err)
	}
	var all []string
	if err := f.l.ForEachRefund(func(r ledger.Refund) error { all = append(all, r.ID); return nil }); err != nil || len(all) != 2 {
		t.Fatalf("all refunds: %v %v", all, err)
	}
	n := 0
	members := map[string]bool{}
	if err := f.l.ForEachPointEvent(func(ev ledger.PointEvent) error { n++; members[ev.MemberID] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if m1, _ := f.l.Events("m1"); n != len(m1) || !members["m1"] || members["m2"] {
		t.Fatalf("ForEachPointEvent saw %d events of %v, m1 has %d", n, members, len(m1))
	}
}

// TestNewMemberStartsInTheBaseTier: a member enrolled under a rule set with
// tiers is in the base tier at once (before: blank until the first sale).
func TestNewMemberStartsInTheBaseTier(t *testing.T) {
	f := clockFixture(t, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), true)
	m, err := f.l.Enrol(context.Background(), ledger.Member{ID: "m9", Name: "New"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Tier != "base" {
		t.Fatalf("new member's tier %q, want base", m.Tier)
	}
	if got, _ := f.l.Member("m9"); got.Tier != "base" {
		t.Fatalf("stored tier %q", got.Tier)
	}
	// Enrolling the same profile again is still the same member.
	if again, err := f.l.Enrol(context.Background(), ledger.Member{ID: "m9", Name: "New"}); err != nil || again.Tier != "base" {
		t.Fatalf("re-enrol: %+v %v", again, err)
	}
}
