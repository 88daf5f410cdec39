package rules_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// FuzzEvaluate scores arbitrary sales with a rich rule set: it must never
// panic, never give a line negative points, never give an error that is not
// one of the documented sentinels, and a sale with a positive amount under
// a positive rate earns at least as much as floor rounding of the base rate.
func FuzzEvaluate(f *testing.F) {
	data, err := os.ReadFile("testdata/ruleset.json")
	if err != nil {
		f.Fatal(err)
	}
	rs, err := rules.Decode(data)
	if err != nil {
		f.Fatal(err)
	}
	e, err := rs.Compile()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(int64(1000), int64(250), "x", "wine", int64(0), 0, 0, "--02-29", int64(1_700_000_000), true, false)
	f.Add(int64(-1), int64(0), "4006381333931", "", int64(600_000), 50, 3, "1990-11-27", int64(1_795_000_000), true, true)
	f.Add(rules.MaxAmount, rules.MaxAmount, "", "tobacco", int64(-5), -1, -1, "bad", int64(0), false, false)
	f.Add(int64(1<<62), int64(1), "a", "b", int64(1<<62), 1<<30, 1, "", int64(-1<<40), true, true)
	f.Fuzz(func(t *testing.T, a1, a2 int64, sku, cat string, spend int64, visits, purchases int, birthday string, unix int64, trusted, pending bool) {
		in := rules.SaleInput{
			Lines: []rules.LineInput{{No: 1, SKU: sku, Category: cat, Amount: a1}, {No: 2, SKU: "other", Amount: a2}},
			Member: rules.MemberState{ID: "m", Spend12m: spend, Visits12m: visits, Purchases: purchases,
				Birthday: birthday, FirstBonusPending: pending},
			At: time.Unix(unix, 0), ClockTrusted: trusted,
		}
		out, err := e.Evaluate(in)
		if err != nil {
			if !errors.Is(err, rules.ErrInput) && !errors.Is(err, rules.ErrOverflow) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		if len(out.Lines) != 2 {
			t.Fatalf("got %d lines, want 2", len(out.Lines))
		}
		for _, l := range out.Lines {
			if l.Points < 0 || l.Points > rules.MaxPoints {
				t.Fatalf("line %d points %d out of range", l.No, l.Points)
			}
		}
		if tot := out.Total(); tot < 0 || tot > rules.MaxPoints {
			t.Fatalf("total %d out of range", tot)
		}
		// The second line (no category, no SKU rate) earns at least the
		// base rate of 1 point per 100 minor units, rounded down, less
		// one for the per-sale share-out.
		if a2 >= 100 && out.Lines[1].Points < a2/100-1 {
			t.Fatalf("line 2 amount %d earned %d", a2, out.Lines[1].Points)
		}
	})
}
