package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// Opener returns a fresh, empty store opened with opts; it registers its
// own cleanup (closing the store). The suite runs Check at the end of
// every case.
type Opener func(t *testing.T, opts hqstore.Options) hqstore.Backend

// Run runs every case of the suite as a subtest.
func Run(t *testing.T, open Opener) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, func(t *testing.T, opts hqstore.Options) hqstore.Backend {
				t.Helper()
				s := open(t, opts)
				t.Cleanup(func() {
					if err := s.Check(); err != nil {
						t.Errorf("check: %v", err)
					}
				})
				return s
			})
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, open Opener)
}{
	{"Duplicates", testDuplicates},
	{"ReorderAndGaps", testReorderAndGaps},
	{"ConflictKeepsFirst", testConflictKeepsFirst},
	{"InvalidEventsChangeNothing", testInvalid},
	{"ChainWideMerge", testChainWideMerge},
	{"AliasConflict", testAliasConflict},
	{"DoubleSpends", testDoubleSpends},
	{"Purchases", testPurchases},
	{"ConfigVersions", testConfigVersions},
	{"ReviewAndMove", testReviewAndMove},
	{"Incarnations", testIncarnations},
	{"Succession", testSuccession},
	{"HeldBeyondGapKeepsItsIncarnation", testHeldBeyondGapKeepsItsIncarnation},
	{"Epoch", testEpoch},
	{"SummaryFigures", testSummaryFigures},
	{"RunningFigures", testRunningFigures},
	{"RegistersAndMembersInOrder", testOrder},
	{"ManyRegistersOneBatch", testManyRegisters},
	{"AcknowledgeGap", testAcknowledgeGap},
	{"PolicyHolds", testPolicyHolds},
	{"ResolvePolicy", testResolvePolicy},
	{"NoPolicyNoChecks", testNoPolicyNoChecks},
	{"PolicyReversals", testPolicyReversals},
	{"PolicyProfiles", testPolicyProfiles},
	{"BonusOncePerMember", testBonusOncePerMember},
	{"BonusFactsWithoutPolicy", testBonusFactsWithoutPolicy},
	{"ConsentLatestChoiceWins", testConsentLatestChoiceWins},
	{"ConsentUntrustedClock", testConsentUntrustedClock},
	{"ConsentWeighedOnce", testConsentWeighedOnce},
	{"LookupIsNotShopping", testLookupIsNotShopping},
	{"RegisterStateAsCommitted", testRegisterState},
	{"Erase", testErase},
	{"ReusedHold", testReusedHold},
	{"GapAfterAdoption", testGapAfterAdoption},
	{"GapBeyondHeldAhead", testGapBeyondHeldAhead},
	{"MovedWhileReused", testMovedWhileReused},
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// Ev builds an event of register reg in store s1.
func Ev(reg string, seq uint64, typ ledger.OutboxType, data any) hqstore.Event {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return hqstore.Event{Register: reg, Store: "s1", OutboxRecord: ledger.OutboxRecord{
		Seq: seq, ID: fmt.Sprintf("%s-%d", reg, seq), Type: typ,
		WallTime: t0.Add(time.Duration(seq) * time.Minute), ClockTrusted: true, Data: raw,
	}}
}

// Earn builds a point event (a redemption when pts < 0).
func Earn(reg string, seq uint64, member string, pts ledger.Points) hqstore.Event {
	kind := ledger.KindEarn
	if pts < 0 {
		kind = ledger.KindRedeem
	}
	return Ev(reg, seq, ledger.OutPoints, ledger.PointEvent{
		ID: fmt.Sprintf("%s-%d", reg, seq), Register: reg, Seq: seq, Kind: kind, MemberID: member, Points: pts,
	})
}

func apply(t *testing.T, s hqstore.Backend, evs ...hqstore.Event) hqstore.Result {
	t.Helper()
	res, err := s.Apply(evs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wm(t *testing.T, s hqstore.Backend, reg string) uint64 {
	t.Helper()
	w, err := s.Watermark(reg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func balance(t *testing.T, s hqstore.Backend, member string) ledger.Points {
	t.Helper()
	b, err := s.Balance(member)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testDuplicates(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	batch := []hqstore.Event{Earn("r1", 1, "m1", 10), Earn("r1", 2, "m1", 5), Earn("r1", 3, "m1", 7)}
	res := apply(t, s, batch...)
	if res.Applied != 3 || res.Registers["r1"].Watermark != 3 || res.Registers["r1"].Gap {
		t.Fatalf("first apply: %+v", res)
	}
	res = apply(t, s, append(batch, batch[0])...)
	if res.Applied != 0 || res.Duplicates != 4 {
		t.Fatalf("replay: applied %d duplicates %d, want 0 and 4", res.Applied, res.Duplicates)
	}
	if got := balance(t, s, "m1"); got != 22 {
		t.Fatalf("balance %d after replay, want 22", got)
	}
	rs := res.Registers["r1"]
	if rs.Applied != 3 || rs.Duplicates != 4 || rs.Seen != 3 || rs.Store != "s1" {
		t.Fatalf("register state %+v", rs)
	}
}

func testReorderAndGaps(t *testing.T, open Opener) {
	cases := []struct {
		name    string
		maxHeld int
		batches [][]uint64
		wantWM  []uint64
		wantGap []bool
	}{
		{"reversed one by one", 0, [][]uint64{{3}, {2}, {1}}, []uint64{0, 0, 3}, []bool{true, true, false}},
		{"reversed in one batch", 0, [][]uint64{{3, 2, 1}}, []uint64{3}, []bool{false}},
		{"gap then resend from watermark", 0, [][]uint64{{1, 2, 4, 5}, {3, 4, 5}}, []uint64{2, 5}, []bool{true, false}},
		{"held beyond cap are dropped then resent", 2, [][]uint64{{1, 3, 4, 5, 6}, {2}, {5, 6}}, []uint64{1, 4, 6}, []bool{true, true, false}},
		{"duplicate of a held event", 0, [][]uint64{{2, 2}, {1}}, []uint64{0, 2}, []bool{true, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, hqstore.Options{MaxHeld: tc.maxHeld})
			for i, b := range tc.batches {
				var evs []hqstore.Event
				for _, seq := range b {
					evs = append(evs, Earn("r1", seq, "m1", ledger.Points(seq)))
				}
				st := apply(t, s, evs...).Registers["r1"]
				if st.Watermark != tc.wantWM[i] || st.Gap != tc.wantGap[i] {
					t.Fatalf("batch %d %v: watermark %d gap %v, want %d %v (%+v)", i, b, st.Watermark, st.Gap, tc.wantWM[i], tc.wantGap[i], st)
				}
			}
			last := tc.wantWM[len(tc.wantWM)-1]
			var want ledger.Points
			for i := uint64(1); i <= last; i++ {
				want += ledger.Points(i)
			}
			if got := balance(t, s, "m1"); got != want {
				t.Fatalf("balance %d, want %d (each event once)", got, want)
			}
			if got := wm(t, s, "r1"); got != last {
				t.Fatalf("stored watermark %d, want %d", got, last)
			}
		})
	}
}

func testConflictKeepsFirst(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, Earn("r1", 1, "m1", 10), Earn("r1", 3, "m1", 1))
	res := apply(t, s, Earn("r1", 1, "m1", 999), Earn("r1", 3, "m1", 2))
	if len(res.Conflicts) != 2 || res.Applied != 0 {
		t.Fatalf("want 2 conflicts (applied and held), got %+v", res)
	}
	for _, c := range res.Conflicts {
		if c.Kind != hqstore.ConflictEvent || c.Register != "r1" {
			t.Errorf("conflict %+v", c)
		}
	}
	apply(t, s, Earn("r1", 2, "m1", 100))
	if got := balance(t, s, "m1"); got != 111 {
		t.Fatalf("balance %d, want 111 (first versions kept)", got)
	}
	all, err := s.Conflicts()
	if err != nil || len(all) != 2 || all[0].Seq != 1 || all[1].Seq != 3 {
		t.Fatalf("stored conflicts %+v %v", all, err)
	}
}

func testInvalid(t *testing.T, open Opener) {
	good := Earn("r1", 1, "m1", 10)
	mut := func(f func(*hqstore.Event)) hqstore.Event {
		e := good
		f(&e)
		return e
	}
	cases := []struct {
		name string
		e    hqstore.Event
	}{
		{"no register", mut(func(e *hqstore.Event) { e.Register = "" })},
		{"sequence zero", mut(func(e *hqstore.Event) { e.Seq = 0; e.ID = "r1-0" })},
		{"id not register-seq", mut(func(e *hqstore.Event) { e.ID = "r2-1" })},
		{"data not json", mut(func(e *hqstore.Event) { e.Data = json.RawMessage(`{"member_id":`) })},
		{"points overflow", Ev("r1", 1, ledger.OutPoints, ledger.PointEvent{MemberID: "m1", Points: 1 << 62})},
		{"member id with NUL", Ev("r1", 1, ledger.OutPoints, ledger.PointEvent{MemberID: "m\x001", Points: 1})},
		{"sale without id", Ev("r1", 1, ledger.OutSale, ledger.Sale{Total: 100})},
		{"member with empty alias", Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Aliases: []string{""}})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, hqstore.Options{})
			res := apply(t, s, tc.e)
			if len(res.Rejected) != 1 || !errors.Is(res.Rejected[0], hqstore.ErrInvalid) {
				t.Fatalf("want one ErrInvalid rejection, got %+v", res)
			}
			if res.Applied != 0 || len(res.Members) != 0 {
				t.Fatalf("rejected event changed something: %+v", res)
			}
			if _, err := s.Member("m1"); !errors.Is(err, hqstore.ErrUnknownMember) {
				t.Fatalf("member exists after rejection: %v", err)
			}
			if tc.e.Register == "r1" && wm(t, s, "r1") != 0 {
				t.Fatal("watermark moved")
			}
		})
	}
}

func testChainWideMerge(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	m := ledger.Member{ID: "m1", Aliases: []string{"card-1", "+359888"}, Name: "Ana", HomeRegister: "a-r1",
		EnrolledAt: t0, EnrolledTrusted: true}
	apply(t, s, Ev("a-r1", 1, ledger.OutMember, m), Earn("a-r1", 2, "m1", 120))
	res := apply(t, s, Earn("b-r1", 1, "m1", -50), Ev("b-r1", 2, ledger.OutMember, ledger.Member{ID: "m1", Aliases: []string{"card-2"}, Tier: "gold"}))
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
	if sum.Member.Name != "Ana" || sum.Member.Tier != "gold" || sum.Member.HomeRegister != "a-r1" || !sum.Member.EnrolledAt.Equal(t0) ||
		!reflect.DeepEqual(sum.Member.Aliases, []string{"card-1", "+359888", "card-2"}) {
		t.Fatalf("merged profile %+v", sum.Member)
	}
	got, err := s.LookupAlias("card-2")
	if err != nil || got.ID != "m1" {
		t.Fatalf("alias lookup %v %v", got, err)
	}
	if _, err := s.LookupAlias("nobody"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Fatalf("unknown alias: %v", err)
	}
	if _, err := s.Summary("m9"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Fatalf("unknown member: %v", err)
	}
	// A consent change.
	res = apply(t, s, Ev("a-r1", 3, ledger.OutConsent, map[string]any{"member_id": "m1", "consent": ledger.Consent{Given: true, Channel: "in-store", At: t0, ClockTrusted: true}}))
	mem, err := s.Member("m1")
	if err != nil || !mem.Consent.Given || len(mem.ConsentHistory) != 1 || res.Applied != 1 {
		t.Fatalf("consent: %+v %v", mem, err)
	}
	// It moves the member's mark for its register, points or not; an
	// earn at a register new to the member adds one.
	apply(t, s, Earn("c-r1", 1, "m1", 5))
	if sum, err := s.Summary("m1"); err != nil || sum.Balance != 75 || !reflect.DeepEqual(sum.Included, map[string]uint64{"a-r1": 3, "b-r1": 2, "c-r1": 1}) {
		t.Fatalf("after consent and an earn: balance %d included %v (%v)", sum.Balance, sum.Included, err)
	}
}

func testAliasConflict(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, Ev("a-r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Aliases: []string{"0888"}}))
	res := apply(t, s, Ev("b-r1", 1, ledger.OutMember, ledger.Member{ID: "m2", Aliases: []string{"0888", "card-9"}}))
	if len(res.Conflicts) != 1 {
		t.Fatalf("conflicts %+v", res.Conflicts)
	}
	c := res.Conflicts[0]
	if c.Kind != hqstore.ConflictAlias || c.Alias != "0888" || c.Member != "m2" || c.Owner != "m1" || c.Register != "b-r1" {
		t.Fatalf("conflict %+v", c)
	}
	if res.Registers["b-r1"].Watermark != 1 {
		t.Fatal("the member event itself must still be applied (only the alias is refused)")
	}
	owner, _ := s.LookupAlias("0888")
	m2, _ := s.Member("m2")
	if owner.ID != "m1" || !reflect.DeepEqual(m2.Aliases, []string{"card-9"}) {
		t.Fatalf("alias owner %q, m2 aliases %v", owner.ID, m2.Aliases)
	}
}

func testDoubleSpends(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name   string
		limit  ledger.Points
		exceed bool
	}{{"within offline limit", 100, false}, {"beyond offline limit", 50, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, hqstore.Options{OfflineRedeemLimit: tc.limit})
			apply(t, s, Earn("a-r1", 1, "m1", 100))
			apply(t, s, Earn("a-r1", 2, "m1", -80))
			apply(t, s, Earn("b-r1", 1, "m1", -80))
			ds, err := s.DoubleSpends()
			if err != nil {
				t.Fatal(err)
			}
			want := []hqstore.DoubleSpend{{MemberID: "m1", Register: "b-r1", Seq: 1, EventID: "b-r1-1", Kind: ledger.KindRedeem,
				Points: -80, BalanceAfter: -60, Overdraft: 60, ExceedsLimit: tc.exceed}}
			if !reflect.DeepEqual(ds, want) {
				t.Fatalf("report %+v\nwant   %+v", ds, want)
			}
			if b := balance(t, s, "m1"); b != -60 {
				t.Fatalf("balance %d, want -60 (kept, not clamped)", b)
			}
		})
	}
}

func testPurchases(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	sale := ledger.Sale{ID: "a-r1-s1", Register: "a-r1", MemberID: "m1", Total: 2500,
		Lines:    []ledger.Line{{No: 1, SKU: "x", Quantity: 1, UnitPrice: 1500, Category: "cd"}, {No: 2, SKU: "y", Quantity: 1, UnitPrice: 1000, Category: "dvd"}},
		WallTime: t0, ClockTrusted: true}
	apply(t, s,
		Ev("a-r1", 1, ledger.OutSale, sale),
		Ev("a-r1", 2, ledger.OutRefund, map[string]any{"id": "rf1", "sale_id": "a-r1-s1", "lines": []ledger.Line{{No: 2, Quantity: 1, UnitPrice: 1000}}}),
		Ev("a-r1", 3, ledger.OutSale, ledger.Sale{ID: "a-r1-s2", Register: "a-r1", Total: 700}),
		Ev("a-r1", 4, ledger.OutSale, ledger.Sale{ID: "a-r1-s3", MemberID: "m2", Total: 900}),
		Ev("a-r1", 5, ledger.OutVoid, map[string]any{"id": "v1", "sale_id": "a-r1-s3"}),
	)
	type row struct {
		member string
		sale   string
		amount ledger.Money
	}
	var got []row
	if err := s.EachPurchase(func(id string, p ledger.Purchase) error {
		got = append(got, row{id, p.SaleID, p.Amount})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []row{{"m1", "a-r1-s1", 2500}, {"m1", "a-r1-s1", -1000}, {"m2", "a-r1-s3", 900}, {"m2", "a-r1-s3", -900}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("purchases %v, want %v", got, want)
	}
	ps, err := s.Purchases("m1")
	if err != nil || len(ps) != 2 || !reflect.DeepEqual(ps[0].Categories, []string{"cd", "dvd"}) || !ps[0].WallTime.Equal(t0) || !ps[0].ClockTrusted {
		t.Fatalf("m1 purchases %+v %v", ps, err)
	}
	res := apply(t, s, Ev("b-r1", 1, ledger.OutSale, ledger.Sale{ID: "a-r1-s1", MemberID: "m1", Total: 1}))
	if len(res.Conflicts) != 1 || res.Conflicts[0].Kind != hqstore.ConflictSale {
		t.Fatalf("conflicts %+v", res.Conflicts)
	}
	if ps, _ := s.Purchases("m1"); len(ps) != 2 {
		t.Fatalf("m1 has %d purchases after a clashing sale id, want 2", len(ps))
	}
	// A clock correction dates an untrusted purchase.
	corrected := t0.Add(48 * time.Hour)
	e := Ev("c-r1", 1, ledger.OutSale, ledger.Sale{ID: "c-r1-s1", MemberID: "m3", Total: 100})
	e.ClockTrusted = false
	apply(t, s, e, Ev("c-r1", 2, ledger.OutClock, ledger.TimeCorrection{Register: "c-r1",
		Events: []ledger.CorrectedTime{{Seq: 1, MemberID: "m3", Type: ledger.OutSale, WallTime: corrected}}}))
	ps, err = s.Purchases("m3")
	if err != nil || len(ps) != 1 || !ps[0].CorrectedTime.Equal(corrected) {
		t.Fatalf("corrected purchase %+v %v", ps, err)
	}
}

func testConfigVersions(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	for _, tc := range []struct {
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
	} {
		err := s.RecordConfig(tc.kind, tc.version, json.RawMessage(tc.doc))
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	docs, err := s.Configs()
	if err != nil || len(docs) != 2 || docs[0].Kind != "catalogue" || docs[1].Kind != "rules" || docs[1].Version != 2 {
		t.Fatalf("configs %+v %v", docs, err)
	}
	var doc map[string]int
	if err := json.Unmarshal(docs[1].Doc, &doc); err != nil || doc["version"] != 2 {
		t.Fatalf("stored doc %s %v", docs[1].Doc, err)
	}
	// Forgotten (what a key no longer trusted signed), a kind takes any
	// version again; forgetting a kind never recorded changes nothing.
	if err := s.ForgetConfig("rules"); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetConfig("never"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordConfig("rules", 1, json.RawMessage(`{"version":1}`)); err != nil {
		t.Fatalf("a forgotten kind refuses version 1: %v", err)
	}
	docs, err = s.Configs()
	if err != nil || len(docs) != 2 || docs[1].Kind != "rules" || docs[1].Version != 1 {
		t.Fatalf("configs after forgetting %+v %v", docs, err)
	}
}

func testReviewAndMove(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, Earn("r1", 1, "m1", 10))
	e := Earn("r1", 2, "m1", 10)
	e.Store = "other"
	res := apply(t, s, e)
	h, ok := res.Holds[hqstore.Stream{Store: "other", Register: "r1"}]
	if res.Applied != 0 || res.Reviewed != 1 || !ok || h.Reason != hqstore.ReviewStore || h.Held != 1 || h.Watermark != 1 || wm(t, s, "r1") != 1 {
		t.Fatalf("event under another store: %+v", res)
	}
	held, err := s.Review()
	if err != nil || len(held) != 1 || held[0].Seq != 2 || held[0].Reason != hqstore.ReviewStore || held[0].Store != "other" {
		t.Fatalf("review %+v %v", held, err)
	}
	if _, err := s.MoveRegister("r9", "other", false); !errors.Is(err, hqstore.ErrInvalid) {
		t.Fatalf("move of an unknown register: %v", err)
	}
	// A mistyped store, from which nothing of r1 is held, is refused and
	// changes nothing: r1 stays in s1, its held event stays held.
	if _, err := s.MoveRegister("r1", "othr", false); !errors.Is(err, hqstore.ErrInvalid) || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("move to a store nothing is held from: %v", err)
	}
	if held, _ := s.Review(); len(held) != 1 {
		t.Fatalf("review after a refused move %+v", held)
	}
	if regs, err := s.Registers(); err != nil || len(regs) != 1 || regs[0].Store != "s1" || regs[0].Review != 1 {
		t.Fatalf("a refused move changed r1: %+v %v", regs, err)
	}
	n, err := s.MoveRegister("r1", "other", false)
	if err != nil || n != 1 {
		t.Fatalf("move: %d %v", n, err)
	}
	if held, _ := s.Review(); len(held) != 0 {
		t.Fatalf("review after move %+v", held)
	}
	res = apply(t, s, e)
	if res.Applied != 1 || balance(t, s, "m1") != 20 {
		t.Fatalf("after move: %+v", res)
	}
	// Forced, a move before the register sent anything under its new
	// store goes through: what it sends there next is applied.
	apply(t, s, Earn("r2", 1, "m1", 1))
	if n, err := s.MoveRegister("r2", "s3", true); err != nil || n != 0 {
		t.Fatalf("forced move: %d %v", n, err)
	}
	e2 := Earn("r2", 2, "m1", 1)
	e2.Store = "s3"
	if res := apply(t, s, e2); res.Applied != 1 || res.Reviewed != 0 {
		t.Fatalf("after a forced move: %+v", res)
	}
}

func testIncarnations(t *testing.T, open Opener) {
	inc := func(e hqstore.Event, id string) hqstore.Event { e.Incarnation = id; return e }
	s := open(t, hqstore.Options{})
	apply(t, s, inc(Earn("r1", 1, "m1", 10), "aaaa"), inc(Earn("r1", 2, "m1", 10), "aaaa"), inc(Earn("r1", 3, "m1", 10), "aaaa"))
	res := apply(t, s, inc(Earn("r1", 1, "m1", 100), "bbbb"), inc(Earn("r1", 2, "m1", 100), "bbbb"))
	h := res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: "bbbb"}]
	if res.Reviewed != 2 || h.Reason != hqstore.ReviewIncarnation || h.Held != 2 || h.Text == "" {
		t.Fatalf("second incarnation: %+v", res)
	}
	if res = apply(t, s, inc(Earn("r1", 1, "m1", 100), "bbbb")); res.Reviewed != 0 || res.Holds[h.Stream].Held != 2 {
		t.Fatalf("resend of a held event: %+v", res)
	}
	// Same incarnation, other content under an applied number.
	res = apply(t, s, inc(Earn("r1", 2, "m1", 10), "aaaa"), inc(Earn("r1", 3, "m1", 77), "aaaa"))
	h = res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: "aaaa"}]
	if res.Reviewed != 1 || h.Reason != hqstore.ReviewReused || h.Watermark != 2 || len(res.Conflicts) != 1 {
		t.Fatalf("reused: %+v", res)
	}
	if got := balance(t, s, "m1"); got != 30 {
		t.Fatalf("balance %d", got)
	}
	rs, err := s.Registers()
	if err != nil || len(rs) != 1 || rs[0].Incarnation != "aaaa" || rs[0].Review != 3 {
		t.Fatalf("registers %+v %v", rs, err)
	}
}

func testEpoch(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	for want := uint64(1); want <= 3; want++ {
		if got, err := s.NextEpoch(); err != nil || got != want {
			t.Fatalf("epoch %d %v, want %d", got, err, want)
		}
	}
}

func testSummaryFigures(t *testing.T, open Opener) {
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	s := open(t, hqstore.Options{Clock: ledgertest.NewClock(now, true)})
	var evs []hqstore.Event
	for i, d := range []int{-130, -100, -70, -40} {
		evs = append(evs, Ev("a-r1", uint64(i+1), ledger.OutSale, ledger.Sale{ID: fmt.Sprintf("s%d", i), MemberID: "m1", Total: 1000,
			WallTime: now.AddDate(0, 0, d), ClockTrusted: true}))
	}
	evs = append(evs, Earn("a-r1", 5, "m1", 10))
	apply(t, s, evs...)
	sums, err := s.Summaries([]string{"m1", "nobody"})
	if err != nil || len(sums) != 1 {
		t.Fatalf("summaries %+v %v", sums, err)
	}
	sum := sums[0]
	if sum.Spend12m != 4000 || sum.Visits12m != 4 || sum.Retention == nil || sum.Retention.MeanInterval != 30 || sum.Balance != 10 {
		t.Fatalf("summary %+v %+v", sum, sum.Retention)
	}
	var n int
	if err := s.EachSummary(func(ms hqstore.MemberSummary) error {
		n++
		if !reflect.DeepEqual(ms, sum) {
			t.Errorf("EachSummary %+v, Summaries %+v", ms, sum)
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("each summary %d %v", n, err)
	}
}

// Summary figures come from running figures kept at ingest (Check
// compares them with a recomputation from the purchases): days arriving
// out of order from two registers, a refund that nets a sale out (its
// day goes), a partial refund, a refund before its sale, and an
// untrusted sale counted only once a correction dates it.
func testRunningFigures(t *testing.T, open Opener) {
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	s := open(t, hqstore.Options{Clock: ledgertest.NewClock(now, true)})
	sale := func(reg string, seq uint64, id string, days, total int, trusted bool) hqstore.Event {
		e := Ev(reg, seq, ledger.OutSale, ledger.Sale{ID: id, MemberID: "m1", Total: ledger.Money(total), WallTime: now.AddDate(0, 0, days), ClockTrusted: trusted})
		e.ClockTrusted = trusted
		return e
	}
	refund := func(reg string, seq uint64, saleID string, amount int) hqstore.Event {
		return Ev(reg, seq, ledger.OutRefund, map[string]any{"id": fmt.Sprintf("%s-%d-r", reg, seq), "sale_id": saleID, "member_id": "m1", "amount": amount})
	}
	check := func(step string, spend ledger.Money, visits, days int, mean float64) {
		t.Helper()
		sum, err := s.Summary("m1")
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		if sum.Retention != nil {
			got = sum.Retention.PurchaseDays
		}
		if sum.Spend12m != spend || sum.Visits12m != visits || got != days || sum.Retention != nil && sum.Retention.MeanInterval != mean {
			t.Fatalf("%s: spend %d visits %d %+v, want %d %d, %d days, mean %v", step, sum.Spend12m, sum.Visits12m, sum.Retention, spend, visits, days, mean)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	apply(t, s, Ev("e-r1", 1, ledger.OutMember, ledger.Member{ID: "m1", EnrolledAt: now.AddDate(-2, 0, 0), EnrolledTrusted: true}))
	check("enrolled", 0, 0, 0, 0)
	apply(t, s, sale("a-r1", 1, "s1", -10, 500, true), sale("a-r1", 2, "s2", -400, 700, true))
	check("two sales, one over a year ago", 500, 1, 2, 390)
	apply(t, s, sale("b-r1", 1, "s3", -200, 300, true), refund("b-r1", 2, "s9", 100))
	check("a day between, an orphan refund", 800, 2, 3, 195)
	apply(t, s, refund("a-r1", 3, "s3", 300), refund("a-r1", 4, "s1", 200))
	check("the middle sale refunded whole, the last in part", 300, 1, 2, 390)
	apply(t, s, sale("b-r1", 3, "s9", -5, 400, true))
	check("the orphan refund's sale", 600, 2, 3, 197.5)
	apply(t, s, sale("c-r1", 1, "s4", -1, 100, false))
	check("an untrusted sale", 600, 2, 3, 197.5)
	apply(t, s, Ev("c-r1", 2, ledger.OutClock, ledger.TimeCorrection{Register: "c-r1",
		Events: []ledger.CorrectedTime{{Seq: 1, MemberID: "m1", Type: ledger.OutSale, WallTime: now.AddDate(0, 0, -2)}}}))
	check("its correction", 700, 3, 4, 398.0/3)
}

func testOrder(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, Earn("r3", 1, "m3", 1), Earn("r1", 1, "m2", 1), Earn("r2", 1, "m1", 1), Earn("r2", 2, "m10", 1))
	rs, err := s.Registers()
	if err != nil || len(rs) != 3 || rs[0].Register != "r1" || rs[1].Register != "r2" || rs[2].Register != "r3" {
		t.Fatalf("registers %+v %v", rs, err)
	}
	var ids []string
	if err := s.EachMember(func(m ledger.Member) error { ids = append(ids, m.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"m1", "m10", "m2", "m3"}) {
		t.Fatalf("members %v", ids)
	}
	stop := errors.New("stop")
	if err := s.EachMember(func(ledger.Member) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("EachMember does not return fn's error: %v", err)
	}
}

// testManyRegisters applies interleaved streams of many registers and
// members in batches, and checks counts and balances.
func testManyRegisters(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	const regs, per = 20, 30
	want := map[string]ledger.Points{}
	var batch []hqstore.Event
	for seq := uint64(1); seq <= per; seq++ {
		for r := 0; r < regs; r++ {
			m := fmt.Sprintf("m%d", (r*7+int(seq))%13)
			pts := ledger.Points(int(seq)%5 + 1)
			want[m] += pts
			batch = append(batch, Earn(fmt.Sprintf("r%02d", r), seq, m, pts))
			if len(batch) == 64 {
				apply(t, s, batch...)
				batch = nil
			}
		}
	}
	apply(t, s, batch...)
	rs, err := s.Registers()
	if err != nil || len(rs) != regs {
		t.Fatalf("registers %d %v", len(rs), err)
	}
	for _, r := range rs {
		if r.Watermark != per || r.Applied != per || r.Gap {
			t.Fatalf("register %+v", r)
		}
	}
	for m, w := range want {
		if got := balance(t, s, m); got != w {
			t.Fatalf("member %s balance %d, want %d", m, got, w)
		}
	}
}

// testRegisterState: one register's state as committed (head office's
// workers read it before asking a register to resend: another worker may
// have closed the gap): the gap and the events it waits for, then closed;
// a register never heard of has the zero state with its id.
func testRegisterState(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	if rs, err := s.RegisterState("r9"); err != nil || rs.Register != "r9" || rs.Watermark != 0 || rs.Gap || rs.Store != "" {
		t.Fatalf("unknown register: %+v %v", rs, err)
	}
	apply(t, s, Earn("r1", 1, "m1", 10), Earn("r1", 5, "m1", 10), Earn("r1", 6, "m1", 10))
	rs, err := s.RegisterState("r1")
	if err != nil || rs.Register != "r1" || rs.Store != "s1" || rs.Watermark != 1 || !rs.Gap || rs.WaitFrom != 2 || rs.WaitTo != 4 || rs.Held != 2 {
		t.Fatalf("with a gap: %+v %v", rs, err)
	}
	apply(t, s, Earn("r1", 2, "m1", 1), Earn("r1", 3, "m1", 1), Earn("r1", 4, "m1", 1))
	if rs, err := s.RegisterState("r1"); err != nil || rs.Watermark != 6 || rs.Gap || rs.Held != 0 || rs.WaitTo != 0 {
		t.Fatalf("gap closed: %+v %v", rs, err)
	}
}

// testAcknowledgeGap: a head office restored from an older backup waits
// for events no register still has. Only the exact gap (from the
// watermark, below the first held event) can be acknowledged; then the
// held events are applied, the stream goes on, the gap is listed and
// Check accepts it.
func testAcknowledgeGap(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, Earn("r1", 1, "m1", 10), Earn("r1", 2, "m1", 10))
	res := apply(t, s, Earn("r1", 6, "m1", 100), Earn("r1", 7, "m1", 100))
	rs := res.Registers["r1"]
	if !rs.Gap || rs.WaitFrom != 3 || rs.WaitTo != 5 || rs.Held != 2 {
		t.Fatalf("state before: %+v", rs)
	}
	bad := []struct {
		name     string
		reg      string
		from, to uint64
	}{
		{"unknown register", "r9", 3, 5},
		{"not from the watermark", "r1", 4, 5},
		{"over a held event", "r1", 3, 6},
		{"part of the gap", "r1", 3, 4},
		{"backwards", "r1", 3, 2},
	}
	for _, b := range bad {
		if _, err := s.AcknowledgeGap(b.reg, b.from, b.to, ""); !errors.Is(err, hqstore.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", b.name, err)
		}
	}
	if wm(t, s, "r1") != 2 {
		t.Fatalf("a refused acknowledgement changed the watermark: %d", wm(t, s, "r1"))
	}
	g, err := s.AcknowledgeGap("r1", 3, 5, "restored from Monday's backup")
	if err != nil || g.Released != 2 || g.From != 3 || g.To != 5 {
		t.Fatalf("acknowledge: %+v %v", g, err)
	}
	if wm(t, s, "r1") != 7 || balance(t, s, "m1") != 220 {
		t.Fatalf("after: watermark %d balance %d", wm(t, s, "r1"), balance(t, s, "m1"))
	}
	res = apply(t, s, Earn("r1", 8, "m1", 1))
	if rs := res.Registers["r1"]; rs.Watermark != 8 || rs.Gap || rs.WaitFrom != 0 {
		t.Fatalf("the stream does not go on: %+v", rs)
	}
	// Nothing seen beyond the watermark: head office waits for nothing,
	// so no range is taken (a typo would make it skip numbers the
	// register has not sent yet, and hold those as reused when they come).
	for _, r := range [][2]uint64{{9, 10}, {9, 1000}} {
		if _, err := s.AcknowledgeGap("r1", r[0], r[1], ""); !errors.Is(err, hqstore.ErrInvalid) {
			t.Fatalf("gap %d..%d with nothing seen beyond the watermark: %v, want ErrInvalid", r[0], r[1], err)
		}
	}
	if wm(t, s, "r1") != 8 {
		t.Fatalf("a refused acknowledgement changed the watermark: %d", wm(t, s, "r1"))
	}
	// Once the register's next event is held beyond the missing ones,
	// that gap is recorded and the event applied.
	apply(t, s, Earn("r1", 11, "m1", 1))
	if g, err := s.AcknowledgeGap("r1", 9, 10, ""); err != nil || g.Released != 1 {
		t.Fatalf("gap 9..10 with 11 held: %+v %v", g, err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("check with a gap: %v", err)
	}
	if wm(t, s, "r1") != 11 {
		t.Fatalf("watermark %d", wm(t, s, "r1"))
	}
	gaps, err := s.Gaps()
	if err != nil || len(gaps) != 2 || gaps[0].Note != "restored from Monday's backup" || gaps[1].From != 9 {
		t.Fatalf("gaps %+v %v", gaps, err)
	}
	// Two gaps: when the first closes, head office names the second.
	apply(t, s, Earn("r1", 14, "m1", 1), Earn("r1", 17, "m1", 1))
	res = apply(t, s, Earn("r1", 12, "m1", 1), Earn("r1", 13, "m1", 1))
	if rs := res.Registers["r1"]; rs.Watermark != 14 || rs.HeldFrom != 17 || rs.WaitFrom != 15 || rs.WaitTo != 16 {
		t.Fatalf("second gap: %+v", rs)
	}
	if _, err := s.AcknowledgeGap("r1", 15, 17, ""); !errors.Is(err, hqstore.ErrInvalid) {
		t.Fatalf("a gap over the held event after the second gap: %v", err)
	}
	if g, err := s.AcknowledgeGap("r1", 15, 16, ""); err != nil || g.Released != 1 || wm(t, s, "r1") != 17 {
		t.Fatalf("second gap: %+v %v, watermark %d", g, err, wm(t, s, "r1"))
	}
}

// testAdoptIncarnation: a new ledger that continued the stream (its first
// event is the watermark + 1) is adopted: its held events are released
// and then applied, the old incarnation's are held from then on; one that
// does not continue the stream (a second register from 1) is refused.
func testAdoptIncarnation(t *testing.T, open Opener) {
	inc := func(e hqstore.Event, id string) hqstore.Event { e.Incarnation = id; return e }
	s := open(t, hqstore.Options{})
	apply(t, s, inc(Earn("r1", 1, "m1", 10), "aaaa"), inc(Earn("r1", 2, "m1", 10), "aaaa"))
	apply(t, s, inc(Earn("r1", 3, "m1", 5), "bbbb"), inc(Earn("r1", 4, "m1", 5), "bbbb")) // the replacement
	apply(t, s, inc(Earn("r1", 1, "m1", 7), "cccc"))                                      // a clone from 1
	for _, bad := range [][2]string{{"r9", "bbbb"}, {"r1", "aaaa"}, {"r1", "cccc"}, {"r1", "dddd"}} {
		if _, err := s.AdoptIncarnation(bad[0], bad[1]); !errors.Is(err, hqstore.ErrInvalid) {
			t.Fatalf("adopt %v: %v, want ErrInvalid", bad, err)
		}
	}
	n, err := s.AdoptIncarnation("r1", "bbbb")
	if err != nil || n != 2 {
		t.Fatalf("adopt: %d %v", n, err)
	}
	res := apply(t, s, inc(Earn("r1", 3, "m1", 5), "bbbb"), inc(Earn("r1", 4, "m1", 5), "bbbb"), inc(Earn("r1", 3, "m1", 99), "aaaa"))
	if res.Applied != 2 || wm(t, s, "r1") != 4 || balance(t, s, "m1") != 30 || res.Reviewed != 1 {
		t.Fatalf("after adopting: %+v, watermark %d, balance %d", res, wm(t, s, "r1"), balance(t, s, "m1"))
	}
	if h := res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: "aaaa"}]; h.Reason != hqstore.ReviewIncarnation {
		t.Fatalf("the old incarnation is not held: %+v", res.Holds)
	}
}

// testSuccession: a new incarnation that declares it continues the one
// head office follows (a ledger restored from an older backup, numbered
// after head office's watermark) is followed at once when its first event
// continues the stream; anything else declaring it is held as before.
func testSuccession(t *testing.T, open Opener) {
	ev := func(e hqstore.Event, id, prev string) hqstore.Event {
		e.Incarnation, e.PrevIncarnation = id, prev
		return e
	}
	s := open(t, hqstore.Options{})
	apply(t, s, ev(Earn("r1", 1, "m1", 10), "aaaa", ""), ev(Earn("r1", 2, "m1", 10), "aaaa", ""), ev(Earn("r1", 3, "m1", 10), "aaaa", ""))
	for _, bad := range []hqstore.Event{
		ev(Earn("r1", 5, "m1", 100), "bbbb", "aaaa"), // not after the watermark
		ev(Earn("r1", 3, "m1", 100), "bbbb", "aaaa"), // over an applied number
		ev(Earn("r1", 4, "m1", 100), "cccc", "dddd"), // continues another one
	} {
		if res := apply(t, s, bad); res.Reviewed != 1 || res.Applied != 0 {
			t.Fatalf("%s seq %d prev %s: %+v", bad.Incarnation, bad.Seq, bad.PrevIncarnation, res)
		}
	}
	res := apply(t, s, ev(Earn("r1", 4, "m1", 1), "eeee", "aaaa"), ev(Earn("r1", 5, "m1", 1), "eeee", "aaaa"))
	if res.Applied != 2 || res.Reviewed != 0 || res.Registers["r1"].Incarnation != "eeee" || res.Registers["r1"].Successions != 1 {
		t.Fatalf("successor: %+v", res)
	}
	// The old incarnation is held from now on; the successor goes on.
	res = apply(t, s, ev(Earn("r1", 6, "m1", 50), "aaaa", ""), ev(Earn("r1", 6, "m1", 1), "eeee", "aaaa"))
	if res.Applied != 1 || res.Reviewed != 1 || wm(t, s, "r1") != 6 || balance(t, s, "m1") != 33 {
		t.Fatalf("after the succession: %+v, watermark %d, balance %d", res, wm(t, s, "r1"), balance(t, s, "m1"))
	}
}

// testHeldBeyondGapKeepsItsIncarnation: events held beyond a gap belong to
// the incarnation followed when they came (review5). Before, they were
// keyed by register and number alone: after a succession or an adoption
// the old ledger's event was drained into the new stream, the new
// ledger's event under that number was dropped as a conflict and then
// acknowledged: lost. Now the old ones go to review as their
// incarnation's, and other content under a number held beyond the gap
// (the same incarnation, restored from an older copy) is held as reused.
func testHeldBeyondGapKeepsItsIncarnation(t *testing.T, open Opener) {
	ev := func(seq uint64, member string, pts ledger.Points, inc, prev string) hqstore.Event {
		e := Earn("r1", seq, member, pts)
		e.Incarnation, e.PrevIncarnation = inc, prev
		return e
	}
	reviewed := func(s hqstore.Backend) map[string]string {
		t.Helper()
		held, err := s.Review()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, h := range held {
			out[fmt.Sprintf("%.4s/%d", h.Incarnation, h.Seq)] = h.Reason
		}
		return out
	}
	t.Run("succession", func(t *testing.T) {
		s := open(t, hqstore.Options{})
		apply(t, s, ev(1, "m1", 1, "aaaa", ""), ev(2, "m1", 1, "aaaa", ""), ev(3, "m1", 1, "aaaa", ""))
		apply(t, s, ev(6, "m1", 1000, "aaaa", "")) // beyond a gap; then aaaa's card dies
		// A restored copy goes on under bbbb after head office's watermark.
		apply(t, s, ev(4, "m2", 40, "bbbb", "aaaa"))
		res := apply(t, s, ev(6, "m2", 60, "bbbb", "aaaa"), ev(7, "m2", 70, "bbbb", "aaaa")) // overtakes 5
		if len(res.Conflicts) != 0 || res.Held != 2 {
			t.Fatalf("bbbb's 6 and 7 beyond the gap: %+v", res)
		}
		apply(t, s, ev(5, "m2", 50, "bbbb", "aaaa"))
		if w := wm(t, s, "r1"); w != 7 {
			t.Fatalf("watermark %d, want 7", w)
		}
		if m1, m2 := balance(t, s, "m1"), balance(t, s, "m2"); m1 != 3 || m2 != 220 {
			t.Fatalf("balances m1 %d (want 3: aaaa's 6 not applied), m2 %d (want 220: all of bbbb's)", m1, m2)
		}
		if got := reviewed(s); len(got) != 1 || got["aaaa/6"] != hqstore.ReviewIncarnation {
			t.Fatalf("review %v, want aaaa's 6 held as incarnation", got)
		}
	})
	t.Run("adoption", func(t *testing.T) {
		s := open(t, hqstore.Options{})
		apply(t, s, ev(1, "m1", 1, "aaaa", ""), ev(2, "m1", 1, "aaaa", ""))
		apply(t, s, ev(5, "m1", 1000, "aaaa", "")) // beyond a gap; then aaaa's card dies
		// A replacement continued after head office's watermark (2).
		apply(t, s, ev(3, "m2", 30, "cccc", ""), ev(5, "m2", 50, "cccc", ""))
		if n, err := s.AdoptIncarnation("r1", "cccc"); err != nil || n != 2 {
			t.Fatalf("adopt: %d %v", n, err)
		}
		apply(t, s, ev(3, "m2", 30, "cccc", ""), ev(5, "m2", 50, "cccc", ""))
		apply(t, s, ev(4, "m2", 40, "cccc", ""))
		if w, m2 := wm(t, s, "r1"), balance(t, s, "m2"); w != 5 || m2 != 120 {
			t.Fatalf("after adoption: watermark %d (want 5), m2 %d (want 120: all of cccc's)", w, m2)
		}
		if got := reviewed(s); len(got) != 1 || got["aaaa/5"] != hqstore.ReviewIncarnation {
			t.Fatalf("review %v, want aaaa's 5 held as incarnation", got)
		}
	})
	t.Run("same incarnation", func(t *testing.T) {
		s := open(t, hqstore.Options{})
		apply(t, s, ev(1, "m1", 1, "aaaa", ""), ev(2, "m1", 1, "aaaa", ""), ev(3, "m1", 1, "aaaa", ""))
		apply(t, s, ev(6, "m1", 1000, "aaaa", "")) // the original's 6, beyond a gap
		// Restored from a backup at 3 (same incarnation), it records 4..7.
		apply(t, s, ev(4, "m2", 40, "aaaa", ""))
		res := apply(t, s, ev(6, "m2", 60, "aaaa", ""), ev(7, "m2", 70, "aaaa", ""))
		h, ok := res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: "aaaa"}]
		if !ok || h.Reason != hqstore.ReviewReused || h.Watermark != 4 || res.Reviewed != 1 {
			t.Fatalf("other content under a number held beyond the gap: %+v", res)
		}
		apply(t, s, ev(5, "m2", 50, "aaaa", ""))
		if got := reviewed(s); len(got) != 1 || got["aaaa/6"] != hqstore.ReviewReused {
			t.Fatalf("review %v, want the restored ledger's 6 held as reused", got)
		}
	})
}
