package ledger

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() (time.Time, bool) { return c.t, true }

// TestUndecodablePurchaseRowFailsTheSale: a purchase row that does not
// decode is an inconsistency the sale refuses (nothing written), not a row
// skipped in silence that would give the member a lower tier.
func TestUndecodablePurchaseRowFailsTheSale(t *testing.T) {
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
	prefix := rowPrefix(rowPurchase, "m1")
	if err := l.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRows).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			return tx.Bucket(bRows).Put(append([]byte(nil), k...), []byte("{not json"))
		}
		return errors.New("no purchase row")
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
