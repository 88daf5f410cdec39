package ledger

import (
	"compress/gzip"
	"context"
	"encoding/json"
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
		seq := getU64(tx.Bucket(bState), kSeq)
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
	before, err := l.Outbox(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.RecordSale(context.Background(), SaleRequest{ID: "after", MemberID: "m1", HQReachable: true, Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 500}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	// Records the release wrote (JSON) and records by reference read alike.
	recs, err := l.Outbox(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 || len(recs) != len(before)+1+len(res.Events) {
		t.Fatalf("outbox: %d records before the sale, %d after (%d events)", len(before), len(recs), len(res.Events))
	}
	checkRefRecords(t, l, recs[len(before):], res)
	err = l.view(func(tx *bolt.Tx) error {
		for _, k := range hotKeys {
			if tx.Bucket(bMeta).Get(k) != nil {
				t.Errorf("meta still holds %s", k)
			}
		}
		if st := tx.Bucket(bState).Stats(); st.InlineBucketN != 1 {
			t.Errorf("state bucket is not inline: %+v", st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkRefRecords: a sale's outbox records are references (a few dozen
// bytes) that read back as the sale's and its events' JSON.
func checkRefRecords(t *testing.T, l *Ledger, recs []OutboxRecord, res SaleResult) {
	t.Helper()
	err := l.view(func(tx *bolt.Tx) error {
		for _, r := range recs {
			v := tx.Bucket(bOutbox).Get(u64(r.Seq))
			if len(v) == 0 || v[0] != outboxRefMark || len(v) > 100 {
				t.Errorf("record %d is not a reference: %d bytes %q", r.Seq, len(v), v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var s Sale
	if err := json.Unmarshal(recs[0].Data, &s); err != nil || recs[0].Type != OutSale || s.ID != res.Sale.ID || s.Seq != recs[0].Seq || !recs[0].WallTime.Equal(res.Sale.WallTime) || recs[0].ClockTrusted != res.Sale.ClockTrusted {
		t.Errorf("sale record %+v: %+v %v", recs[0], s, err)
	}
	for i, ev := range res.Events {
		r := recs[1+i]
		var got PointEvent
		if err := json.Unmarshal(r.Data, &got); err != nil || r.Type != OutPoints || r.ID != ev.ID || got.ID != ev.ID || got.Points != ev.Points {
			t.Errorf("event record %+v: %+v %v", r, got, err)
		}
	}
}
