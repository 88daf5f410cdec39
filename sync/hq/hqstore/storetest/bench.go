package storetest

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// HeavyPurchases is the history of the heavy member of
// SummaryHeavyVsNew.
const HeavyPurchases = 10000

// SummaryHeavyVsNew measures, on s (empty, its clock at t0 + 30 days or
// later), the CPU time (with wall, the wall time of 300 calls each,
// alternating) of one member summary (Backend.Summary, with the
// twelve-month figures and the retention view) for a member with
// HeavyPurchases purchases (one sale a day, every tenth refunded in
// part) and for a new member with one, alternating in rounds, and
// returns both medians per summary. A summary's cost should not grow
// with the member's history (issue 11: keep running figures).
func SummaryHeavyVsNew(b *testing.B, s hqstore.Backend, wall bool) (heavy, fresh time.Duration) {
	b.Helper()
	var evs []hqstore.Event
	seq := uint64(0)
	add := func(e hqstore.Event) {
		evs = append(evs, e)
		if len(evs) == 500 {
			if _, err := s.Apply(evs); err != nil {
				b.Fatal(err)
			}
			evs = nil
		}
	}
	sale := func(member string, n int, at time.Time) {
		seq++
		id := fmt.Sprintf("sale-%s-%d", member, n)
		e := Ev("h-r1", seq, ledger.OutSale, ledger.Sale{ID: id, Register: "h-r1", MemberID: member, Total: ledger.Money(1000 + n%700),
			WallTime: at, ClockTrusted: true, Lines: []ledger.Line{{No: 1, SKU: "x", Category: "food", Quantity: 1, UnitPrice: ledger.Money(1000 + n%700)}}})
		e.WallTime = at
		add(e)
		if n%10 == 9 {
			seq++
			r := Ev("h-r1", seq, ledger.OutRefund, map[string]any{"id": id + "-r", "sale_id": id, "register": "h-r1", "member_id": member, "amount": 300})
			r.WallTime = at
			add(r)
		}
	}
	seq++
	add(Ev("h-r1", seq, ledger.OutMember, ledger.Member{ID: "heavy", EnrolledAt: t0.AddDate(-30, 0, 0), EnrolledTrusted: true}))
	for n := 0; n < HeavyPurchases; n++ {
		sale("heavy", n, t0.AddDate(0, 0, n-HeavyPurchases))
	}
	seq++
	add(Ev("h-r1", seq, ledger.OutMember, ledger.Member{ID: "new", EnrolledAt: t0, EnrolledTrusted: true}))
	sale("new", 0, t0)
	if len(evs) > 0 {
		if _, err := s.Apply(evs); err != nil {
			b.Fatal(err)
		}
	}
	sum, err := s.Summary("heavy")
	if err != nil || sum.Retention == nil || sum.Retention.PurchaseDays < HeavyPurchases*9/10 {
		b.Fatalf("heavy member's summary %+v (%v)", sum.Retention, err)
	}
	if sum, err := s.Summary("new"); err != nil || sum.Retention == nil || sum.Retention.PurchaseDays != 1 {
		b.Fatalf("new member's summary %+v (%v)", sum.Retention, err)
	}
	if wall {
		// A database server does the work: alternate call by call and
		// compare the means of the wall times.
		var h, f time.Duration
		const n = 300
		for range n {
			t0 := time.Now()
			if _, err := s.Summary("heavy"); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := s.Summary("new"); err != nil {
				b.Fatal(err)
			}
			h, f = h+t1.Sub(t0), f+time.Since(t1)
		}
		return h / n, f / n
	}
	// Each sample repeats the call until it has used 20ms of CPU, above
	// getrusage's tick.
	sample := func(id string) time.Duration {
		c0 := cpu()
		n := 0
		for cpu()-c0 < 20*time.Millisecond || n < 3 {
			if _, err := s.Summary(id); err != nil {
				b.Fatal(err)
			}
			n++
		}
		return (cpu() - c0) / time.Duration(n)
	}
	var hs, fs []time.Duration
	for range 5 {
		hs = append(hs, sample("heavy"))
		fs = append(fs, sample("new"))
	}
	slices.Sort(hs)
	slices.Sort(fs)
	return hs[len(hs)/2], fs[len(fs)/2]
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
