package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

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
