package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

func TestNextTier(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clk := ledgertest.NewClock(now.AddDate(-2, 0, 0), true)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", Clock: clk, Engine: &ledgertest.Engine{Version: 1}})
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"c1"}}); err != nil {
		t.Fatal(err)
	}
	sale := func(id string, amount ledger.Money) {
		t.Helper()
		if _, err := l.RecordSale(ctx, ledger.SaleRequest{ID: id, MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "a", Quantity: 1, UnitPrice: amount}},
			Tenders: []ledger.Tender{{Kind: "cash", Amount: amount}}, HQReachable: true}); err != nil {
			t.Fatal(err)
		}
	}
	sale("old", 90000) // two years ago: outside the rolling window
	clk.Set(now.AddDate(0, -1, 0), true)
	sale("s1", 30000)
	sale("s2", 10000)
	rs := &rules.RuleSet{Tiers: []rules.Tier{{Name: "member"}, {Name: "silver", MinSpend: 100000, MinVisits: 12}, {Name: "gold", MinSpend: 500000}}}
	tests := []struct {
		name    string
		trusted bool
		rs      *rules.RuleSet
		want    bool
		goal    string
		spend   ledger.Money
		visits  int
	}{
		{name: "silver is next", trusted: true, rs: rs, want: true, goal: "silver", spend: 60000, visits: 10},
		{name: "untrusted clock says nothing", trusted: false, rs: rs},
		{name: "no tiers", trusted: true, rs: &rules.RuleSet{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ledgertest.NewClock(now, tc.trusted)
			m, _ := l.Member("m1")
			g, ok := nextTierFunc(l, c, tc.rs)(m)
			if ok != tc.want || g.Name != tc.goal || g.Spend != tc.spend || g.Visits != tc.visits {
				t.Fatalf("got %+v %v", g, ok)
			}
		})
	}
}

// TestVerdictClock: prompts and tier hints see the ledger's verdict, so a
// synchronised clock in a fault is not trusted for them (issue 16).
func TestVerdictClock(t *testing.T) {
	now := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
	clk := ledgertest.NewClock(now, true)
	led := ledgertest.Open(t, &ledger.Options{Clock: clk})
	if _, err := led.Enrol(context.Background(), ledger.Member{ID: "m"}); err != nil { // sets the trusted-time mark
		t.Fatal(err)
	}
	v := verdictClock{led, clk}
	for _, st := range []struct {
		name string
		move func()
		want bool
	}{
		{"right", func() {}, true},
		{"a year ahead, no time passed", func() { clk.Step(now.AddDate(1, 0, 0), true) }, false},
		{"right again", func() { clk.Step(now.Add(time.Minute), true) }, true},
		{"not synchronised", func() { clk.Step(now, false) }, false},
	} {
		st.move()
		if _, trusted := v.Now(); trusted != st.want {
			t.Errorf("%s: trusted %v, want %v", st.name, trusted, st.want)
		}
	}
}
