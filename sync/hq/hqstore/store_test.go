package hqstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
)

func open(t *testing.T, opts *hqstore.Options) (*hqstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := hqstore.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("consistency check: %v", err)
		}
		s.Close()
	})
	return s, path
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// ev and earn build events as the conformance suite does.
var ev, earn = storetest.Ev, storetest.Earn

func apply(t *testing.T, s *hqstore.Store, evs ...hqstore.Event) hqstore.Result {
	t.Helper()
	res, err := s.Apply(evs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wm(t *testing.T, s *hqstore.Store, reg string) uint64 {
	t.Helper()
	w, err := s.Watermark(reg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func balance(t *testing.T, s *hqstore.Store, member string) ledger.Points {
	t.Helper()
	b, err := s.Balance(member)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConflictKeepsFirst(t *testing.T) {
	s, _ := open(t, nil)
	apply(t, s, earn("r1", 1, "m1", 10), earn("r1", 3, "m1", 1))
	res := apply(t, s, earn("r1", 1, "m1", 999), earn("r1", 3, "m1", 2))
	if len(res.Conflicts) != 2 || res.Applied != 0 {
		t.Fatalf("want 2 conflicts (applied and held), got %+v", res)
	}
	for _, c := range res.Conflicts {
		if c.Kind != hqstore.ConflictEvent || c.Register != "r1" {
			t.Errorf("conflict %+v", c)
		}
	}
	apply(t, s, earn("r1", 2, "m1", 100))
	if got := balance(t, s, "m1"); got != 111 {
		t.Fatalf("balance %d, want 111 (first versions kept)", got)
	}
	all, err := s.Conflicts()
	if err != nil || len(all) != 2 {
		t.Fatalf("stored conflicts %v %v", all, err)
	}
}

func TestRegisterStaysInItsStore(t *testing.T) {
	s, _ := open(t, nil)
	apply(t, s, earn("r1", 1, "m1", 10))
	e := earn("r1", 2, "m1", 10)
	e.Store = "other"
	res := apply(t, s, e)
	h, ok := res.Holds[hqstore.Stream{Store: "other", Register: "r1"}]
	if res.Applied != 0 || res.Reviewed != 1 || !ok || h.Reason != hqstore.ReviewStore || h.Held != 1 || h.Watermark != 1 || wm(t, s, "r1") != 1 {
		t.Fatalf("event under another store: %+v", res)
	}
	// The text the register shows names a command that runs (it left out
	// -config/-store, which loyalty-hq register move requires).
	if !strings.Contains(h.Text, "loyalty-hq register move -config FILE r1 other") {
		t.Errorf("notice text %q lacks the runnable command", h.Text)
	}
	if got := balance(t, s, "m1"); got != 10 {
		t.Fatalf("balance %d after a held event", got)
	}
	held, err := s.Review()
	if err != nil || len(held) != 1 || held[0].Seq != 2 || held[0].Reason != hqstore.ReviewStore || held[0].Store != "other" {
		t.Fatalf("review %+v %v", held, err)
	}
}

func TestChainWideMerge(t *testing.T) {
	s, _ := open(t, nil)
	m := ledger.Member{ID: "m1", Aliases: []string{"card-1", "+359888"}, Name: "Ana", HomeRegister: "a-r1"}
	apply(t, s,
		ev("a-r1", 1, ledger.OutMember, m),
		earn("a-r1", 2, "m1", 120),
	)
	res := apply(t, s, earn("b-r1", 1, "m1", -50), ev("b-r1", 2, ledger.OutMember, ledger.Member{ID: "m1", Aliases: []string{"card-2"}, Tier: "gold"}))
	if !reflect.DeepEqual(res.Members, []string{"m1"}) {
		t.Fatalf("touched members %v", res.Members)
	}
	sum, err := s.Summary("m1")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Balance != 70 {
		t.Fatalf("chain-wide balance %d, want 70", sum.Balance)
	}
	if want := map[string]uint64{"a-r1": 2, "b-r1": 2}; !reflect.DeepEqual(sum.Included, want) {
		t.Fatalf("included %v, want %v", sum.Included, want)
	}
	if sum.Member.Name != "Ana" || sum.Member.Tier != "gold" || sum.Member.HomeRegister != "a-r1" ||
		!reflect.DeepEqual(sum.Member.Aliases, []string{"card-1", "+359888", "card-2"}) {
		t.Fatalf("merged profile %+v", sum.Member)
	}
	got, err := s.LookupAlias("card-2")
	if err != nil || got.ID != "m1" {
		t.Fatalf("alias lookup %v %v", got, err)
	}
}

func TestPurchasesForRetention(t *testing.T) {
	s, _ := open(t, nil)
	sale := ledger.Sale{ID: "a-r1-s1", Register: "a-r1", MemberID: "m1", Total: 2500,
		Lines:    []ledger.Line{{No: 1, SKU: "x", Quantity: 1, UnitPrice: 1500, Category: "cd"}, {No: 2, SKU: "y", Quantity: 1, UnitPrice: 1000, Category: "dvd"}},
		WallTime: t0, ClockTrusted: true}
	apply(t, s,
		ev("a-r1", 1, ledger.OutSale, sale),
		ev("a-r1", 2, ledger.OutRefund, map[string]any{"id": "rf1", "sale_id": "a-r1-s1", "lines": []ledger.Line{{No: 2, Quantity: 1, UnitPrice: 1000}}}),
		ev("a-r1", 3, ledger.OutSale, ledger.Sale{ID: "a-r1-s2", Register: "a-r1", Total: 700}), // no member: not indexed
		ev("a-r1", 4, ledger.OutSale, ledger.Sale{ID: "a-r1-s3", MemberID: "m2", Total: 900}),
		ev("a-r1", 5, ledger.OutVoid, map[string]any{"id": "v1", "sale_id": "a-r1-s3"}),
	)
	type row struct {
		member string
		sale   string
		amount ledger.Money
	}
	var got []row
	err := s.EachPurchase(func(id string, p ledger.Purchase) error {
		got = append(got, row{id, p.SaleID, p.Amount})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []row{{"m1", "a-r1-s1", 2500}, {"m1", "a-r1-s1", -1000}, {"m2", "a-r1-s3", 900}, {"m2", "a-r1-s3", -900}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("purchases %v, want %v", got, want)
	}
	ps, err := s.Purchases("m1")
	if err != nil || len(ps) != 2 || !reflect.DeepEqual(ps[0].Categories, []string{"cd", "dvd"}) || !ps[0].WallTime.Equal(t0) {
		t.Fatalf("m1 purchases %+v %v", ps, err)
	}
	// The ledger's own refund record (partial, by line) and a void of it.
	apply(t, s,
		ev("a-r1", 6, ledger.OutSale, ledger.Sale{ID: "a-r1-s4", Register: "a-r1", MemberID: "m3", Total: 3000}),
		ev("a-r1", 7, ledger.OutRefund, ledger.Refund{ID: "rf2", SaleID: "a-r1-s4", Register: "a-r1", Seq: 7,
			Lines: []ledger.RefundedLine{{No: 1, Quantity: 1, Amount: 1200, Points: 12}}, Amount: 1200}),
		ev("a-r1", 8, ledger.OutVoid, ledger.Refund{ID: "v2", SaleID: "a-r1-s4", Register: "a-r1", Seq: 8, Void: true, Amount: 1800}),
	)
	var m3 []ledger.Money
	ps3, _ := s.Purchases("m3")
	for _, p := range ps3 {
		m3 = append(m3, p.Amount)
	}
	if !reflect.DeepEqual(m3, []ledger.Money{3000, -1200, -1800}) {
		t.Fatalf("m3 purchases %v, want sale, partial refund, void of the rest", m3)
	}
	// The same sale id from another register is a reported conflict, not a second purchase.
	res := apply(t, s, ev("b-r1", 1, ledger.OutSale, ledger.Sale{ID: "a-r1-s1", MemberID: "m1", Total: 1}))
	if len(res.Conflicts) != 1 || res.Conflicts[0].Kind != hqstore.ConflictSale {
		t.Fatalf("conflicts %+v", res.Conflicts)
	}
	if ps, _ := s.Purchases("m1"); len(ps) != 2 {
		t.Fatalf("m1 has %d purchases after a clashing sale id, want 2", len(ps))
	}
}

func TestDurableAcrossReopenAndLocked(t *testing.T) {
	s, path := open(t, nil)
	apply(t, s, earn("r1", 1, "m1", 10), earn("r1", 3, "m1", 30))
	if _, err := hqstore.Open(path, &hqstore.Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, hqstore.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	s.Close()
	s2, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := apply(t, s2, earn("r1", 2, "m1", 20))
	if res.Registers["r1"].Watermark != 3 {
		t.Fatalf("held event lost across reopen: %+v", res.Registers["r1"])
	}
	if b := balance(t, s2, "m1"); b != 60 {
		t.Fatalf("balance %d", b)
	}
	if err := s2.Check(); err != nil {
		t.Fatal(err)
	}
	*s = *s2 // let the cleanup check and close the reopened store
}

func TestRecordConfigVersions(t *testing.T) {
	s, _ := open(t, nil)
	cases := []struct {
		name    string
		kind    string
		version uint64
		doc     string
		want    error
	}{
		{"first", "rules", 1, `{"version":1}`, nil},
		{"newer", "rules", 2, `{"version":2}`, nil},
		{"same version again", "rules", 2, `{"version":2}`, hqstore.ErrStaleConfig},
		{"older", "rules", 1, `{"version":1}`, hqstore.ErrStaleConfig},
		{"other kind starts at 1", "catalogue", 1, `{}`, nil},
		{"not json", "catalogue", 3, `{`, hqstore.ErrInvalid},
		{"zero version", "catalogue", 0, `{}`, hqstore.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.RecordConfig(tc.kind, tc.version, json.RawMessage(tc.doc))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	docs, err := s.Configs()
	if err != nil || len(docs) != 2 || docs[1].Kind != "rules" || docs[1].Version != 2 {
		t.Fatalf("configs %+v %v", docs, err)
	}
}

// FuzzApply feeds arbitrary bytes as event data and envelope fields: the
// store must never panic and must stay consistent.
func FuzzApply(f *testing.F) {
	f.Add("r1", uint64(1), "points.event", []byte(`{"member_id":"m1","points":5}`))
	f.Add("r1", uint64(2), "sale.recorded", []byte(`{"id":"s","member_id":"m1","total":100}`))
	f.Add("r1", uint64(1), "member.upserted", []byte(`{"id":"m1","aliases":["a"]}`))
	f.Add("r1", uint64(3), "sale.refunded", []byte(`{"sale_id":"s","amount":-5}`))
	f.Add("r1", uint64(1), "member.consent", []byte(`{"member_id":"m1","consent":{"given":true}}`))
	f.Add("", uint64(0), "", []byte(`null`))
	s, err := hqstore.Open(filepath.Join(f.TempDir(), "fuzz.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, reg string, seq uint64, typ string, data []byte) {
		e := hqstore.Event{Register: reg, OutboxRecord: ledger.OutboxRecord{
			Seq: seq, ID: fmt.Sprintf("%s-%d", reg, seq), Type: ledger.OutboxType(typ), Data: data,
		}}
		if _, err := s.Apply([]hqstore.Event{e}); err != nil {
			t.Fatalf("storage error on bad input: %v", err)
		}
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	})
}
