package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

func tierRules(t *testing.T, version int, silver int64) *rules.RuleSet {
	t.Helper()
	rs, err := rules.Decode([]byte(fmt.Sprintf(`{"version":%d,"timezone":"UTC","earn":{"points_per_unit":"1"},
	 "tiers":[{"name":"classic"},{"name":"silver","min_spend":%d,"min_visits":12},{"name":"gold","min_spend":500000}]}`, version, silver)))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestNextTier: the tier goal uses the ledger's own 12-month window (the
// one earning uses) and the rule set in force, follows a new rule set at
// once, and says nothing on an untrusted clock.
func TestNextTier(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clk := ledgertest.NewClock(now.AddDate(-2, 0, 0), true)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", Clock: clk, Rules: tierRules(t, 1, 100000)})
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
	clk.Set(now, true)
	m, _ := l.Member("m1")
	next := nextTierFunc(l)
	if g, ok := next(m); !ok || g.Name != "silver" || g.Spend != 60000 || g.Visits != 10 {
		t.Fatalf("silver is next: %+v %v", g, ok)
	}
	// head office lowers silver to 300.00: the member is silver, gold is next
	if err := l.SetRules(tierRules(t, 2, 30000)); err != nil {
		t.Fatal(err)
	}
	if g, ok := next(m); !ok || g.Name != "gold" || g.Spend != 460000 {
		t.Fatalf("after the new rule set: %+v %v", g, ok)
	}
	clk.Set(now, false)
	if g, ok := next(m); ok {
		t.Fatalf("untrusted clock: %+v", g)
	}
}

func TestNextTierNoTiers(t *testing.T) {
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", Engine: &ledgertest.Engine{Version: 1}})
	if _, err := l.Enrol(context.Background(), ledger.Member{ID: "m1", Name: "Dana"}); err != nil {
		t.Fatal(err)
	}
	m, _ := l.Member("m1")
	if g, ok := nextTierFunc(l)(m); ok {
		t.Fatalf("no rule set, no tiers: %+v", g)
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
