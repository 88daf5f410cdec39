package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// The personal data of the erased member in testErase; none of it may be
// found anywhere the store shows after the erasure.
var erasePII = []string{"Alice Erasable", "+4915112345678", "alice@example.org", "1980-02-29", "CARD-ALICE"}

func eraseEnrol(reg string, seq uint64) hqstore.Event {
	return Ev(reg, seq, ledger.OutMember, ledger.Member{ID: "m1", Name: "Alice Erasable", Birthday: "1980-02-29",
		Aliases: []string{"CARD-ALICE"}, Contact: ledger.Contact{Phone: "+4915112345678", Email: "alice@example.org"},
		Consent: ledger.Consent{Given: true, Channel: "in-store"}, ConsentHistory: []ledger.Consent{{Given: true, Channel: "in-store"}}})
}

func testErase(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	sale := Ev("r1", 3, ledger.OutSale, ledger.Sale{ID: "sale-1", Register: "r1", MemberID: "m1", Total: 1250,
		Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1250}}})
	apply(t, s,
		eraseEnrol("r1", 1),
		Ev("r1", 2, ledger.OutConsent, ledger.Member{ID: "m1", Name: "Alice Erasable", Consent: ledger.Consent{Given: false, Channel: "web"}}),
		sale,
		Earn("r1", 4, "m1", 12),
		Ev("r1", 5, ledger.OutMember, ledger.Member{ID: "m2", Name: "Bob Kept", Aliases: []string{"CARD-BOB"}}),
		Earn("r1", 6, "m2", 7),
	)
	// r2 (another store) is waiting for its event 1, which enrols m1 too:
	// held beyond a gap when the erasure comes.
	gapped := eraseEnrol("r2", 2)
	gapped.Store = "s2"
	apply(t, s, gapped)

	// The erasures version moves with every write of an erasure record
	// and with nothing else (head office publishes the erase documents
	// again only when it moved).
	version := func() uint64 {
		v, err := s.ErasuresVersion()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	if _, err := s.EraseMember("nobody", "dpo"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Fatalf("erase of an unknown member: %v, want ErrUnknownMember", err)
	}
	if _, err := s.ErasureOf("m1"); !errors.Is(err, hqstore.ErrNotErased) {
		t.Fatalf("ErasureOf before: %v, want ErrNotErased", err)
	}
	e, err := s.EraseMember("m1", "dpo")
	if err != nil {
		t.Fatal(err)
	}
	if e.N != 1 || e.Member != "m1" || e.By != "dpo" || strings.Join(e.Stores, ",") != "s1" ||
		strings.Join(e.Registers, ",") != "r1" || strings.Join(e.Pending(), ",") != "r1" || e.Redacted != 3 {
		t.Fatalf("erasure %+v", e)
	}
	v1 := version()
	if v1 <= v0 {
		t.Fatalf("erasures version %d after an erasure, was %d", v1, v0)
	}
	again, err := s.EraseMember("m1", "someone else")
	if err != nil || again.N != 1 || again.By != "dpo" {
		t.Fatalf("second erase: %+v %v, want the first record unchanged", again, err)
	}
	if v := version(); v != v1 {
		t.Fatalf("erasures version %d after an erase that changed nothing, want %d", v, v1)
	}

	m, err := s.Member("m1")
	if err != nil {
		t.Fatal(err)
	}
	if want := (ledger.Member{ID: "m1"}); m.ID != want.ID || m.Name != "" || len(m.Aliases) != 0 || m.Contact != (ledger.Contact{}) ||
		m.Birthday != "" || len(m.ConsentHistory) != 0 || m.Consent != (ledger.Consent{}) {
		t.Fatalf("profile after erasure: %+v", m)
	}
	if _, err := s.LookupAlias("CARD-ALICE"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Fatalf("alias of the erased member: %v, want ErrUnknownMember", err)
	}
	if got := balance(t, s, "m1"); got != 12 {
		t.Fatalf("balance %d after erasure, want 12 (the accounts stay)", got)
	}
	if ps, err := s.Purchases("m1"); err != nil || len(ps) != 1 || ps[0].Amount != 1250 {
		t.Fatalf("purchases after erasure: %+v %v", ps, err)
	}
	if b, _ := s.LookupAlias("CARD-BOB"); b.Name != "Bob Kept" {
		t.Fatalf("other member touched: %+v", b)
	}

	// A resend of the original events is a duplicate, applied nowhere; so
	// is the register's own redacted form of them.
	res := apply(t, s, eraseEnrol("r1", 1), sale)
	if res.Duplicates != 2 || len(res.Conflicts) != 0 || res.Reviewed != 0 || len(res.PolicyHolds) != 0 {
		t.Fatalf("resend after erasure: %+v", res)
	}
	red := eraseEnrol("r1", 1)
	red.OutboxRecord = ledger.RedactRecord(red.OutboxRecord, "m1")
	if res := apply(t, s, red); res.Duplicates != 1 || len(res.Conflicts) != 0 {
		t.Fatalf("the register's redacted record: %+v, want a duplicate", res)
	}
	// A later profile event (a register that has not heard of the
	// erasure) moves the stream on, changes nothing and is listed,
	// redacted, in review; so is the event held beyond r2's gap.
	late := eraseEnrol("r1", 7)
	first := Earn("r2", 1, "m2", 1)
	first.Store = "s2"
	res = apply(t, s, late, first)
	if res.Registers["r1"].Watermark != 7 || res.Registers["r2"].Watermark != 2 || len(res.PolicyHolds) != 2 {
		t.Fatalf("late profile events: %+v", res)
	}
	for _, h := range res.PolicyHolds {
		if h.Code != hqstore.CodeErased {
			t.Fatalf("held %+v, want code %q", h, hqstore.CodeErased)
		}
	}
	if m, _ := s.Member("m1"); m.Name != "" || len(m.Aliases) != 0 {
		t.Fatalf("profile came back: %+v", m)
	}
	if _, err := s.LookupAlias("CARD-ALICE"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Fatalf("alias came back: %v", err)
	}
	if v := version(); v != v1 {
		t.Fatalf("erasures version %d after events that wrote no erasure record, want %d", v, v1)
	}

	// The register confirms: no longer pending.
	res = apply(t, s, Ev("r1", 8, ledger.OutErased, ledger.Erased{MemberID: "m1", Erasure: 1}))
	if res.Applied != 1 || len(res.Rejected) != 0 {
		t.Fatalf("confirmation: %+v", res)
	}
	e, err = s.ErasureOf("m1")
	if err != nil || len(e.Pending()) != 0 || e.Confirmed["r1"] != 8 {
		t.Fatalf("after confirmation: %+v %v", e, err)
	}
	v2 := version()
	if v2 <= v1 {
		t.Fatalf("erasures version %d after a confirmation, was %d", v2, v1)
	}
	// The same confirmation again (another sequence): nothing written.
	if res := apply(t, s, Ev("r1", 9, ledger.OutErased, ledger.Erased{MemberID: "m1", Erasure: 1})); res.Applied != 1 {
		t.Fatalf("second confirmation: %+v", res)
	}
	if v := version(); v != v2 {
		t.Fatalf("erasures version %d after a confirmation already recorded, want %d", v, v2)
	}
	if all, err := s.Erasures(); err != nil || len(all) != 1 || all[0].Member != "m1" {
		t.Fatalf("Erasures: %+v %v", all, err)
	}

	// Nothing the store shows holds the member's personal data.
	var shown []any
	rv, err := s.Review()
	if err != nil {
		t.Fatal(err)
	}
	shown = append(shown, rv)
	if err := s.EachMember(func(m ledger.Member) error { shown = append(shown, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.EachSummary(func(m hqstore.MemberSummary) error { shown = append(shown, m); return nil }); err != nil {
		t.Fatal(err)
	}
	cs, _ := s.Conflicts()
	shown = append(shown, cs)
	b, err := json.Marshal(shown)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range erasePII {
		if strings.Contains(string(b), p) {
			t.Errorf("%q still shown after the erasure: %s", p, b)
		}
	}
	if !strings.Contains(string(b), "Bob Kept") {
		t.Fatal("the scan saw nothing (Bob's name should be there)")
	}
}
