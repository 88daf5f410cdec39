package rules_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// BenchmarkEvaluate measures scoring a 10-line member sale with the rich
// test rule set, once through RuleSet.Evaluate (validates and loads the time
// zone on every call) and once through a compiled Engine, and prints the
// per-sale cost of each and their ratio. It does a fixed amount of work
// whatever b.N is (make bench runs it with -benchtime 1x).
func BenchmarkEvaluate(b *testing.B) {
	data, err := os.ReadFile("testdata/ruleset.json")
	if err != nil {
		b.Fatal(err)
	}
	rs, err := rules.Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	e, err := rs.Compile()
	if err != nil {
		b.Fatal(err)
	}
	in := rules.SaleInput{
		Member: rules.MemberState{ID: "m", Birthday: "1990-12-01", Spend12m: 120_000, Visits12m: 14, Purchases: 20},
		At:     time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), ClockTrusted: true,
	}
	for i := range 10 {
		in.Lines = append(in.Lines, rules.LineInput{No: i + 1, SKU: fmt.Sprint("sku", i), Category: []string{"wine", "food", "tobacco"}[i%3], Amount: int64(199 + 1000*i)})
	}
	const n = 20_000
	measure := func(f func() error) time.Duration {
		start := time.Now()
		for range n {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start) / n
	}
	for range b.N {
		viaRuleSet := measure(func() error { _, err := rs.Evaluate(in); return err })
		viaEngine := measure(func() error { _, err := e.Evaluate(in); return err })
		fmt.Printf("REPORT rules_evaluate_10_lines_engine %d ns\n", viaEngine.Nanoseconds())
		fmt.Printf("REPORT rules_evaluate_10_lines_ruleset %d ns\n", viaRuleSet.Nanoseconds())
		fmt.Printf("RATIO rules_ruleset_vs_engine %.2f\n", float64(viaRuleSet)/float64(viaEngine))
	}
}
