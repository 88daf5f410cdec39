package ledger_test

import (
	"context"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// TestBonusOncePerMember: the first-purchase and birthday bonuses are
// decided on what head office's summary says the member was credited
// chain-wide plus this register's own sales after it, so a replacement
// register (a fresh ledger) or one in another store pays neither again;
// a member whose first purchase was elsewhere gets the first-purchase
// bonus at the first sale here; head office's word that it paid one
// cancels a bonus this register marked pending; a summary without the
// bonus state (an older head office, or a register never told) leaves
// the register deciding from its own sales, as before. The state
// survives a restart (it is in the member's row).
func TestBonusOncePerMember(t *testing.T) {
	rs, err := rules.Decode([]byte(`{"version":1,"earn":{"points_per_unit":"1"},"first_purchase_bonus":30,"birthday":{"points":15,"days_before":3,"days_after":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		// before: local sales before the summary arrives.
		before       int
		first        string
		birthdayYear int
		want         []ledger.Points // what each sale after the summary earns
	}{
		{"paid elsewhere", 0, ledger.FirstBonusPaid, 2026, []ledger.Points{10, 10}},
		{"first purchase elsewhere", 0, ledger.FirstBonusPending, 2026, []ledger.Points{10 + 30, 10}},
		{"birthday elsewhere last year", 0, ledger.FirstBonusPaid, 2025, []ledger.Points{10 + 15, 10}},
		{"paid elsewhere after the mark here", 1, ledger.FirstBonusPaid, 2026, []ledger.Points{10, 10}},
		{"pending after the mark here", 1, ledger.FirstBonusPending, 2026, []ledger.Points{10 + 30, 10}},
		{"older head office", 0, "", 0, []ledger.Points{10 + 15, 10 + 30, 10}},
		{"unknown state", 0, "later", 0, []ledger.Points{10 + 15, 10 + 30, 10}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(o *ledger.Options) { o.Engine = nil; o.Rules = rs })
			m := ledger.Member{ID: "m1", Name: "Dana", Birthday: "--03-03"} // t0 is 2 March 2026
			if _, err := f.l.Enrol(ctx, m); err != nil {
				t.Fatal(err)
			}
			n, seq := uint64(0), uint64(0)
			sale := func() ledger.SaleResult {
				n++
				r := f.sale(t, ledger.SaleRequest{ID: "s" + itoa(n), MemberID: "m1"})
				for _, ev := range r.Events {
					seq = max(seq, ev.Seq)
				}
				return r
			}
			for range c.before {
				if got := sale().Earned; got != 10+15 {
					t.Fatalf("a sale before the summary earned %d, want 25 (birthday, first purchase marked)", got)
				}
			}
			if err := f.l.ApplyMemberSummary(ctx, ledger.MemberSummary{Member: m, Version: 1, Covered: seq,
				FirstBonus: c.first, BirthdayYear: c.birthdayYear}); err != nil {
				t.Fatal(err)
			}
			f.reopen(t)
			if s, _, err := f.l.MemberSummary("m1"); err != nil || s.BirthdayYear != c.birthdayYear ||
				(s.FirstBonus != c.first && c.first != "later") {
				t.Fatalf("summary read back %+v (%v)", s, err)
			}
			for i, want := range c.want {
				if got := sale().Earned; got != want {
					t.Errorf("sale %d after the summary earned %d, want %d", i+1, got, want)
				}
			}
		})
	}
}
