package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

func TestExpiryLotsOldestFirstAndNotRedated(t *testing.T) {
	f := newFixture(t, nil) // engine: 12-month expiry
	ctx := context.Background()
	f.enrol(t, "m1")
	f.sale(t, ledger.SaleRequest{ID: "jan", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 10000}}}) // 100 pts, expire t0+12m
	f.clock.Advance(30 * 24 * time.Hour)
	f.sale(t, ledger.SaleRequest{ID: "feb", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 10000}}}) // 100 pts, expire t0+30d+12m
	// A new rule set with 1-month expiry must not re-date the lots above.
	e2 := testEngine()
	e2.Version, e2.ExpiryMonths = 2, 1
	f.opts.Engine = e2
	f.reopen(t)
	f.sale(t, ledger.SaleRequest{ID: "mar", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 5000}}}) // 50 pts, expire in 1 month
	// Redeem 50+50 (oldest lot first: takes 100 from "jan").
	for _, id := range []string{"r1", "r2"} {
		f.sale(t, ledger.SaleRequest{ID: id, MemberID: "m1", HQReachable: true, Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 300}}, Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}})
	}
	// 6 earned points from the two small sales (3 each) form a 1-month lot too.
	if b := f.balance(t, "m1"); b != 100+50+6 {
		t.Fatalf("balance %d", b)
	}
	steps := []struct {
		name    string
		advance time.Duration
		trusted bool
		want    ledger.Points // balance after ExpireDue
		err     error
	}{
		{"untrusted clock never expires", 400 * 24 * time.Hour, false, 156, ledger.ErrClockUntrusted},
		{"after 40 days the 1-month lots expire", 40 * 24 * time.Hour, true, 100, nil},
		{"jan lot (consumed) has nothing to expire at 12 months", 300 * 24 * time.Hour, true, 100, nil},
		{"feb lot expires at its own 12 months, not re-dated", 30 * 24 * time.Hour, true, 0, nil},
	}
	now := t0.Add(30 * 24 * time.Hour)
	for _, st := range steps {
		if st.trusted {
			now = now.Add(st.advance)
			f.clock.Set(now, true)
		} else {
			f.clock.Set(now.Add(st.advance), false)
		}
		_, err := f.l.ExpireDue(ctx)
		if !errors.Is(err, st.err) {
			t.Fatalf("%s: %v", st.name, err)
		}
		if b := f.balance(t, "m1"); b != st.want || f.sumEvents(t, "m1") != b {
			t.Fatalf("%s: balance %d want %d", st.name, b, st.want)
		}
	}
	evs, _ := f.l.Events("m1")
	var expired ledger.Points
	for _, ev := range evs {
		if ev.Kind == ledger.KindExpire {
			expired += ev.Points
		}
	}
	if expired != -156 {
		t.Fatalf("expired %d", expired)
	}
}

func TestAdjust(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.enrol(t, "m1")
	ev, err := f.l.Adjust(ctx, "a1", "m1", 40, "goodwill", "op7")
	if err != nil || ev.Kind != ledger.KindAdjust || ev.Points != 40 || ev.Operator != "op7" || ev.ExpiresAt.IsZero() {
		t.Fatalf("adjust %+v %v", ev, err)
	}
	again, err := f.l.Adjust(ctx, "a1", "m1", 40, "goodwill", "op7")
	if err != nil || again.ID != ev.ID || f.balance(t, "m1") != 40 {
		t.Fatalf("retry %+v %v balance %d", again, err, f.balance(t, "m1"))
	}
	cases := []struct {
		name           string
		id, member     string
		pts            ledger.Points
		reason, opname string
		want           error
	}{
		{"same id other points", "a1", "m1", 41, "goodwill", "op7", ledger.ErrConflict},
		{"zero points", "a2", "m1", 0, "x", "op", ledger.ErrInvalid},
		{"no reason", "a2", "m1", 5, "", "op", ledger.ErrInvalid},
		{"no operator", "a2", "m1", 5, "x", "", ledger.ErrInvalid},
		{"below zero", "a2", "m1", -41, "x", "op", ledger.ErrInsufficient},
		{"unknown member", "a2", "nobody", 5, "x", "op", ledger.ErrUnknownMember},
		{"overflow", "a2", "m1", 1<<63 - 1, "x", "op", ledger.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.l.Adjust(ctx, tc.id, tc.member, tc.pts, tc.reason, tc.opname); !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
			if f.balance(t, "m1") != 40 {
				t.Fatal("bad adjustment changed the balance")
			}
		})
	}
	if _, err := f.l.Adjust(ctx, "a3", "m1", -40, "fraud", "op7"); err != nil || f.balance(t, "m1") != 0 {
		t.Fatalf("debit to zero: %v", err)
	}
}

func TestMembersAliasesConsent(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	m := ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"card-1", "+972500000001"}, Birthday: "--04-02"}
	got, err := f.l.Enrol(ctx, m)
	if err != nil || !got.EnrolledAt.Equal(t0) || !got.EnrolledTrusted || got.HomeRegister != "r1" {
		t.Fatalf("enrol %+v %v", got, err)
	}
	if again, err := f.l.Enrol(ctx, m); err != nil || !again.EnrolledAt.Equal(t0) {
		t.Fatalf("idempotent enrol %+v %v", again, err)
	}
	for _, a := range m.Aliases {
		if found, err := f.l.LookupAlias(a); err != nil || found.ID != "m1" {
			t.Fatalf("lookup %s: %+v %v", a, found, err)
		}
	}
	cases := []struct {
		name string
		m    ledger.Member
		want error
	}{
		{"same id other profile", ledger.Member{ID: "m1", Name: "Other"}, ledger.ErrConflict},
		{"alias of another member", ledger.Member{ID: "m2", Aliases: []string{"card-1"}}, ledger.ErrAliasTaken},
		{"empty id", ledger.Member{Name: "x"}, ledger.ErrInvalid},
		{"alias twice", ledger.Member{ID: "m3", Aliases: []string{"a", "a"}}, ledger.ErrInvalid},
		{"empty alias", ledger.Member{ID: "m3", Aliases: []string{""}}, ledger.ErrInvalid},
		{"control character in id", ledger.Member{ID: "m\x00"}, ledger.ErrInvalid},
		{"bad birthday", ledger.Member{ID: "m4", Birthday: "31/02"}, ledger.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.l.Enrol(ctx, tc.m); !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
		})
	}
	if _, err := f.l.LookupAlias("nope"); !errors.Is(err, ledger.ErrUnknownMember) {
		t.Fatalf("unknown alias: %v", err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.l.SetConsent(ctx, "m1", ledger.Consent{Given: true, Channel: "in-store"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	c, err := f.l.SetConsent(ctx, "m1", ledger.Consent{Given: false, Channel: "web", Note: "unsubscribe link"})
	if err != nil || c.Consent.Given || len(c.ConsentHistory) != 2 || !c.ConsentHistory[0].Given || !c.Consent.At.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("consent history %+v %v", c, err)
	}
	if _, err := f.l.SetConsent(ctx, "nobody", ledger.Consent{Channel: "web"}); !errors.Is(err, ledger.ErrUnknownMember) {
		t.Fatalf("consent unknown member: %v", err)
	}
	if _, err := f.l.SetConsent(ctx, "m1", ledger.Consent{Given: true}); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("consent without channel: %v", err)
	}
}

func TestHeadOfficeSummaryOverlay(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.enrol(t, "m1", "c1")
	f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1"}) // +10 local
	st, _ := f.l.Stats()
	covered := st.LastSeq
	f.sale(t, ledger.SaleRequest{ID: "s2", MemberID: "m1"}) // +10 local, not covered
	// Head office: 500 chain-wide including s1.
	if err := f.l.ApplyMemberSummary(ctx, ledger.MemberSummary{Member: ledger.Member{ID: "m1", Name: "HQ name", Aliases: []string{"c1", "c2"}}, Balance: 500, Covered: covered, Version: 3}); err != nil {
		t.Fatal(err)
	}
	if b := f.balance(t, "m1"); b != 510 {
		t.Fatalf("effective balance %d, want 500 + 10 not covered", b)
	}
	if lb, _ := f.l.LocalBalance("m1"); lb != 20 {
		t.Fatalf("local balance %d", lb)
	}
	// An older summary is ignored.
	if err := f.l.ApplyMemberSummary(ctx, ledger.MemberSummary{Member: ledger.Member{ID: "m1"}, Balance: 1, Version: 2}); err != nil {
		t.Fatal(err)
	}
	if b := f.balance(t, "m1"); b != 510 {
		t.Fatalf("older summary applied: %d", b)
	}
	if m, err := f.l.LookupAlias("c2"); err != nil || m.ID != "m1" || m.Name != "HQ name" {
		t.Fatalf("alias from head office: %+v %v", m, err)
	}
	// A member enrolled at another store is found here, and can redeem
	// against the chain-wide balance.
	if err := f.l.ApplyMemberSummary(ctx, ledger.MemberSummary{Member: ledger.Member{ID: "m9", Aliases: []string{"c9"}}, Balance: 60, Version: 1}); err != nil {
		t.Fatal(err)
	}
	m9, err := f.l.LookupAlias("c9")
	if err != nil || m9.ID != "m9" {
		t.Fatalf("remote member: %+v %v", m9, err)
	}
	r := f.sale(t, ledger.SaleRequest{ID: "s3", MemberID: "m9", HQReachable: true, Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 300}}, Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}})
	if r.Balance != 60-50+3 {
		t.Fatalf("remote member redeem: %+v", r)
	}
	if err := f.l.ApplyMemberSummary(ctx, ledger.MemberSummary{Member: ledger.Member{ID: "m9"}, Covered: 1 << 40, Version: 2}); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("summary covering unwritten seq: %v", err)
	}
}

func TestCatalogueAndRules(t *testing.T) {
	f := newFixture(t, func(o *ledger.Options) { o.Engine = nil; o.Rules = realRules(t, 1, 12) })
	ctx := context.Background()
	items := []ledger.Item{{SKU: "A", Name: "Apple", Price: 120, Category: "fruit"}}
	if err := f.l.PutCatalogue(ctx, 2, items); err != nil {
		t.Fatal(err)
	}
	if it, err := f.l.Item("A"); err != nil || it != items[0] {
		t.Fatalf("item %+v %v", it, err)
	}
	cases := []struct {
		name  string
		ver   int
		items []ledger.Item
		want  error
	}{
		{"same version", 2, items, ledger.ErrStaleVersion},
		{"older version", 1, items, ledger.ErrStaleVersion},
		{"zero price", 3, []ledger.Item{{SKU: "B", Price: 0}}, ledger.ErrInvalid},
		{"duplicate sku", 3, []ledger.Item{{SKU: "B", Price: 1}, {SKU: "B", Price: 2}}, ledger.ErrInvalid},
		{"empty sku", 3, []ledger.Item{{Price: 1}}, ledger.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.l.PutCatalogue(ctx, tc.ver, tc.items); !errors.Is(err, tc.want) {
				t.Fatalf("got %v", err)
			}
			if _, err := f.l.Item("A"); err != nil {
				t.Fatal("bad catalogue changed the catalogue")
			}
		})
	}
	if err := f.l.PutCatalogue(ctx, 3, []ledger.Item{{SKU: "B", Price: 5}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Item("A"); !errors.Is(err, ledger.ErrUnknownItem) {
		t.Fatalf("old item still there: %v", err)
	}
	if err := f.l.SetRules(realRules(t, 1, 12)); !errors.Is(err, ledger.ErrStaleVersion) {
		t.Fatalf("same rules version: %v", err)
	}
	if err := f.l.SetRules(&rules.RuleSet{Version: 9}); !errors.Is(err, rules.ErrInvalid) {
		t.Fatalf("invalid rule set accepted: %v", err)
	}
	if err := f.l.SetRules(realRules(t, 4, 12)); err != nil {
		t.Fatal(err)
	}
	f.opts.Rules = realRules(t, 2, 12)
	f.reopen(t)
	if v := f.l.RuleVersion(); v != 4 {
		t.Fatalf("stored rules not kept over an older configured set: %d", v)
	}
	st, err := f.l.Stats()
	if err != nil || st.CatalogueVersion != 3 || st.FileSize == 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
}

func realRules(t *testing.T, version, expiryMonths int) *rules.RuleSet {
	t.Helper()
	doc := fmt.Sprintf(`{"version":%d,"earn":{"points_per_unit":"1"},"expiry_months":%d,"rewards":[{"id":"coffee","name":"Coffee","points":50,"discount":300}]}`, version, expiryMonths)
	rs, err := rules.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestRealRuleSet runs the ledger with the production rules engine: the
// rule version is stored with every event, and a later rule set with a
// shorter expiry leaves earlier lots' dates alone.
func TestRealRuleSet(t *testing.T) {
	f := newFixture(t, func(o *ledger.Options) { o.Engine = nil; o.Rules = realRules(t, 1, 12) })
	f.enrol(t, "m1")
	r1 := f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 2500}}})
	if err := f.l.SetRules(realRules(t, 2, 1)); err != nil {
		t.Fatal(err)
	}
	r2 := f.sale(t, ledger.SaleRequest{ID: "s2", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1000}}})
	if r1.Earned != 25 || r2.Earned != 10 || r1.Sale.RuleVersion != 1 || r2.Sale.RuleVersion != 2 {
		t.Fatalf("earned %d/%d versions %d/%d", r1.Earned, r2.Earned, r1.Sale.RuleVersion, r2.Sale.RuleVersion)
	}
	if r1.Events[0].RuleVersion != 1 || !r1.Events[0].ExpiresAt.After(r2.Events[0].ExpiresAt) {
		t.Fatalf("expiry dates: %v vs %v", r1.Events[0].ExpiresAt, r2.Events[0].ExpiresAt)
	}
	f.clock.Advance(60 * 24 * time.Hour)
	if n, err := f.l.ExpireDue(context.Background()); err != nil || n != 1 || f.balance(t, "m1") != 25 {
		t.Fatalf("expire: %d %v balance %d", n, err, f.balance(t, "m1"))
	}
}

// TestRealRulesBonuses: with the production engine, the first-purchase
// bonus is credited at the second visit and reversed when that sale is
// fully refunded; the birthday bonus is credited once.
func TestRealRulesBonuses(t *testing.T) {
	rs, err := rules.Decode([]byte(`{"version":1,"earn":{"points_per_unit":"1"},"first_purchase_bonus":30,"birthday":{"points":15,"days_before":3,"days_after":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *ledger.Options) { o.Engine = nil; o.Rules = rs })
	ctx := context.Background()
	if _, err := f.l.Enrol(ctx, ledger.Member{ID: "m1", Birthday: "--03-03"}); err != nil { // t0 is March 2
		t.Fatal(err)
	}
	line := []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1000}}
	first := f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1", Lines: line})
	second := f.sale(t, ledger.SaleRequest{ID: "s2", MemberID: "m1", Lines: line})
	if first.Earned != 10+15 || second.Earned != 10+30 {
		t.Fatalf("first %d (10 + birthday 15), second %d (10 + first-purchase 30)", first.Earned, second.Earned)
	}
	r, err := f.l.Refund(ctx, ledger.RefundRequest{ID: "r2", SaleID: "s2"})
	if err != nil || r.Earned != -40 || f.balance(t, "m1") != 25 {
		t.Fatalf("refund of the bonus sale: %+v %v balance %d", r, err, f.balance(t, "m1"))
	}
}
