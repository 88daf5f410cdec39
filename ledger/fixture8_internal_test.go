package ledger

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestWriteFixture8 writes testdata/schema8.db.gz with the schema 8 code
// (f864661) when LEDGER_WRITE_FIXTURE8 is set: the schema 7 fixture
// opened (migrated) at 2026-04-01, head office's summary of m4 (version
// 4, balance 9000, covering seq 175) and of m3 (version 2, balance 40,
// covering seq 1), then sales s8-a..s8-f (m4, m1, m3, m4, m1, no member),
// an adjustment adj8 (-30 to m1), a member m5 credited 100 points and
// debited them again (its one dated lot used up, its expiry index entry
// left early) and head office's confirmation up to seq 183: members m1,
// m3 and m4 each hold a summary with this register's events after the
// seq it covered.
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
	// m5's one dated lot is used up: its expiry index entry stays, early
	// (allowed), and schema 9's upgrade must not lose it.
	_, err = l.Enrol(ctx, Member{ID: "m5", Name: "Eli Five"})
	must(err)
	_, err = l.Adjust(ctx, "adj8-m5-in", "m5", 100, "goodwill", "op1")
	must(err)
	_, err = l.Adjust(ctx, "adj8-m5-out", "m5", -100, "correction", "op1")
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
	writeFixture(t, path, "testdata/schema8.db.gz")
}

// summaryOf reads member id's summary state as stored.
func summaryOf(t *testing.T, l *Ledger, id string) summaryState {
	t.Helper()
	var s summaryState
	err := l.view(func(tx *bolt.Tx) error {
		rec, err := readMember(tx, id)
		if err != nil {
			return err
		}
		if rec.Summary == nil {
			return errors.New("no summary")
		}
		s = *rec.Summary
		return nil
	})
	if err != nil {
		t.Fatalf("member %s: %v", id, err)
	}
	return s
}

// TestOpenMigratesSchema8Ledger: a ledger written by schema 8 code opens
// read-only as it is (schema 9 adds only what it can work out) and passes
// Check, and is upgraded on a read-write open without touching its
// expiry index (m5's entry, left early by a used-up lot, still brings
// m5's next lot to expiry); its summaries, which have no base (the local
// balance up to the seq they covered), give the effective balances the
// schema 8 code gave, and a member's next write stores the base, which
// Check verifies against the events.
func TestOpenMigratesSchema8Ledger(t *testing.T) {
	path := copyFixture(t, "testdata/schema8.db.gz")
	ro, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of a schema 8 file: %v", err)
	}
	if err := ro.Check(); err != nil {
		t.Fatalf("check of a schema 8 file opened read-only: %v", err)
	}
	if b, err := ro.Balance("m4"); err != nil || b != 9330 {
		t.Fatalf("m4 read-only: balance %d %v", b, err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC)
	l, err := Open(path, &Options{Register: "store1-r1", Clock: fixedClock{at}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats()
	if err != nil || st.Members != 5 || st.Sales != 51 || st.Events != 140 || st.LastSeq != 203 || st.Confirmed != 183 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	// The schema 8 code's balances (TestWriteFixture8's log).
	for m, want := range map[string]Points{"m1": 4192, "m3": 497, "m4": 9330} {
		if got, err := l.Balance(m); err != nil || got != want {
			t.Errorf("%s: balance %d (%v), want %d", m, got, err, want)
		}
		if s := summaryOf(t, l, m); s.BaseKnown {
			t.Errorf("%s: a base before the member was written again: %+v", m, s)
		}
	}
	ctx := context.Background()
	lines := []Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 1290, Category: "dairy"}}
	res, err := l.RecordSale(ctx, SaleRequest{ID: "after8", MemberID: "m4", HQReachable: true, Lines: lines})
	if err != nil || len(res.Events) == 0 {
		t.Fatalf("sale after open: %+v %v", res, err)
	}
	var earned Points
	for _, ev := range res.Events {
		earned += ev.Points
	}
	if res.Balance != 9330+earned {
		t.Fatalf("m4 after a sale: balance %d, want %d", res.Balance, 9330+earned)
	}
	s := summaryOf(t, l, "m4")
	local, err := l.LocalBalance("m4")
	if err != nil {
		t.Fatal(err)
	}
	if !s.BaseKnown || s.Balance+local-s.Base != res.Balance {
		t.Fatalf("m4's summary after a sale: %+v, local %d, balance %d", s, local, res.Balance)
	}
	// A new summary stores its base at once.
	if err := l.ApplyMemberSummary(ctx, MemberSummary{Member: Member{ID: "m3", Aliases: []string{"card-m3"}}, Balance: 100, Covered: 190, Version: 3}); err != nil {
		t.Fatal(err)
	}
	if s := summaryOf(t, l, "m3"); !s.BaseKnown {
		t.Fatalf("m3's new summary has no base: %+v", s)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	if b, err := l.Balance("m1"); err != nil || b != 4192 {
		t.Fatalf("m1: balance %d %v", b, err)
	}
	// m5's index entry survived the upgrade: a new lot of m5 expires.
	if _, err := l.Adjust(ctx, "adj9-m5", "m5", 70, "goodwill", "op1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path, &Options{Register: "store1-r1", Clock: fixedClock{at.AddDate(1, 2, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := l.LocalBalance("m5"); err != nil || b != 0 {
		t.Fatalf("m5 a year on: balance %d %v, want its 70 points expired", b, err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFindsWrongSummaryBase: a member record whose summary's base
// disagrees with the events up to the seq it covered (the effective
// balance would be off by the difference) fails Check.
func TestCheckFindsWrongSummaryBase(t *testing.T) {
	l := copyFixtureOpen(t)
	ctx := context.Background()
	if err := l.ApplyMemberSummary(ctx, MemberSummary{Member: Member{ID: "m4", Aliases: []string{"card-m4"}}, Balance: 10, Covered: 190, Version: 9}); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	err := l.update(func(tx *bolt.Tx) error {
		rec, err := readMember(tx, "m4")
		if err != nil {
			return err
		}
		rec.Summary.Base++
		v, err := encodeMemberRow(rec, nil)
		if err != nil {
			return err
		}
		return tx.Bucket(bRows).Put(memberKey("m4"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err == nil || !strings.Contains(err.Error(), "summary base") {
		t.Fatalf("check of a wrong base: %v", err)
	}
}

// copyFixtureOpen opens a copy of the schema 8 fixture, migrated.
func copyFixtureOpen(t *testing.T) *Ledger {
	t.Helper()
	l, err := Open(copyFixture(t, "testdata/schema8.db.gz"), &Options{Register: "store1-r1", Clock: fixedClock{time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
