package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

// TestEraseMember: head office's erasure removes the profile, the aliases
// and the profile events' data from the ledger, down to the file's bytes
// (free pages zeroed), keeps sales and the balance, confirms once, and
// Check still passes (ledgertest.OpenAt runs it at the end).
func TestEraseMember(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	pii := []string{"Erika Erasable", "+4915199990000", "erika@example.com", "1975-05-17", "CARD-ERIKA-1"}
	if _, err := f.l.Enrol(ctx, ledger.Member{ID: "m-er", Name: pii[0], Contact: ledger.Contact{Phone: pii[1], Email: pii[2]},
		Birthday: pii[3], Aliases: []string{pii[4]}, Consent: ledger.Consent{Given: true, Channel: "in-store"}}); err != nil {
		t.Fatal(err)
	}
	f.enrol(t, "m-keep", "CARD-KEEP")
	if _, err := f.l.SetConsent(ctx, "m-er", ledger.Consent{Given: false, Channel: "web"}); err != nil {
		t.Fatal(err)
	}
	f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m-er"})
	// Half the events confirmed (the kept window holds them), half waiting.
	if err := f.l.Confirm(2); err != nil {
		t.Fatal(err)
	}
	f.sale(t, ledger.SaleRequest{ID: "s2", MemberID: "m-er"})
	before := f.balance(t, "m-er")
	if before <= 0 {
		t.Fatalf("balance %d before: the test needs points", before)
	}
	raw := fileAndLog(t, f.path)
	if !bytes.Contains(raw, []byte(pii[0])) {
		t.Fatal("the file and its sale log do not hold the name before the erasure: the test would prove nothing")
	}

	for _, bad := range []struct {
		id string
		n  uint64
	}{{"", 1}, {"m-er", 0}} {
		if _, err := f.l.EraseMember(ctx, bad.id, bad.n); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("EraseMember(%q, %d): %v, want ErrInvalid", bad.id, bad.n, err)
		}
	}
	did, err := f.l.EraseMember(ctx, "m-er", 7)
	if err != nil || !did {
		t.Fatalf("erase: %v %v", did, err)
	}
	if did, err := f.l.EraseMember(ctx, "m-er", 7); err != nil || did {
		t.Fatalf("second erase: did %v err %v, want nothing done", did, err)
	}
	m, err := f.l.Member("m-er")
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "" || m.Contact != (ledger.Contact{}) || m.Birthday != "" || len(m.Aliases) != 0 || len(m.ConsentHistory) != 0 {
		t.Fatalf("profile after erasure: %+v", m)
	}
	if _, err := f.l.LookupAlias(pii[4]); !errors.Is(err, ledger.ErrUnknownMember) {
		t.Fatalf("card of the erased member: %v", err)
	}
	if got := f.balance(t, "m-er"); got != before {
		t.Fatalf("balance %d after erasure, want %d", got, before)
	}
	if ps, err := f.l.Purchases("m-er"); err != nil || len(ps) != 2 {
		t.Fatalf("purchases after erasure: %d %v", len(ps), err)
	}
	if n, ok, err := f.l.Erased("m-er"); err != nil || !ok || n != 7 {
		t.Fatalf("Erased: %d %v %v", n, ok, err)
	}
	if _, err := f.l.Enrol(ctx, ledger.Member{ID: "m-er", Name: pii[0]}); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("enrolling the erased id again: %v, want ErrConflict", err)
	}
	// The outbox: profile events redacted (kept and waiting), one
	// confirmation; nothing else changed.
	recs, err := f.l.Outbox(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	confirms := 0
	for _, r := range recs {
		if ledger.IsProfileRecord(r.Type) && ledger.ProfileMember(r.Data) == "m-er" {
			if _, ok := ledger.RedactedMember(r.Data); !ok {
				t.Errorf("record %d not redacted: %s", r.Seq, r.Data)
			}
		}
		if r.Type == ledger.OutErased {
			confirms++
			if string(r.Data) != `{"member_id":"m-er","erasure":7}` {
				t.Errorf("confirmation %s", r.Data)
			}
		}
	}
	if confirms != 1 {
		t.Fatalf("%d confirmations in the outbox, want 1", confirms)
	}
	if k, _ := f.l.LookupAlias("CARD-KEEP"); k.ID != "m-keep" {
		t.Fatalf("other member touched: %+v", k)
	}
	raw = fileAndLog(t, f.path)
	for _, p := range pii {
		if bytes.Contains(raw, []byte(p)) {
			t.Errorf("the ledger file or its sale log still holds %q", p)
		}
	}
	if !strings.Contains(string(raw), "M m-keep") {
		t.Fatal("the byte scan saw nothing (the kept member's name should be there)")
	}
	f.reopen(t)
	if m, _ := f.l.Member("m-er"); m.Name != "" {
		t.Fatalf("after reopen: %+v", m)
	}
}

// TestScrubWhileClosing: a scrub of the free pages (an erasure's last
// step, on the caller's goroutine) may still be running when the daemon
// stops. Close turns bbolt's free-list writing back on for its last
// commit; it must do so without racing the scrub's commit (run with
// -race; each round catches the race most of the time, not always, so
// there are 20), and the scrub either finishes or reports ErrClosed.
func TestScrubWhileClosing(t *testing.T) {
	ctx := context.Background()
	for round := range 20 {
		f := newFixture(t, nil)
		f.enrol(t, "m1", "CARD-1")
		f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1"})
		if err := f.l.ScrubFreePages(ctx); err != nil {
			t.Fatalf("round %d: scrub before close: %v", round, err)
		}
		done := make(chan error, 1)
		go func() {
			for {
				if err := f.l.ScrubFreePages(ctx); err != nil {
					done <- err
					return
				}
			}
		}()
		if err := f.l.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
		if err := <-done; !errors.Is(err, ledger.ErrClosed) {
			t.Fatalf("round %d: scrub after close: %v, want the ledger closed", round, err)
		}
		f.l = ledgertest.OpenAt(t, f.path, f.opts)
	}
}

// fileAndLog is the bytes of the ledger file and of its sale log (the
// records of batches already checkpointed stay in the log until it is
// scrubbed).
func fileAndLog(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := os.ReadFile(path + ".salelog")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return append(raw, lg...)
}
