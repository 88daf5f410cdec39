package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// TestMembersErase: after `members erase`, neither head office's store
// file nor the contact log holds a byte of the member's personal data
// (bbolt keeps old values in free pages: the files are compacted), the
// balance and purchases stay, and `members export` says it was erased.
func TestMembersErase(t *testing.T) {
	dir := t.TempDir()
	path, logPath := filepath.Join(dir, "hq.db"), filepath.Join(dir, "contacts.db")
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	ev := func(seq uint64, typ ledger.OutboxType, v any) hqstore.Event {
		data, _ := json.Marshal(v)
		return hqstore.Event{Register: "r1", Store: "s1", OutboxRecord: ledger.OutboxRecord{
			Seq: seq, ID: "r1-" + string(rune('0'+seq)), Type: typ, WallTime: t0, ClockTrusted: true, Data: data}}
	}
	pii := []string{"Zelda Erasure", "+4917000000001", "zelda@example.net", "CARD-ZELDA"}
	evs := []hqstore.Event{
		ev(1, ledger.OutMember, ledger.Member{ID: "m1", Name: pii[0], Contact: ledger.Contact{Phone: pii[1], Email: pii[2]}, Aliases: []string{pii[3]}}),
		ev(2, ledger.OutSale, ledger.Sale{ID: "s1", Register: "r1", MemberID: "m1", Total: 900}),
		ev(3, ledger.OutPoints, ledger.PointEvent{ID: "r1-3", Register: "r1", Seq: 3, Kind: ledger.KindEarn, MemberID: "m1", Points: 9}),
	}
	if _, err := st.Apply(evs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cl, err := contactlog.Open(logPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Mark(contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: "m1", Kind: retention.ContactFollowUp, At: t0, Channel: "email"}, Operator: pii[0]}); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	for _, f := range []string{path, logPath} {
		if b, _ := os.ReadFile(f); !bytes.Contains(b, []byte(pii[0])) {
			t.Fatalf("%s does not hold the name before the erasure: the test would prove nothing", f)
		}
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"members", "erase", "-store", path, "-contacts", logPath, "-by", "dpo", "nobody"}, &out, &out); err == nil {
		t.Fatal("erasing an unknown member succeeded")
	}
	if err := run(context.Background(), []string{"members", "erase", "-store", path, "-contacts", logPath, "-by", "dpo", "m1"}, &out, &out); err != nil {
		t.Fatalf("erase: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "erasure 1") || !strings.Contains(out.String(), "1 contacts deleted") || !strings.Contains(out.String(), "r1") {
		t.Fatalf("erase output:\n%s", out.String())
	}
	for _, f := range []string{path, logPath} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pii {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s still holds %q", filepath.Base(f), p)
			}
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"members", "export", "-store", path, "m1"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var doc memberExport
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if doc.Erased == nil || doc.Erased.N != 1 || doc.Erased.By != "dpo" || doc.Summary.Balance != 9 || len(doc.Purchases) != 1 || doc.Member.Name != "" {
		t.Fatalf("export after erasure: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"members", "erasures", "-store", path}, &out, &out); err != nil || !strings.Contains(out.String(), "waiting for 1 register(s) to confirm: r1") {
		t.Fatalf("erasures: %v\n%s", err, out.String())
	}
}
