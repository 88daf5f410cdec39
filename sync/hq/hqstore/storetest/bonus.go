package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// bonusEv is a bonus point event of kind reason for sale, stamped at.
func bonusEv(reg, store string, seq uint64, member, reason string, n ledger.Points, sale string, at time.Time) hqstore.Event {
	e := Ev(reg, seq, ledger.OutPoints, ledger.PointEvent{Register: reg, Seq: seq, Kind: ledger.KindBonus, MemberID: member,
		Points: n, SaleID: sale, Reason: reason, WallTime: at, ClockTrusted: true})
	e.Store = store
	return e
}

// testBonusOncePerMember: the first-purchase bonus is credited once per
// member and the birthday bonus once per birthday (year), chain-wide,
// whichever registers and stores pay them: a second one, from a
// replacement register or another store, is held for review (code
// bonus) and changes no balance; the member's summary says what was
// credited (FirstBonus, BirthdayYear) so registers pay no second one.
// A birthday bonus for the next year's birthday passes, and one early in
// January counts for the December birthday before.
func testBonusOncePerMember(t *testing.T, open Opener) {
	clk := ledgertest.NewClock(t0, true)
	s := open(t, hqstore.Options{Clock: clk})
	rs, err := rules.Decode([]byte(`{"version": 1, "earn": {"points_per_unit": 1}, "first_purchase_bonus": 50, "birthday": {"points": 100, "days_after": 7}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := policy.New(policy.Limits{}, clk)
	if err := p.AddRuleSet(rs); err != nil {
		t.Fatal(err)
	}
	s.SetPolicy(p)
	m1 := ledger.Member{ID: "m1", Name: "N", Aliases: []string{"C1"}, Birthday: "1990-11-27"}
	m2 := ledger.Member{ID: "m2", Name: "D", Aliases: []string{"C2"}, Birthday: "--12-30"}
	apply(t, s, Ev("r1", 1, ledger.OutMember, m1), Ev("r1", 2, ledger.OutMember, m2),
		sale("r1", 3, "s1", "m1", 100, 1))
	sum, err := s.Summary("m1")
	if err != nil {
		t.Fatal(err)
	}
	if sum.FirstBonus != hqstore.FirstBonusPending || sum.BirthdayYear != 0 {
		t.Errorf("after the first purchase: first bonus %q, birthday year %d; want pending, 0", sum.FirstBonus, sum.BirthdayYear)
	}
	res := apply(t, s,
		sale("r1", 4, "s2", "m1", 100, 1),
		bonusEv("r1", "s1", 5, "m1", rules.BonusFirstPurchase, 50, "s2", t0),
		bonusEv("r1", "s1", 6, "m1", rules.BonusBirthday, 100, "s2", t0),
		// The replacement of r1, and r2 in store s2, pay again.
		sale("r1b", 1, "s3", "m1", 100, 1),
		bonusEv("r1b", "s1", 2, "m1", rules.BonusFirstPurchase, 50, "s3", t0.Add(time.Hour)),
		inStore("s2", sale("r2", 1, "s4", "m1", 100, 1)),
		bonusEv("r2", "s2", 2, "m1", rules.BonusFirstPurchase, 50, "s4", t0.Add(2*time.Hour)),
		bonusEv("r2", "s2", 3, "m1", rules.BonusBirthday, 100, "s4", t0.Add(2*time.Hour)),
	)
	want := map[string]bool{"r1b/2": true, "r2/2": true, "r2/3": true}
	if len(res.PolicyHolds) != len(want) {
		t.Fatalf("held %+v, want r1b/2, r2/2 and r2/3", res.PolicyHolds)
	}
	for _, h := range res.PolicyHolds {
		if !want[fmt.Sprintf("%s/%d", h.Register, h.Seq)] || h.Code != policy.CodeBonus || h.Text == "" {
			t.Errorf("held %s/%d as %q (%s), want a second bonus held as %q", h.Register, h.Seq, h.Code, h.Text, policy.CodeBonus)
		}
	}
	// No earn events were sent: only r1's two bonuses count.
	if b := balance(t, s, "m1"); b != 150 {
		t.Errorf("m1 balance %d, want 150 (one first-purchase bonus of 50, one birthday bonus of 100)", b)
	}
	sum, err = s.Summary("m1")
	if err != nil {
		t.Fatal(err)
	}
	if sum.FirstBonus != hqstore.FirstBonusPaid || sum.BirthdayYear != 2026 {
		t.Errorf("summary: first bonus %q, birthday year %d; want paid, 2026", sum.FirstBonus, sum.BirthdayYear)
	}

	// Next year's birthday earns again; m2's birthday on 30 December
	// credited on 2 January counts for the December before, so a second
	// one on 31 December that year is a second bonus for it.
	next := time.Date(2027, 11, 28, 12, 0, 0, 0, time.UTC)
	dec := time.Date(2027, 1, 2, 12, 0, 0, 0, time.UTC)
	res = apply(t, s,
		sale("r1", 7, "s5", "m1", 100, 1),
		bonusEv("r1", "s1", 8, "m1", rules.BonusBirthday, 100, "s5", next),
		sale("r1", 9, "s6", "m2", 100, 1),
		bonusEv("r1", "s1", 10, "m2", rules.BonusBirthday, 100, "s6", dec),
		inStore("s2", sale("r2", 4, "s7", "m2", 100, 1)),
		bonusEv("r2", "s2", 5, "m2", rules.BonusBirthday, 100, "s7", time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC)),
	)
	if len(res.PolicyHolds) != 1 || res.PolicyHolds[0].Register != "r2" || res.PolicyHolds[0].Seq != 5 || res.PolicyHolds[0].Code != policy.CodeBonus {
		t.Fatalf("held %+v, want only r2/5 (m2's second bonus for the 2026 birthday)", res.PolicyHolds)
	}
	if sum, err = s.Summary("m1"); err != nil || sum.BirthdayYear != 2027 {
		t.Errorf("m1 birthday year %d (%v), want 2027", sum.BirthdayYear, err)
	}
	if sum, err = s.Summary("m2"); err != nil || sum.BirthdayYear != 2026 || sum.FirstBonus != hqstore.FirstBonusPending {
		t.Errorf("m2 birthday year %d, first bonus %q (%v), want 2026, pending", sum.BirthdayYear, sum.FirstBonus, err)
	}

	// A person approving the held first-purchase bonus pays it: it then
	// counts as credited (it is still the one of m1).
	if _, err := s.ResolvePolicy("r1b", 2, true); err != nil {
		t.Fatal(err)
	}
	if b := balance(t, s, "m1"); b != 300 {
		t.Errorf("m1 balance %d after the approval, want 300", b)
	}
}

// testBonusFactsWithoutPolicy: with no policy, head office still keeps
// what it credited, so the summaries carry it.
func testBonusFactsWithoutPolicy(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Birthday: "--11-27"}),
		sale("r1", 2, "s1", "m1", 100, 1), sale("r1", 3, "s2", "m1", 100, 1),
		bonusEv("r1", "s1", 4, "m1", rules.BonusFirstPurchase, 50, "s2", t0),
		bonusEv("r1", "s1", 5, "m1", rules.BonusBirthday, 100, "s2", t0))
	sum, err := s.Summary("m1")
	if err != nil {
		t.Fatal(err)
	}
	if sum.FirstBonus != hqstore.FirstBonusPaid || sum.BirthdayYear != 2026 {
		t.Errorf("summary: first bonus %q, birthday year %d; want paid, 2026", sum.FirstBonus, sum.BirthdayYear)
	}
}
