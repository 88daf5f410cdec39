package rules_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// variants compiles the test rule set under every rounding mode, rounding
// scope and stacking policy.
func variants(f *testing.F) map[[3]int]*rules.Engine {
	data, err := os.ReadFile("testdata/ruleset.json")
	if err != nil {
		f.Fatal(err)
	}
	out := map[[3]int]*rules.Engine{}
	for i, mode := range []rules.Rounding{rules.RoundFloor, rules.RoundHalfEven, rules.RoundHalfUp} {
		for j, scope := range []rules.RoundScope{rules.PerLine, rules.PerSale} {
			for k, st := range []rules.Stacking{rules.StackHighest, rules.StackMultiply} {
				rs, err := rules.Decode(data)
				if err != nil {
					f.Fatal(err)
				}
				rs.Rounding, rs.RoundScope, rs.Stacking = mode, scope, st
				e, err := rs.Compile()
				if err != nil {
					f.Fatal(err)
				}
				out[[3]int{i, j, k}] = e
			}
		}
	}
	return out
}

func lineSum(o rules.Outcome) int64 {
	var s int64
	for _, l := range o.Lines {
		s += l.Points
	}
	return s
}

// FuzzEvaluate scores arbitrary sales under every rounding mode, scope and
// stacking policy. It must never panic, never give a line negative or
// absurd points, never return an undocumented error, and the results must
// keep their order: floor <= half-even <= half-up, and per-sale rounding
// differs from per-line rounding by less than one point per line.
func FuzzEvaluate(f *testing.F) {
	engines := variants(f)
	f.Add(int64(1000), int64(250), int64(150), "x", "wine", int64(0), 0, 0, "--02-29", int64(1_700_000_000), true, false, uint8(0))
	f.Add(int64(-1), int64(0), int64(0), "4006381333931", "", int64(600_000), 50, 3, "1990-11-27", int64(1_795_000_000), true, true, uint8(1))
	f.Add(rules.MaxAmount, rules.MaxAmount, int64(0), "", "tobacco", int64(-5), -1, -1, "bad", int64(0), false, false, uint8(2))
	f.Add(int64(1<<62), int64(1), int64(1), "a", "b", int64(1<<62), 1<<30, 1, "", int64(-1<<40), true, true, uint8(3))
	f.Add(int64(125), int64(125), int64(125), "s", "wine", int64(0), 0, 1, "", int64(1_795_000_000), true, false, uint8(1))
	f.Fuzz(func(t *testing.T, a1, a2, a3 int64, sku, cat string, spend int64, visits, purchases int, birthday string, unix int64, trusted, pending bool, stack uint8) {
		in := rules.SaleInput{
			Lines: []rules.LineInput{
				{No: 1, SKU: sku, Category: cat, Amount: a1},
				{No: 2, SKU: "other", Amount: a2},
				{No: 3, SKU: "third", Category: "wine", Amount: a3},
			},
			Member: rules.MemberState{ID: "m", Spend12m: spend, Visits12m: visits, Purchases: purchases,
				Birthday: birthday, FirstBonusPending: pending},
			At: time.Unix(unix, 0), ClockTrusted: trusted,
		}
		k := int(stack % 2)
		var sums [3][2]int64
		for i := range 3 {
			for j := range 2 {
				out, err := engines[[3]int{i, j, k}].Evaluate(in)
				if err != nil {
					if !errors.Is(err, rules.ErrInput) && !errors.Is(err, rules.ErrOverflow) {
						t.Fatalf("undocumented error: %v", err)
					}
					return // the same input fails under every variant
				}
				if len(out.Lines) != 3 {
					t.Fatalf("got %d lines, want 3", len(out.Lines))
				}
				for _, l := range out.Lines {
					if l.Points < 0 || l.Points > rules.MaxPoints {
						t.Fatalf("line %d points %d out of range", l.No, l.Points)
					}
				}
				if tot := out.Total(); tot < 0 || tot > rules.MaxPoints {
					t.Fatalf("total %d out of range", tot)
				}
				// Line 2 (no SKU or category rate) earns at least the base
				// rate of 1 point per 100 minor units, rounded down.
				if a2 >= 100 && out.Lines[1].Points < a2/100 {
					t.Fatalf("line 2 amount %d earned %d", a2, out.Lines[1].Points)
				}
				sums[i][j] = lineSum(out)
			}
		}
		for j := range 2 {
			if !(sums[0][j] <= sums[1][j] && sums[1][j] <= sums[2][j]) {
				t.Fatalf("scope %d: floor %d, half-even %d, half-up %d out of order", j, sums[0][j], sums[1][j], sums[2][j])
			}
		}
		for i := range 3 {
			if d := sums[i][1] - sums[i][0]; d < -3 || d > 3 {
				t.Fatalf("mode %d: per-sale %d vs per-line %d differ by more than the line count", i, sums[i][1], sums[i][0])
			}
		}
	})
}
