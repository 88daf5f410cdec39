package ledger

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// untrustedAt is a clock NTP has not set yet.
type untrustedAt struct{ t time.Time }

func (c untrustedAt) Now() (time.Time, bool) { return c.t, false }

// TestWriteFixture7 writes testdata/schema7.db.gz with the schema 7 code
// (b3f0286) when LEDGER_WRITE_FIXTURE7 is set: the schema 6 fixture
// opened (migrated) at 2026-03-10, a fourth member m4 (alias card-m4),
// sales s7-a..s7-e (m4, m1, no member, m4, m3), a refund r7-1 of one unit
// of s7-a, a void v7-1 of s7-e, an adjustment adj7 (+120 to m4), head
// office's summary of m1 (version 3, balance 5000, covering seq 100),
// head office's confirmation up to seq 170, m2 erased (erasure 1), and a
// sale s7-untrusted for m4 on an untrusted clock.
func TestWriteFixture7(t *testing.T) {
	if os.Getenv("LEDGER_WRITE_FIXTURE7") == "" {
		t.Skip("writes the schema 7 fixture; set LEDGER_WRITE_FIXTURE7=1 on the schema 7 code")
	}
	if SchemaVersion != 7 {
		t.Fatalf("this code writes schema %d: the schema 7 fixture is written only by the schema 7 code", SchemaVersion)
	}
	path := openFixture6(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	l, err := Open(path, &Options{Register: "store1-r1", Clock: fixedClock{at}})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = l.Enrol(ctx, Member{ID: "m4", Name: "Dana Four", Aliases: []string{"card-m4"}, Consent: Consent{Given: true, Channel: "email"}})
	must(err)
	lines := []Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 1290, Category: "dairy"}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 4590, Category: "bakery"}}
	for _, s := range []struct{ id, member string }{{"s7-a", "m4"}, {"s7-b", "m1"}, {"s7-c", ""}, {"s7-d", "m4"}, {"s7-e", "m3"}} {
		_, err := l.RecordSale(ctx, SaleRequest{ID: s.id, MemberID: s.member, HQReachable: true, Lines: lines, Tenders: []Tender{{Kind: "card", Amount: 2*1290 + 4590}}})
		must(err)
	}
	_, err = l.Refund(ctx, RefundRequest{ID: "r7-1", SaleID: "s7-a", Lines: []RefundLine{{No: 1, Quantity: 1}}})
	must(err)
	_, err = l.Void(ctx, "v7-1", "s7-e", "customer changed mind")
	must(err)
	_, err = l.Adjust(ctx, "adj7", "m4", 120, "goodwill", "op1")
	must(err)
	must(l.ApplyMemberSummary(ctx, MemberSummary{Member: Member{ID: "m1", Aliases: []string{"card-m1"}}, Balance: 5000, Covered: 100, Version: 3}))
	must(l.Confirm(170))
	_, err = l.EraseMember(ctx, "m2", 1)
	must(err)
	must(l.Check())
	must(l.Close())
	l, err = Open(path, &Options{Register: "store1-r1", Clock: untrustedAt{at.Add(time.Hour)}})
	must(err)
	_, err = l.RecordSale(ctx, SaleRequest{ID: "s7-untrusted", MemberID: "m4", HQReachable: true, Lines: lines})
	must(err)
	must(l.Check())
	st, err := l.Stats()
	must(err)
	t.Logf("stats %+v", st)
	must(l.Close())
	writeFixture(t, path, "testdata/schema7.db.gz")
}

// TestOpenMigratesSchema7Ledger: a ledger written by schema 7 code is
// refused read-only, migrated on a read-write open (the expiry index
// becomes one entry per member at its earliest lot), passes Check, keeps
// its members, sales, refunds, erasure and outbox, replays a retried
// sale, records new sales, and expires what is due through the new
// index.
func TestOpenMigratesSchema7Ledger(t *testing.T) {
	path := copyFixture(t, "testdata/schema7.db.gz")
	if _, err := Open(path, &Options{ReadOnly: true}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only open of a schema 7 file: %v", err)
	}
	at := time.Date(2026, 3, 11, 10, 0, 0, 0, time.UTC)
	l, err := Open(path, &Options{Register: "store1-r1", Clock: fixedClock{at}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats()
	if err != nil || st.Members != 4 || st.Sales != 45 || st.Events != 127 || st.LastSeq != 183 || st.Confirmed != 170 || st.KeptFrom != 102 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	idx := indexEntries(t, l)
	for _, m := range []string{"m1", "m3", "m4"} {
		if _, ok := idx[m]; !ok {
			t.Errorf("no expiry index entry for %s: %v", m, idx)
		}
	}
	if m, err := l.Member("m2"); err != nil || m.Name != "" || len(m.Aliases) != 0 {
		t.Fatalf("erased m2: %+v %v", m, err)
	}
	if rs, err := l.Refunds("s7-a"); err != nil || len(rs) != 1 {
		t.Fatalf("refunds of s7-a: %+v %v", rs, err)
	}
	recs, err := l.Outbox(170, 1000)
	if err != nil || len(recs) != 183-170 {
		t.Fatalf("outbox: %d records %v", len(recs), err)
	}
	ctx := context.Background()
	lines := []Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 1290, Category: "dairy"}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 4590, Category: "bakery"}}
	again, err := l.RecordSale(ctx, SaleRequest{ID: "s7-d", MemberID: "m4", HQReachable: true, Lines: lines, Tenders: []Tender{{Kind: "card", Amount: 2*1290 + 4590}}})
	if err != nil || !again.Replayed {
		t.Fatalf("retry of s7-d: %+v %v", again, err)
	}
	if _, err := l.RecordSale(ctx, SaleRequest{ID: "s7-d", MemberID: "m1", HQReachable: true, Lines: lines}); !errors.Is(err, ErrConflict) {
		t.Fatalf("s7-d with other content: %v", err)
	}
	res, err := l.RecordSale(ctx, SaleRequest{ID: "after7", MemberID: "m4", HQReachable: true, Lines: lines})
	if err != nil || len(res.Events) == 0 {
		t.Fatalf("sale after open: %+v %v", res, err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	before, err := l.LocalBalance("m4")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A year on, every dated lot is due.
	l, err = Open(path, &Options{Register: "store1-r1", Clock: fixedClock{at.AddDate(1, 1, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, err := l.ExpireDue(ctx)
	if err != nil || n == 0 {
		t.Fatalf("expire after migration: %d %v", n, err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	after, err := l.LocalBalance("m4")
	if err != nil || after >= before {
		t.Fatalf("m4 balance %d before expiry, %d after: %v", before, after, err)
	}
	if idx := indexEntries(t, l); len(idx) != 0 {
		t.Fatalf("index after everything dated expired: %v", idx)
	}
}
