package ledger

import (
	"compress/gzip"
	"context"
	"os"
	"testing"
	"time"
)

// TestWriteFixture8 writes testdata/schema8.db.gz with the schema 8 code
// (f864661) when LEDGER_WRITE_FIXTURE8 is set: the schema 7 fixture
// opened (migrated) at 2026-04-01, head office's summary of m4 (version
// 4, balance 9000, covering seq 175) and of m3 (version 2, balance 40,
// covering seq 1), then sales s8-a..s8-f (m4, m1, m3, m4, m1, no member),
// an adjustment adj8 (-30 to m1) and head office's confirmation up to seq
// 183: members m1, m3 and m4 each hold a summary with this register's
// events after the seq it covered.
func TestWriteFixture8(t *testing.T) {
	if os.Getenv("LEDGER_WRITE_FIXTURE8") == "" {
		t.Skip("writes the schema 8 fixture; set LEDGER_WRITE_FIXTURE8=1 on the schema 8 code")
	}
	if SchemaVersion != 8 {
		t.Fatalf("this code writes schema %d: the schema 8 fixture is written only by the schema 8 code", SchemaVersion)
	}
	path := copyFixture(t, "testdata/schema7.db.gz")
	ctx := context.Background()
	at := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
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
	must(l.ApplyMemberSummary(ctx, MemberSummary{Member: Member{ID: "m4", Aliases: []string{"card-m4"}}, Balance: 9000, Covered: 175, Version: 4}))
	must(l.ApplyMemberSummary(ctx, MemberSummary{Member: Member{ID: "m3", Aliases: []string{"card-m3"}}, Balance: 40, Covered: 1, Version: 2}))
	lines := []Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 1290, Category: "dairy"}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 4590, Category: "bakery"}}
	for _, s := range []struct{ id, member string }{{"s8-a", "m4"}, {"s8-b", "m1"}, {"s8-c", "m3"}, {"s8-d", "m4"}, {"s8-e", "m1"}, {"s8-f", ""}} {
		_, err := l.RecordSale(ctx, SaleRequest{ID: s.id, MemberID: s.member, HQReachable: true, Lines: lines, Tenders: []Tender{{Kind: "card", Amount: 2*1290 + 4590}}})
		must(err)
	}
	_, err = l.Adjust(ctx, "adj8", "m1", -30, "correction", "op1")
	must(err)
	must(l.Confirm(183))
	must(l.Check())
	for _, m := range []string{"m1", "m3", "m4"} {
		b, err := l.Balance(m)
		must(err)
		lb, err := l.LocalBalance(m)
		must(err)
		t.Logf("%s: balance %d, local %d", m, b, lb)
	}
	st, err := l.Stats()
	must(err)
	t.Logf("stats %+v", st)
	must(l.Close())
	raw, err := os.ReadFile(path)
	must(err)
	f, err := os.Create("testdata/schema8.db.gz")
	must(err)
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	_, err = zw.Write(raw)
	must(err)
	must(zw.Close())
	must(f.Close())
}
