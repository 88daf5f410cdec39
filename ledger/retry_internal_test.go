package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestSalesRetriedAfterADirtyFailure: sales whose batch is rolled back
// (another op of it fails after writing) and retried one by one come out
// as if recorded alone: replay returns the same result, one outbox sale
// each, Check passes. It runs the arena (arena.go) across retries: a
// retried batch gets a new transaction and a new arena.
func TestSalesRetriedAfterADirtyFailure(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for m := range 4 {
		if _, err := l.Enrol(ctx, Member{ID: fmt.Sprintf("m%d", m)}); err != nil {
			t.Fatal(err)
		}
	}
	errBoom := errors.New("boom")
	const callers, each = 16, 40
	var mu sync.Mutex
	first := map[string]SaleResult{}
	var boomIDs []string
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for n := range each {
				id := fmt.Sprintf("g%d-%d", g, n)
				req := typicalSale(id, g+n)
				req.MemberID = fmt.Sprintf("m%d", (g+n)%4)
				if n%5 == 2 {
					amounts, gross, err := checkSale(&req)
					if err != nil {
						t.Error(err)
						return
					}
					fp := saleFingerprint(&saleShape{MemberID: req.MemberID, Lines: req.Lines, Tenders: req.Tenders})
					_, err = l.submit(ctx, func(w *wtx) (any, error) {
						if _, err := w.recordSale(&req, fp, amounts, gross); err != nil {
							return nil, err
						}
						w.dirty = true
						return nil, errBoom
					})
					if !errors.Is(err, errBoom) {
						t.Errorf("%s: %v", id, err)
					}
					mu.Lock()
					boomIDs = append(boomIDs, id)
					mu.Unlock()
					continue
				}
				res, err := l.RecordSale(ctx, req)
				if err != nil {
					t.Errorf("%s: %v", id, err)
					continue
				}
				mu.Lock()
				first[id] = res
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	for _, id := range boomIDs {
		if _, err := l.Sale(id); err == nil {
			t.Fatalf("%s: rolled back sale is recorded", id)
		}
	}
	var earned Points
	for id, res := range first {
		g, n := 0, 0
		fmt.Sscanf(id, "g%d-%d", &g, &n)
		req := typicalSale(id, g+n)
		req.MemberID = fmt.Sprintf("m%d", (g+n)%4)
		again, err := l.RecordSale(ctx, req)
		if err != nil || !again.Replayed {
			t.Fatalf("%s: replay %v %v", id, again.Replayed, err)
		}
		again.Replayed = false
		a, b := again, res
		a.Balance, b.Balance = 0, 0
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("%s: replay\n%s\nfirst\n%s", id, ja, jb)
		}
		earned += res.Earned
	}
	var bal Points
	for m := range 4 {
		b, err := l.Balance(fmt.Sprintf("m%d", m))
		if err != nil {
			t.Fatal(err)
		}
		bal += b
	}
	if bal != earned {
		t.Fatalf("balances %d, earned %d", bal, earned)
	}
	recs, err := l.Outbox(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	sales := 0
	for _, r := range recs {
		if seen[r.ID] {
			t.Fatalf("outbox id %s twice", r.ID)
		}
		seen[r.ID] = true
		if r.Type == OutSale {
			sales++
		}
	}
	if sales != len(first) {
		t.Fatalf("outbox sales %d, recorded %d", sales, len(first))
	}
	t.Logf("%d sales, %d rolled back, commits %d, ops committed %d", len(first), len(boomIDs), l.commits.Load(), l.committed.Load())
}
