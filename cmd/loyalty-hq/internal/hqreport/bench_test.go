package hqreport_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqreport"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// synthMembers draws members from a BG/NBD process until they hold about
// want purchases, each with an amount and a category.
func synthMembers(want int, end time.Time) ([]retention.Member, int) {
	cs := bgnbd.Simulate(rand.NewPCG(11, 12), bgnbd.Params{R: 0.9, Alpha: 4, A: 0.8, B: 3}, want/4, 104, 1.0/7)
	rng := rand.New(rand.NewPCG(5, 6))
	cats := []string{"coffee", "bakery", "deli", "wine"}
	var ms []retention.Member
	total := 0
	for i, c := range cs {
		if total >= want {
			break
		}
		first := end.Add(-time.Duration(c.T*7*24) * time.Hour)
		m := retention.Member{ID: fmt.Sprintf("m%07d", i), Consent: i%3 == 0}
		for k := 0; k <= c.X; k++ {
			off := 0.0
			if c.X > 0 {
				off = c.Tx * 7 * float64(k) / float64(c.X)
			}
			m.Purchases = append(m.Purchases, retention.Purchase{SaleID: fmt.Sprintf("s%d-%d", i, k), At: first.Add(time.Duration(off*24) * time.Hour),
				ClockTrusted: true, Amount: retention.Money(500 + rng.IntN(9000)), Categories: []string{cats[rng.IntN(len(cats))]}})
			total++
		}
		ms = append(ms, m)
	}
	return ms, total
}

// BenchmarkReport1M times a whole report (analysis with the BG/NBD fit,
// metrics, text, HTML, JSON and CSV) over a million purchases, against
// the floor of one pass over the same purchases in memory.
func BenchmarkReport1M(b *testing.B) {
	end := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	ms, total := synthMembers(1_000_000, end)
	b.ResetTimer()
	start := time.Now()
	var sum retention.Money
	for _, m := range ms {
		for _, p := range m.Purchases {
			if !p.At.After(end) {
				sum += p.Amount
			}
		}
	}
	pass := time.Since(start)
	start = time.Now()
	a, err := retention.Analyze(ms, end, nil)
	if err != nil {
		b.Fatal(err)
	}
	analyzed := time.Since(start)
	rep := hqreport.BuildReport(a)
	for _, w := range []func(io.Writer) error{rep.WriteText, rep.WriteHTML, rep.WriteJSON, rep.WriteMembersCSV} {
		if err := w(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	if sum == 0 || a.Model == nil {
		b.Fatalf("sum %d model %v", sum, a.ModelError)
	}
	fmt.Printf("REPORT report_purchases %d count\n", total)
	fmt.Printf("REPORT report_members %d count\n", len(ms))
	fmt.Printf("REPORT report_analyze_1m_purchases %.0f ms\n", float64(analyzed.Milliseconds()))
	fmt.Printf("REPORT report_total_1m_purchases %.0f ms\n", float64(el.Milliseconds()))
	fmt.Printf("REPORT report_floor_memory_pass %.1f ms\n", float64(pass.Microseconds())/1000)
	fmt.Printf("RATIO report_vs_pass %.1f\n", el.Seconds()/pass.Seconds())

	// The same report again in this process, as a long-running head
	// office makes it: memory the runtime already holds, a collector
	// paced by earlier reports. Medians of three of each; a figure beside
	// the ratio above, which stays the first (cold) report's.
	var warm, warmPass []time.Duration
	for range 3 {
		start := time.Now()
		var s retention.Money
		for _, m := range ms {
			for _, p := range m.Purchases {
				if !p.At.After(end) {
					s += p.Amount
				}
			}
		}
		warmPass = append(warmPass, time.Since(start))
		if s != sum {
			b.Fatalf("second pass summed %d, first %d", s, sum)
		}
		start = time.Now()
		a, err := retention.Analyze(ms, end, nil)
		if err != nil {
			b.Fatal(err)
		}
		rep := hqreport.BuildReport(a)
		for _, w := range []func(io.Writer) error{rep.WriteText, rep.WriteHTML, rep.WriteJSON, rep.WriteMembersCSV} {
			if err := w(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		warm = append(warm, time.Since(start))
	}
	slices.Sort(warm)
	slices.Sort(warmPass)
	fmt.Printf("REPORT report_warm_total_1m_purchases %.0f ms (median of 3 after the first)\n", float64(warm[1].Milliseconds()))
	fmt.Printf("REPORT report_warm_vs_pass %.1f ratio\n", warm[1].Seconds()/warmPass[1].Seconds())
}
