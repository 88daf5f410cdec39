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
func openFixture(t *testing.T) string { return copyFixture(t, "testdata/schema4.db.gz") }

// openFixture6 copies testdata/schema6.db.gz, written by schema 6 code
// (8f35fac): the schema 4 fixture opened (migrated) at 2026-03-01, the
// clock confirmed, then a third member m3 (alias card-m3, sms consent),
// six sales s6-a..s6-f (m1, m2, m3, no member, m3, m1: their outbox
// records by reference), an adjustment adj6 (+250 to m3), a refund r6-1
// of one unit of s6-c, a void v6-1 of s6-f, head office's confirmation up
// to seq 46, and a sale s6-untrusted for m3 on an untrusted clock: 3
// members, 39 sales, 113 events, last seq 159.
func openFixture6(t *testing.T) string { return copyFixture(t, "testdata/schema6.db.gz") }

// writeFixture writes the ledger file at path, gzipped, to name (the
// fixture writers, each run once by the code of its schema).
func writeFixture(t *testing.T, path, name string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func copyFixture(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
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

// TestOpenMigratesSchema6Ledger: a ledger written by schema 6 code is
// refused read-only, migrated on a read-write open, passes Check, keeps
// its members, sales, events (their rows stay JSON and read alike) and
// outbox, and records sales with binary event rows.
func TestOpenMigratesSchema6Ledger(t *testing.T) {
	path := openFixture6(t)
	if _, err := Open(path, &Options{ReadOnly: true}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only open of a schema 6 file: %v", err)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	l, err := Open(path, &Options{Register: "store1-r1", Clock: fixedClock{at}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats()
	if err != nil || st.Members != 3 || st.Sales != 39 || st.Events != 113 || st.LastSeq != 159 || st.Confirmed != 46 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	evs, err := l.Events("m3")
	if err != nil || len(evs) != 7 {
		t.Fatalf("m3 events: %d %v", len(evs), err)
	}
	bal, err := l.LocalBalance("m3")
	if err != nil || bal != 25+45+25+45+250-12+9 {
		t.Fatalf("m3 balance %d %v", bal, err)
	}
	if m, err := l.LookupAlias("card-m3"); err != nil || m.ID != "m3" || !m.Consent.Given {
		t.Fatalf("card-m3: %+v %v", m, err)
	}
	rs, err := l.Refunds("s6-c")
	if err != nil || len(rs) != 1 {
		t.Fatalf("refunds of s6-c: %+v %v", rs, err)
	}
	if s, err := l.Sale("s6-d"); err != nil || s.MemberID != "" || s.Total != 2*1290+4590 {
		t.Fatalf("s6-d: %+v %v", s, err)
	}
	recs, err := l.Outbox(46, 1000)
	if err != nil || len(recs) != 159-46 {
		t.Fatalf("outbox: %d records %v", len(recs), err)
	}
	for _, r := range recs {
		if !json.Valid(r.Data) {
			t.Fatalf("record %d: data %q", r.Seq, r.Data)
		}
	}
	// A retry of a schema 6 sale replays it; the same id with other
	// content is a conflict.
	again, err := l.RecordSale(context.Background(), SaleRequest{ID: "s6-c", MemberID: "m3", HQReachable: true, Lines: []Line{
		{No: 1, SKU: "A", Quantity: 2, UnitPrice: 1290, Category: "dairy"}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 4590, Category: "dairy"}}})
	if err != nil || !again.Replayed || len(again.Events) != 2 {
		t.Fatalf("retry of s6-c: %+v %v", again, err)
	}
	if _, err := l.RecordSale(context.Background(), SaleRequest{ID: "s6-c", MemberID: "m1", HQReachable: true, Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1}}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("s6-c with other content: %v", err)
	}
	res, err := l.RecordSale(context.Background(), SaleRequest{ID: "after6", MemberID: "m3", HQReachable: true, Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 500}}})
	if err != nil || len(res.Events) == 0 {
		t.Fatalf("sale after open: %+v %v", res, err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	after, err := l.Events("m3")
	if err != nil || len(after) != len(evs)+len(res.Events) {
		t.Fatalf("m3 events after the sale: %d %v", len(after), err)
	}
	err = l.view(func(tx *bolt.Tx) error {
		if v := getU64(tx.Bucket(bMeta), kSchema); v != SchemaVersion {
			t.Errorf("schema after migration: %d", v)
		}
		for _, b := range [][]byte{bMembers, bExpiry} {
			if tx.Bucket(b) != nil {
				t.Errorf("bucket %s left after migration", b)
			}
		}
		if tx.Bucket(bRows).Get(memberKey("m3")) == nil {
			t.Error("m3's record not among its rows")
		}
		rows := tx.Bucket(bRows)
		if v := rows.Get(rowKey(rowEvent, "m3", evs[0].Seq)); len(v) == 0 || v[0] != '{' {
			t.Errorf("schema 6 event row rewritten: %q", v)
		}
		for _, ev := range res.Events {
			if v := rows.Get(rowKey(rowEvent, "m3", ev.Seq)); len(v) == 0 || v[0] != eventRowMark || len(v) > 100 {
				t.Errorf("new event row %d: %d bytes %q", ev.Seq, len(v), v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err = l.Outbox(46, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkRefRecords(t, l, recs[len(recs)-1-len(res.Events):], res)
	// The migrated expiry index finds the lots due: m3's earned on
	// 2026-03-01 expire six months later (the adjustment's too); the
	// untrusted sale's lot has no date yet.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path, &Options{Register: "store1-r1", Clock: fixedClock{time.Date(2026, 9, 2, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, err := l.ExpireDue(context.Background())
	if err != nil || n == 0 {
		t.Fatalf("expire after migration: %d %v", n, err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	if left, err := l.LocalBalance("m3"); err != nil || left != 9 {
		t.Fatalf("m3 after expiry: %d %v, want the untrusted sale's 9", left, err)
	}
}
