package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

func TestOutboxSequenceConfirm(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	notify := f.l.OutboxNotify()
	f.enrol(t, "m1", "c1")
	select {
	case <-notify:
	default:
		t.Fatal("no notification after enrol")
	}
	res := f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1"})
	if _, err := f.l.SetConsent(ctx, "m1", ledger.Consent{Given: true, Channel: "in-store"}); err != nil {
		t.Fatal(err)
	}
	recs, err := f.l.Outbox(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []ledger.OutboxType{ledger.OutMember, ledger.OutSale, ledger.OutPoints, ledger.OutConsent}
	if len(recs) != len(wantTypes) {
		t.Fatalf("outbox has %d records, want %d: %+v", len(recs), len(wantTypes), recs)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.Type != wantTypes[i] || r.ID != "r1-"+fmtUint(r.Seq) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	var s ledger.Sale
	if err := json.Unmarshal(recs[1].Data, &s); err != nil || s.ID != "s1" || s.Seq != res.Sale.Seq {
		t.Fatalf("sale payload %+v %v", s, err)
	}
	if part, _ := f.l.Outbox(2, 1); len(part) != 1 || part[0].Seq != 3 {
		t.Fatalf("cursor read: %+v", part)
	}
	if err := f.l.Confirm(99); !errors.Is(err, ledger.ErrPruneNotAllowed) {
		t.Fatalf("confirm beyond last seq: %v", err)
	}
	if err := f.l.Confirm(2); err != nil {
		t.Fatal(err)
	}
	if err := f.l.Confirm(1); err != nil { // backwards: no-op
		t.Fatal(err)
	}
	if w, _ := f.l.Confirmed(); w != 2 {
		t.Fatalf("watermark %d", w)
	}
	pending, oldest, err := f.l.OutboxStats()
	if err != nil || pending != 2 || oldest.Seq != 3 {
		t.Fatalf("stats %d %+v %v", pending, oldest, err)
	}
	f.reopen(t)
	recs, _ = f.l.Outbox(2, 100)
	if len(recs) != 2 || recs[0].Seq != 3 {
		t.Fatalf("after reopen: %+v", recs)
	}
	// The confirmed ones are kept for the window and served like the rest.
	if recs, _ = f.l.Outbox(0, 100); len(recs) != 4 || recs[0].Seq != 1 {
		t.Fatalf("confirmed records not kept: %+v", recs)
	}
	// The sequence continues without a gap after a restart.
	f.sale(t, ledger.SaleRequest{ID: "s2"})
	recs, _ = f.l.Outbox(4, 100)
	if len(recs) != 1 || recs[0].Seq != 5 {
		t.Fatalf("after restart: %+v", recs)
	}
}

// TestOutboxIntoMatchesOutbox: sales, refunds, voids, adjustments,
// member records, consent, an erasure's redacted records and
// confirmation, kept confirmed records: OutboxInto reads them as Outbox
// does. (TestRandomOperationSequences and the fixtures check it too.)
func TestOutboxIntoMatchesOutbox(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.enrol(t, "m1", "card-m1")
	f.enrol(t, "m2", "card-m2")
	f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 500}}})
	f.sale(t, ledger.SaleRequest{ID: "s2", MemberID: "m2"})
	if _, err := f.l.Adjust(ctx, "adj-1", "m1", 7, `a "quoted" <reason> & more`, "op\u2028"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Refund(ctx, ledger.RefundRequest{ID: "rf1", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Void(ctx, "v1", "s2", "mistake"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.SetConsent(ctx, "m2", ledger.Consent{Given: true, Channel: "email"}); err != nil {
		t.Fatal(err)
	}
	if err := f.l.Confirm(3); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.EraseMember(ctx, "m2", 1); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.l.Adjust(ctx, "adj-2", "m1", -2, "r", "o"); err != nil {
		t.Fatal(err)
	}
	if n, compact := ledger.OutboxIntoMatches(t, f.l); n < 10 || compact == 0 {
		t.Fatalf("%d records, %d marked compact: the test needs both kinds", n, compact)
	}
}
