package ledger

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openFixture copies testdata/schema4.db.gz, a ledger written by the
// release before schema 5 (two members, 31 sales over five months, a
// redemption, a refund, a void, expired lots, and one sale on an
// untrusted clock not corrected yet), to a fresh file.
func openFixture(t *testing.T) string {
	t.Helper()
	f, err := os.Open("testdata/schema4.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "release.db")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOpenMigratesReleaseLedger: a ledger written by the previous release
// (schema 4) is refused read-only, migrated on a read-write open, passes
// Check, keeps every member, sale and purchase, gives every window the
// same figures as reading the purchases one by one, and records sales.
func TestOpenMigratesReleaseLedger(t *testing.T) {
	path := openFixture(t)
	if _, err := Open(path, &Options{ReadOnly: true}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only open of a schema 4 file: %v", err)
	}
	at := time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC)
	l, err := Open(path, &Options{Register: "store1-r1", Clock: fixedClock{at}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats()
	if err != nil || st.Members != 2 || st.Sales != 32 {
		t.Fatalf("stats after migration: %+v %v", st, err)
	}
	for _, id := range []string{"m1", "m2"} {
		ps, err := l.Purchases(id)
		if err != nil || len(ps) < 15 {
			t.Fatalf("%s purchases after migration: %d %v", id, len(ps), err)
		}
	}
	err = l.view(func(tx *bolt.Tx) error {
		var v []byte
		if v = tx.Bucket(bMeta).Get(kSchema); len(v) != 8 || getU64(tx.Bucket(bMeta), kSchema) != SchemaVersion {
			t.Errorf("schema after migration: %x", v)
		}
		seq := getU64(tx.Bucket(bMeta), kSeq)
		for _, id := range []string{"m1", "m2"} {
			rec, err := readMember(tx, id)
			if err != nil {
				return err
			}
			if id == "m2" && len(rec.Untimed) != 1 {
				t.Errorf("m2 untimed entries %+v, want the uncorrected sale", rec.Untimed)
			}
			for d := 0; d < 400; d += 9 {
				end := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC).AddDate(0, 0, d).Add(time.Duration(d) * time.Hour)
				scan, err := memberWindow(tx.Bucket(bRows), rec, end, seq)
				if err != nil {
					return err
				}
				days, err := memberWindowNow(tx.Bucket(bRows), rec, end)
				if err != nil {
					return err
				}
				if scan.Spend12m != days.Spend12m || scan.Visits12m != days.Visits12m {
					t.Errorf("%s window ending %v: scan %d/%d, day rows %d/%d", id, end, scan.Spend12m, scan.Visits12m, days.Spend12m, days.Visits12m)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(context.Background(), SaleRequest{ID: "after", MemberID: "m1", HQReachable: true, Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 500}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
}
