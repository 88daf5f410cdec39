package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// stepClock is a trusted wall clock that moves on by step at every
// reading, so concurrent callers spread their sales over a span of time.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t, true
}

func (c *stepClock) set(t time.Time, step time.Duration) {
	c.mu.Lock()
	c.t, c.step = t, step
	c.mu.Unlock()
}

// heavyPurchases is the history of the heavy member: 10,000 purchases in
// the last twelve months (about 27 a day).
const heavyPurchases = 10_000

// BenchmarkSaleHeavyMember compares a sale for a member with 10,000
// purchases in the last year with a sale for a new member, interleaved in
// the same run on the same ledger: the durable sale's median latency and
// the committer's CPU per sale (in a rolled-back transaction, no disk).
// A sale's cost must not grow with the member's history.
func BenchmarkSaleHeavyMember(b *testing.B) {
	const n = 200
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ck := &stepClock{}
	// Every clock reading (enrolments, sales) moves the clock on: the
	// history ends before now, so the timed sales are trusted.
	ck.set(now.AddDate(-1, 0, 0).Add(time.Hour), (365*24*time.Hour-2*time.Hour)/(heavyPurchases+n+1))
	l, err := Open(filepath.Join(benchDir(b), "ledger.db"), &Options{Register: "r1", Engine: benchEngine{}, Clock: ck})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Enrol(ctx, Member{ID: "heavy"}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := l.Enrol(ctx, Member{ID: fmt.Sprintf("new%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	// The history, through the ledger itself, 16 callers at a time.
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= heavyPurchases; i = next.Add(1) {
				req := typicalSale(fmt.Sprintf("h%d", i), 0)
				req.MemberID = "heavy"
				if _, err := l.RecordSale(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	fmt.Printf("REPORT heavy_history_build_s %.1f s (%d purchases)\n", time.Since(t0).Seconds(), heavyPurchases)
	ck.set(now, time.Millisecond)
	sale := func(id, member string) time.Duration {
		req := typicalSale(id, 0)
		req.MemberID = member
		t := time.Now()
		if _, err := l.RecordSale(ctx, req); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	heavy, fresh := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		heavy[i] = sale(fmt.Sprintf("x%d", i), "heavy")
		fresh[i] = sale(fmt.Sprintf("y%d", i), fmt.Sprintf("new%d", i))
	}
	// CPU: the sale path alone against a write transaction that is rolled
	// back, heavy and new member alternating.
	cpu := func(member string, i int) time.Duration {
		req := typicalSale(fmt.Sprintf("c%s%d", member, i), 0)
		req.MemberID = member
		amounts, gross, err := checkSale(&req)
		if err != nil {
			b.Fatal(err)
		}
		fp := fingerprint(saleShape{MemberID: req.MemberID, Lines: req.Lines, Tenders: req.Tenders})
		tx, err := l.db.Begin(true)
		if err != nil {
			b.Fatal(err)
		}
		defer func(tx *bolt.Tx) { _ = tx.Rollback() }(tx)
		w := &wtx{l: l, tx: tx, eng: l.eng()}
		w.seq = getU64(tx.Bucket(bState), kSeq)
		w.now, w.trusted = now, true
		w.st.decide, w.st.trusted, w.st.wall = now, true, now
		t := time.Now()
		if _, err := w.recordSale(&req, fp, amounts, gross); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	// The CPU runs below open bbolt's write transaction themselves: the
	// committer must hold none (a checkpoint of the sales above first).
	if err := l.exclusive(nil); err != nil {
		b.Fatal(err)
	}
	heavyCPU, freshCPU := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		heavyCPU[i] = cpu("heavy", i)
		freshCPU[i] = cpu(fmt.Sprintf("new%d", i), i)
	}
	// The same member behind head office's summary: its last summary
	// covered only the first purchase (a register offline since), so
	// every later event of this register is added to head office's
	// balance. Its effective balance must not be worked out from them.
	if err := l.ApplyMemberSummary(ctx, MemberSummary{Member: Member{ID: "heavy"}, Balance: 1000, Covered: 1, Version: 1}); err != nil {
		b.Fatal(err)
	}
	if err := l.exclusive(nil); err != nil {
		b.Fatal(err)
	}
	behindCPU, fresh2CPU := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		behindCPU[i] = cpu("heavy", n+i)
		fresh2CPU[i] = cpu(fmt.Sprintf("new%d", i), n+i)
	}
	h, f := median(heavy), median(fresh)
	hc, fc := median(heavyCPU), median(freshCPU)
	bc, fc2 := median(behindCPU), median(fresh2CPU)
	fmt.Printf("REPORT sale_heavy_member_median_us %.0f us\n", float64(h.Microseconds()))
	fmt.Printf("REPORT sale_new_member_median_us %.0f us\n", float64(f.Microseconds()))
	fmt.Printf("REPORT sale_cpu_heavy_member_us %.1f us\n", float64(hc.Nanoseconds())/1000)
	fmt.Printf("REPORT sale_cpu_new_member_us %.1f us\n", float64(fc.Nanoseconds())/1000)
	fmt.Printf("REPORT sale_cpu_heavy_vs_new_member %.2f ratio\n", float64(hc)/float64(fc))
	fmt.Printf("REPORT sale_cpu_heavy_behind_summary_us %.1f us\n", float64(bc.Nanoseconds())/1000)
	fmt.Printf("REPORT sale_cpu_heavy_behind_summary_vs_new_member %.2f ratio\n", float64(bc)/float64(fc2))
	fmt.Printf("RATIO sale_heavy_vs_new_member %.2f\n", float64(h)/float64(f))
}
