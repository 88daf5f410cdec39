package rules_test

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

func sampleEngine(t *testing.T) *rules.Engine {
	t.Helper()
	b, err := os.ReadFile("testdata/ruleset.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e, err := rs.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestMaxEarn: the bound for fixed baskets under the sample rule set
// (multiply stacking 2 x 1.5 x gold 1.5 = 4.5, capped at 4; bonuses
// 50 + 100 + 20).
func TestMaxEarn(t *testing.T) {
	e := sampleEngine(t)
	const bonuses = 50 + 100 + 20
	for _, tc := range []struct {
		name  string
		lines []rules.LineInput
		want  int64
	}{
		{"no lines", nil, bonuses},
		{"one unit at 1/unit", []rules.LineInput{{No: 1, SKU: "x", Amount: 100}}, 4 + bonuses},
		{"sku at 3/unit", []rules.LineInput{{No: 1, SKU: "4006381333931", Amount: 1000}}, 120 + bonuses},
		{"wine 2.5% rounds up", []rules.LineInput{{No: 1, Category: "wine", Amount: 101}}, 11 + bonuses}, // 101*0.025*4 = 10.1
		{"tobacco excluded", []rules.LineInput{{No: 1, Category: "tobacco", Amount: 100000}}, bonuses},
		{"negative amount", []rules.LineInput{{No: 1, Amount: -500}}, bonuses},
		{"largest amounts", []rules.LineInput{{No: 1, Amount: rules.MaxAmount}, {No: 2, Amount: rules.MaxAmount}}, 2*rules.MaxAmount/100*4 + bonuses},
	} {
		if got := e.MaxEarn(tc.lines); got != tc.want {
			t.Errorf("%s: MaxEarn = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestMaxEarnBoundsEvaluate: whatever the date, clock, tier history and
// bonuses due, Evaluate never gives a sale more than MaxEarn.
func TestMaxEarnBoundsEvaluate(t *testing.T) {
	e := sampleEngine(t)
	seed, _ := testkit.Seed(t)
	rnd := rand.New(rand.NewPCG(seed, 1))
	skus := []string{"4006381333931", "a", "b"}
	cats := []string{"", "wine", "tobacco", "food"}
	for i := range 5000 {
		var lines []rules.LineInput
		for n := range rnd.IntN(5) + 1 {
			lines = append(lines, rules.LineInput{No: n + 1, SKU: skus[rnd.IntN(len(skus))], Category: cats[rnd.IntN(len(cats))], Amount: rnd.Int64N(200000)})
		}
		at := time.Date(2026, time.Month(rnd.IntN(12)+1), rnd.IntN(28)+1, 12, 0, 0, 0, time.UTC)
		m := rules.MemberState{ID: "m", Spend12m: rnd.Int64N(1_000_000), Visits12m: rnd.IntN(60), Purchases: rnd.IntN(3),
			FirstBonusPending: rnd.IntN(2) == 0, Birthday: at.AddDate(-30, 0, rnd.IntN(5)-2).Format(time.DateOnly)}
		out, err := e.Evaluate(rules.SaleInput{Lines: lines, Member: m, At: at, ClockTrusted: rnd.IntN(4) > 0})
		if err != nil {
			t.Fatal(err)
		}
		if bound := e.MaxEarn(lines); out.Total() > bound {
			t.Fatalf("round %d: Evaluate gave %d > MaxEarn %d for %+v at %s", i, out.Total(), bound, lines, at)
		}
	}
}
