package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

// BenchmarkGroupCommitVsBoltBatch compares the ledger's group committer
// (commit.go) with bbolt's own DB.Batch on the same work: callers
// goroutines each recording 160/callers typical sales, the same sale
// transaction code (w.recordSale) on the same layout, in two ledgers in
// the same directory. DB.Batch runs with MaxBatchSize set to the number
// of concurrent callers (its best case: a full batch commits at once
// instead of after MaxBatchDelay) or to the committer's cap, and with its
// default MaxBatchDelay (10ms) or 1ms; the lone caller, a register's usual
// load, runs with the same settings, as a daemon configured once would.
// Each case prints RATIO groupcommit_vs_boltbatch_...: the committer's
// wall time per sale over DB.Batch's (wall time: the work waits for
// fdatasync).
func BenchmarkGroupCommitVsBoltBatch(b *testing.B) {
	const maxCallers = 16
	dir := benchDir(b)
	ctx := context.Background()
	committed := openBench(b, filepath.Join(dir, "committer.db"))
	batched := openBench(b, filepath.Join(dir, "batch.db"))
	// DB.Batch below commits bbolt itself: batched's committer must hold
	// no write transaction (a checkpoint of the enrolments first).
	if err := batched.exclusive(nil); err != nil {
		b.Fatal(err)
	}
	defaultDelay := batched.db.MaxBatchDelay // bbolt's default, 10ms
	// recordBatched is RecordSale with the committer replaced by DB.Batch.
	recordBatched := func(req SaleRequest) error {
		amounts, gross, err := checkSale(&req)
		if err != nil {
			return err
		}
		fp := fingerprint(saleShape{MemberID: req.MemberID, Lines: req.Lines, Tenders: req.Tenders, Redemptions: req.Redemptions})
		return batched.db.Batch(func(tx *bolt.Tx) error {
			_, err := batched.runAlone(tx, func(w *wtx) (any, error) { return w.recordSale(&req, fp, amounts, gross) })
			return err
		})
	}
	for _, tc := range []struct {
		callers, size int
		delay         time.Duration
		ratio         string
	}{
		// bbolt's defaults with MaxBatchSize exactly the number of callers:
		// DB.Batch's best case for this load.
		{maxCallers, maxCallers, defaultDelay, "groupcommit_vs_boltbatch_16"},
		// MaxBatchSize the committer's own cap (Options.MaxBatch).
		{maxCallers, committed.maxBatch, defaultDelay, "groupcommit_vs_boltbatch_cap_16"},
		// A register's usual load: one cashier.
		{1, maxCallers, defaultDelay, "groupcommit_vs_boltbatch_1"},
		// MaxBatchDelay tuned down to 1ms.
		{maxCallers, maxCallers, time.Millisecond, "groupcommit_vs_boltbatch_1ms_16"},
		{1, maxCallers, time.Millisecond, "groupcommit_vs_boltbatch_1ms_1"},
	} {
		callers := tc.callers
		salesPerCaller := 160 / callers
		var n int // ops so far, for unique sale ids
		sales := func(record func(req SaleRequest) error) func(b *testing.B) {
			return func(b *testing.B) {
				n++ // ids unique across sub-benchmarks too: each side has one ledger
				var wg sync.WaitGroup
				for g := range callers {
					wg.Go(func() {
						for i := range salesPerCaller {
							req := typicalSale(fmt.Sprintf("%s-op%d-g%d-%d", tc.ratio, n, g, i), g*1000+i)
							if err := record(req); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			}
		}
		b.Run(fmt.Sprintf("callers=%d/size=%d/delay=%v", callers, tc.size, tc.delay), func(b *testing.B) {
			batched.db.MaxBatchSize, batched.db.MaxBatchDelay = tc.size, tc.delay
			benchcmp.Compare(b, benchcmp.Options{Ratio: tc.ratio,
				Items: callers * salesPerCaller, Unit: "sale", Wall: true},
				benchcmp.Case{Name: "committer", Op: sales(func(req SaleRequest) error {
					_, err := committed.RecordSale(ctx, req)
					return err
				})},
				benchcmp.Case{Name: "boltbatch", Op: sales(recordBatched)})
		})
	}
}

// runAlone runs one op in tx as tryBatch runs each op of a batch (keep the
// two in step), for BenchmarkGroupCommitVsBoltBatch: DB.Batch gives each
// call the shared transaction, so the sequence, the counts and the clock
// anchor are read and written back per call.
func (l *Ledger) runAlone(tx *bolt.Tx, fn func(w *wtx) (any, error)) (any, error) {
	w := &wtx{l: l, tx: tx, eng: l.eng()}
	w.seq = getU64(tx.Bucket(bState), kSeq)
	w.anchor = l.ck.anchor()
	anchorStart := w.anchor
	tx.Bucket(bOutbox).FillPercent = 1
	start := w.seq
	var next clockAnchor
	w.st, next = l.ck.judge(w.anchor, readClock(l.clock))
	w.now, w.trusted = w.st.wall, w.st.trusted
	res, err := w.run(fn)
	if err != nil {
		return nil, err
	}
	if !w.anchorSet {
		w.anchor = next
	}
	if w.seq != start {
		if err := tx.Bucket(bState).Put(kSeq, u64(w.seq)); err != nil {
			return nil, err
		}
	}
	if w.delta != (counts{}) {
		if err := addCounts(tx, w.delta); err != nil {
			return nil, err
		}
	}
	if !w.anchor.HWM.Equal(anchorStart.HWM) || w.anchor.Boot != anchorStart.Boot || w.anchor.Mono != anchorStart.Mono {
		b, err := json.Marshal(w.anchor)
		if err == nil {
			err = tx.Bucket(bState).Put(kClock, b)
		}
		if err != nil {
			return nil, err
		}
		l.ck.mu.Lock()
		l.ck.a = w.anchor
		l.ck.mu.Unlock()
	}
	return res, nil
}
