package checkout_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

func p99(d []time.Duration) time.Duration { return pct(d, 99) }

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)*p+99)/100-1]
}

// BenchmarkSaleAckVsCommit compares, on a real ledger file, the time from
// "complete" to the ok signal through the checkout machine with the
// ledger's own commit of the same kind of sale, interleaved in one run.
func BenchmarkSaleAckVsCommit(b *testing.B) {
	ctx := context.Background()
	l := ledgertest.Open(b, &ledger.Options{Register: "r1", Engine: &ledgertest.Engine{Version: 1}})
	if err := l.PutCatalogue(ctx, 1, []ledger.Item{{SKU: "4006381333931", Name: "Pen", Price: 250}}); err != nil {
		b.Fatal(err)
	}
	const members = 50
	for i := 0; i < members; i++ {
		if _, err := l.Enrol(ctx, ledger.Member{ID: fmt.Sprintf("m%d", i), Name: "M", Aliases: []string{fmt.Sprintf("C%d", i)}}); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	m := checkout.New(checkout.Options{Register: "r1", Catalog: l, Members: l, Recorder: l,
		NewSaleID: func() string { n++; return fmt.Sprintf("co-%d", n) }})
	const rounds = 1000
	var ack, commit []time.Duration
	for i := 0; i < rounds; i++ {
		viaCheckout := func() time.Duration {
			m.Handle(ctx, checkout.Event{Kind: checkout.EvItem, Code: "4006381333931"})
			m.Handle(ctx, checkout.Event{Kind: checkout.EvCard, Code: fmt.Sprintf("C%d", i%members)})
			t0 := time.Now()
			fx := m.Handle(ctx, checkout.Event{Kind: checkout.EvControl, Action: checkout.ActComplete})
			d := time.Since(t0)
			if fx.Err != nil || len(fx.Signals) == 0 || fx.Signals[0] != checkout.SignalOK {
				b.Fatalf("complete: %+v", fx)
			}
			return d
		}
		direct := func() time.Duration {
			t0 := time.Now()
			_, err := l.RecordSale(ctx, ledger.SaleRequest{ID: fmt.Sprintf("direct-%d", i), MemberID: fmt.Sprintf("m%d", (i+7)%members),
				Lines:   []ledger.Line{{No: 1, SKU: "4006381333931", Quantity: 1, UnitPrice: 250}},
				Tenders: []ledger.Tender{{Kind: "cash", Amount: 250}}, HQReachable: true})
			d := time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}
		// Alternate which goes first so neither always follows the other's
		// fsync.
		var d, dc time.Duration
		if i%2 == 0 {
			d, dc = viaCheckout(), direct()
		} else {
			dc, d = direct(), viaCheckout()
		}
		if i >= 20 {
			ack, commit = append(ack, d), append(commit, dc)
		}
	}
	fmt.Printf("REPORT sale_ack_p99_ms %.3f ms\n", float64(p99(ack))/1e6)
	fmt.Printf("REPORT ledger_commit_p99_ms %.3f ms\n", float64(p99(commit))/1e6)
	fmt.Printf("RATIO sale_ack_vs_commit %.3f\n", float64(p99(ack))/float64(p99(commit)))
	// p99 of fdatasync-bound commits is noisy on a shared disk; the medians
	// show the machine's own overhead more steadily.
	fmt.Printf("REPORT sale_ack_vs_commit_p50 %.3f ratio\n", float64(pct(ack, 50))/float64(pct(commit, 50)))
}
