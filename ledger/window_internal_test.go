package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() (time.Time, bool) { return c.t, true }

// TestUndecodableWindowRowFailsTheSale: a row of the window (a day row,
// window.go) that does not decode is an inconsistency the sale refuses
// (nothing written), not a row skipped in silence that would give the
// member a lower tier.
func TestUndecodableWindowRowFailsTheSale(t *testing.T) {
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
	if err := l.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRows).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			return tx.Bucket(bRows).Put(append([]byte(nil), k...), []byte("{not a day"))
		}
		return errors.New("no day row")
	}); err != nil {
		t.Fatal(err)
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
