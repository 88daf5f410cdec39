package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/device/testkit"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() (time.Time, bool) { return c.t, true }

// TestUndecodableWindowRowFailsTheSale: a row of the window (a day row,
// window.go) that does not decode is an inconsistency the sale refuses
// (nothing written), not a row skipped in silence that would give the
// member a lower tier.
func TestUndecodableWindowRowFailsTheSale(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) {
			rs, err := rules.Decode([]byte(`{"version":1,"timezone":"UTC","earn":{"points_per_unit":"1"},"tiers":[{"name":"classic"},{"name":"silver","min_spend":1000}]}`))
			if err != nil {
				t.Fatal(err)
			}
			l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Rules: rs, Clock: fixedClock{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			if _, err := l.Enrol(ctx, Member{ID: "m1", Name: "Dana"}); err != nil {
				t.Fatal(err)
			}
			sale := func(id string) error {
				_, err := l.RecordSale(ctx, SaleRequest{ID: id, MemberID: "m1", HQReachable: true, Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 500}}})
				return err
			}
			if err := sale("s1"); err != nil {
				t.Fatal(err)
			}
			if _, _, ok, err := l.TierWindow("m1"); !ok || err != nil {
				t.Fatalf("window before: %v %v", ok, err)
			}
			prefix := rowPrefix(rowWindow, "m1")
			if err := l.update(func(tx *bolt.Tx) error {
				c := tx.Bucket(bRows).Cursor()
				for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
					return tx.Bucket(bRows).Put(append([]byte(nil), k...), []byte("{not a day"))
				}
				return errors.New("no day row")
			}); err != nil {
				t.Fatal(err)
			}
			// The committer keeps the window it last computed in memory, which a
			// row changed behind its back does not touch: with the window kept the
			// sale meets the row when it adds its entry; after a restart it meets
			// it when it sums the window.
			if reopen {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if l, err = Open(l.path, &Options{Register: "r1", Rules: rs, Clock: fixedClock{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}}); err != nil {
					t.Fatal(err)
				}
				defer l.Close()
			}
			before, _ := l.Stats()
			if err := sale("s2"); !errors.Is(err, ErrInconsistent) {
				t.Fatalf("sale over a broken purchase row: %v, want ErrInconsistent", err)
			}
			after, _ := l.Stats()
			if after.LastSeq != before.LastSeq || after.Sales != before.Sales {
				t.Fatalf("the refused sale wrote something: %+v -> %+v", before, after)
			}
			if _, _, _, err := l.TierWindow("m1"); !errors.Is(err, ErrInconsistent) {
				t.Fatalf("TierWindow over a broken row: %v", err)
			}
		})
	}
}

// TestWindowFromDayRowsAgreesWithTheScan: the window kept in day rows
// gives the member the same spend and visits as reading every purchase of
// the year, at window ends inside days, on day boundaries and a year
// apart, with refunds among the purchases.
func TestWindowFromDayRowsAgreesWithTheScan(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ck := &stepClock{}
	ck.set(start, 13*time.Hour+13*time.Minute)
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Engine: benchEngine{}, Clock: ck})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Enrol(ctx, Member{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	for i := range 800 { // about 14 months
		req := typicalSale(fmt.Sprintf("s%d", i), 0)
		req.MemberID = "m1"
		if _, err := l.RecordSale(ctx, req); err != nil {
			t.Fatal(err)
		}
		if i%7 == 3 {
			if _, err := l.Refund(ctx, RefundRequest{ID: fmt.Sprintf("r%d", i), SaleID: req.ID, Lines: []RefundLine{{No: 2, Quantity: 1}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	err = l.view(func(tx *bolt.Tx) error {
		rec, err := readMember(tx, "m1")
		if err != nil {
			return err
		}
		seq := getU64(tx.Bucket(bState), kSeq)
		ends := []time.Time{start.AddDate(0, 3, 0), start.AddDate(1, 0, 0), start.AddDate(1, 1, 12).Add(5*time.Hour + 7*time.Minute), start.AddDate(2, 0, 0)}
		for d := range 40 {
			ends = append(ends, start.AddDate(1, 0, d).Add(time.Duration(d)*37*time.Minute))
		}
		for _, end := range ends {
			scan, err := memberWindow(tx.Bucket(bRows), rec, end, seq)
			if err != nil {
				return err
			}
			days, err := memberWindowNow(tx.Bucket(bRows), rec, end)
			if err != nil {
				return err
			}
			if scan.Spend12m != days.Spend12m || scan.Visits12m != days.Visits12m || scan.Visits12m == 0 && end.Before(start.AddDate(1, 2, 0)) {
				t.Errorf("window ending %v: scan %d/%d, day rows %d/%d", end, scan.Spend12m, scan.Visits12m, days.Spend12m, days.Visits12m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeptWindowAgreesWithTheDayRows: the window the committer keeps in
// memory (winCache) gives every sale the same spend and visits as the
// day rows, whatever the order of entry times and window ends (ends that
// move on by minutes or months, that go back, entries dated after the
// end or before the window, refunds), across committed batches, batches
// rolled back and restarts (nothing kept).
func TestKeptWindowAgreesWithTheDayRows(t *testing.T) {
	seed, _ := testkit.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	members := []string{"m1", "m2", "m3"}
	for _, m := range members {
		if _, err := l.Enrol(ctx, Member{ID: m}); err != nil {
			t.Fatal(err)
		}
	}
	end := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	errRollBack := errors.New("roll back")
	kept := 0
	for i := range 1200 {
		switch r := rng.IntN(200); {
		case r < 190:
			end = end.Add(time.Duration(rng.Int64N(int64(30 * time.Hour))))
		case r < 192:
			end = end.Add(-time.Duration(rng.Int64N(int64(400 * 24 * time.Hour))))
		case r < 194:
			end = end.AddDate(0, rng.IntN(14), 0)
		}
		m := members[rng.IntN(len(members))]
		at := end.Add(-time.Duration(rng.Int64N(int64(3 * time.Hour))))
		switch rng.IntN(200) {
		case 0:
			at = end.Add(time.Duration(rng.Int64N(int64(48 * time.Hour)))) // after the end
		case 1:
			at = end.AddDate(-1, 0, -rng.IntN(30)) // before the window
		}
		if rng.IntN(50) == 0 { // as after a restart
			l.win.mu.Lock()
			l.win.m = nil
			l.win.mu.Unlock()
		}
		amount := Money(rng.Int64N(5000) - 1000)
		rollBack := rng.IntN(10) == 0
		_, err := l.submit(ctx, func(w *wtx) (any, error) {
			rec, err := w.member(m)
			if err != nil {
				return nil, err
			}
			check := func(when string) error {
				got, err := w.windowNow(rec, end)
				if err != nil {
					return err
				}
				want, err := memberWindowNow(w.tx.Bucket(bRows), rec, end)
				if err != nil {
					return err
				}
				if got.Spend12m != want.Spend12m || got.Visits12m != want.Visits12m {
					return fmt.Errorf("step %d %s, window ending %v: kept %d/%d, day rows %d/%d", i, when, end, got.Spend12m, got.Visits12m, want.Spend12m, want.Visits12m)
				}
				return nil
			}
			if err := check("before"); err != nil {
				return nil, err
			}
			if _, ok := w.winCache(m); ok {
				kept++
			}
			w.windowAdd(m, at, amount)
			if err := check("after"); err != nil {
				return nil, err
			}
			if rollBack {
				w.dirty = true // the batch is rolled back with what it added
				return nil, errRollBack
			}
			return nil, nil
		})
		if err != nil && !errors.Is(err, errRollBack) {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	if kept < 400 {
		t.Fatalf("seed %d: the kept window answered only %d of 1200 steps", seed, kept)
	}
}
