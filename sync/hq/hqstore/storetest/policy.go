package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

func newTestPolicy(t *testing.T, clk *ledgertest.Clock) *policy.Policy {
	t.Helper()
	rs, err := rules.Decode([]byte(`{"version": 1, "earn": {"points_per_unit": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := policy.New(policy.Limits{AdjustPerEvent: 1000, AdjustPerDay: 1500}, clk)
	if err := p.AddRuleSet(rs); err != nil {
		t.Fatal(err)
	}
	return p
}

func pts(reg string, seq uint64, kind ledger.EventKind, member string, n ledger.Points, sale string) hqstore.Event {
	return Ev(reg, seq, ledger.OutPoints, ledger.PointEvent{Register: reg, Seq: seq, Kind: kind, MemberID: member, Points: n, SaleID: sale})
}

func sale(reg string, seq uint64, id, member string, price ledger.Money, version int) hqstore.Event {
	return Ev(reg, seq, ledger.OutSale, ledger.Sale{ID: id, Register: reg, Seq: seq, MemberID: member, RuleVersion: version,
		Lines: []ledger.Line{{No: 1, SKU: "x", Quantity: 1, UnitPrice: price}}, Total: price})
}

// TestPolicyHolds: with a policy set, the store holds what it refuses in
// the stream (the watermark passes it, nothing stalls), changes no
// balance, alias or profile for it, lists it for review with its reason,
// counts it on the register and marks the member's Included so the
// register's overlay drops the held points; an event that arrived ahead
// of a gap is checked when it is applied.
func testPolicyHolds(t *testing.T, open Opener) {
	clk := ledgertest.NewClock(t0, true)
	s := open(t, hqstore.Options{})
	s.SetPolicy(newTestPolicy(t, clk))
	member := func(reg string, seq uint64, id, alias string) hqstore.Event {
		return Ev(reg, seq, ledger.OutMember, ledger.Member{ID: id, Name: "N " + id, Aliases: []string{alias}})
	}
	res := apply(t, s,
		member("r1", 1, "m1", "C1"),
		member("r1", 2, "m2", "C2"),
		sale("r1", 3, "s1", "m1", 10000, 1), // 100.00 at 1/unit: 100 allowed
		pts("r1", 4, ledger.KindEarn, "m1", 100, "s1"),
		sale("r1", 5, "s2", "m2", 1000, 1),              // 10 allowed
		pts("r1", 6, ledger.KindEarn, "m2", 1000, "s2"), // the over-earn
		pts("r1", 7, ledger.KindAdjust, "m2", 1_000_000_000, ""),
		pts("r1", 8, ledger.KindAdjust, "m2", 900, ""),
		pts("r1", 9, ledger.KindAdjust, "m2", 900, ""), // 1800 > 1500 today
		member("r1", 10, "m2", "C1"),                   // the card move
		sale("r1", 11, "s3", "m1", 1000, 7),            // rules 7 unknown
		pts("r1", 12, ledger.KindEarn, "m1", 1, "s3"),
	)
	if w := res.Registers["r1"].Watermark; w != 12 {
		t.Fatalf("watermark %d, want 12: a held event must not stall the stream", w)
	}
	want := map[uint64]string{6: policy.CodeEarn, 7: policy.CodeAdjust, 9: policy.CodeAdjust, 10: policy.CodeAlias, 12: policy.CodeRules}
	if len(res.PolicyHolds) != len(want) {
		t.Fatalf("held %+v, want %v", res.PolicyHolds, want)
	}
	for _, h := range res.PolicyHolds {
		if want[h.Seq] != h.Code || h.Text == "" {
			t.Errorf("seq %d held as %q (%s), want %q", h.Seq, h.Code, h.Text, want[h.Seq])
		}
	}
	if rs := res.Registers["r1"]; rs.PolicyHeld != 5 || rs.PolicyNote == "" {
		t.Errorf("register state %+v", rs)
	}
	if b := balance(t, s, "m1"); b != 100 {
		t.Errorf("m1 balance %d, want 100", b)
	}
	if b := balance(t, s, "m2"); b != 900 {
		t.Errorf("m2 balance %d, want 900 (only the adjustment within the caps)", b)
	}
	if m, err := s.LookupAlias("C1"); err != nil || m.ID != "m1" {
		t.Errorf("C1 belongs to %q (%v), want m1", m.ID, err)
	}
	sum, err := s.Summary("m2")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Included["r1"] < 9 {
		t.Errorf("m2 Included[r1] = %d: the register would overlay the held points again", sum.Included["r1"])
	}
	rv, err := s.Review()
	if err != nil {
		t.Fatal(err)
	}
	if len(rv) != 5 {
		t.Fatalf("review %+v", rv)
	}
	for _, h := range rv {
		if h.Reason != hqstore.ReviewPolicy || want[h.Seq] != h.Code || h.Register != "r1" || h.Store != "s1" {
			t.Errorf("review entry %+v", h)
		}
	}

	// The next day the cap starts again; an adjustment that arrives
	// ahead of a gap is checked when the gap is filled, not before.
	clk.Set(t0.Add(24*time.Hour), true)
	res = apply(t, s, pts("r1", 14, ledger.KindAdjust, "m2", 1000, ""))
	if len(res.PolicyHolds) != 0 || res.Registers["r1"].Watermark != 12 {
		t.Fatalf("ahead of the gap: %+v", res)
	}
	res = apply(t, s, pts("r1", 13, ledger.KindAdjust, "m2", 1000, ""))
	if len(res.PolicyHolds) != 1 || res.PolicyHolds[0].Seq != 14 || res.Registers["r1"].Watermark != 14 {
		t.Fatalf("after the gap: %+v", res)
	}
	if b := balance(t, s, "m2"); b != 1900 {
		t.Errorf("m2 balance %d, want 1900", b)
	}
	// A duplicate of a held event is a duplicate, not a second hold.
	res = apply(t, s, pts("r1", 7, ledger.KindAdjust, "m2", 1_000_000_000, ""))
	if res.Duplicates != 1 || len(res.PolicyHolds) != 0 {
		t.Fatalf("resent held event: %+v", res)
	}
}

// TestNoPolicyNoChecks: without a policy the store applies what it is
// sent (a library user, the tests of other parts).
func testNoPolicyNoChecks(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, pts("r1", 1, ledger.KindAdjust, "m1", 1_000_000, ""))
	if b := balance(t, s, "m1"); b != 1_000_000 {
		t.Fatalf("balance %d", b)
	}
}

// TestResolvePolicy: approving a held event applies it (an approved card
// move takes the card from its owner); dismissing one
// leaves it unapplied for good; either way it leaves the review list,
// the register's count goes down, and the store stays consistent.
func testResolvePolicy(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	s.SetPolicy(newTestPolicy(t, ledgertest.NewClock(t0, true)))
	apply(t, s,
		Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Aliases: []string{"C1"}}),
		Ev("r1", 2, ledger.OutMember, ledger.Member{ID: "m2", Aliases: []string{"C2"}}),
		pts("r1", 3, ledger.KindAdjust, "m1", 5000, ""),
		Ev("r1", 4, ledger.OutMember, ledger.Member{ID: "m2", Aliases: []string{"C1"}}),
		pts("r1", 5, ledger.KindAdjust, "m1", 1_000_000_000, ""),
	)
	if _, err := s.ResolvePolicy("r1", 2, true); !errors.Is(err, hqstore.ErrNotHeld) {
		t.Fatalf("approve an applied event: %v", err)
	}
	members, err := s.ResolvePolicy("r1", 3, true)
	if err != nil || len(members) != 1 || members[0] != "m1" {
		t.Fatalf("approve: %v %v", members, err)
	}
	if b := balance(t, s, "m1"); b != 5000 {
		t.Fatalf("balance after approval %d", b)
	}
	if _, err := s.ResolvePolicy("r1", 5, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolvePolicy("r1", 5, true); !errors.Is(err, hqstore.ErrNotHeld) {
		t.Fatalf("approve after dismiss: %v", err)
	}
	if _, err := s.ResolvePolicy("r1", 4, true); err != nil { // the card goes to m2 by a person's decision
		t.Fatal(err)
	}
	if m, err := s.LookupAlias("C1"); err != nil || m.ID != "m2" || !slices.Contains(m.Aliases, "C1") {
		t.Fatalf("approved card move: C1 -> %q %v (%v), want m2", m.ID, m.Aliases, err)
	}
	if sum, err := s.Summary("m1"); err != nil || slices.Contains(sum.Member.Aliases, "C1") {
		t.Fatalf("m1 keeps the moved card in its summary: %v %v", sum.Member.Aliases, err)
	}
	rv, err := s.Review()
	if err != nil || len(rv) != 0 {
		t.Fatalf("review after decisions: %+v %v", rv, err)
	}
	regs, err := s.Registers()
	if err != nil || regs[0].PolicyHeld != 0 || regs[0].PolicyNote != "" {
		t.Fatalf("register after decisions: %+v %v", regs, err)
	}
	if b := balance(t, s, "m1"); b != 5000 {
		t.Fatalf("balance after dismissal %d", b)
	}
}

// testPolicyReversals: a reversal that gives points back must undo an
// applied redemption of the same member at the same register, and all
// reversals of one redemption give back at most what it took; one that
// takes points is applied unchecked. A register's credentials cannot mint
// points by "refunding" what was never redeemed.
func testPolicyReversals(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	s.SetPolicy(newTestPolicy(t, ledgertest.NewClock(t0, true)))
	rev := func(reg string, seq uint64, member string, n ledger.Points, reverses string) hqstore.Event {
		return Ev(reg, seq, ledger.OutPoints, ledger.PointEvent{Register: reg, Seq: seq, Kind: ledger.KindReverse,
			MemberID: member, Points: n, SaleID: "s1", Reverses: reverses, Reason: "refund f1"})
	}
	res := apply(t, s,
		pts("r1", 1, ledger.KindAdjust, "m1", 500, ""),
		pts("r1", 2, ledger.KindAdjust, "m2", 500, ""),
		pts("r1", 3, ledger.KindRedeem, "m1", -300, ""),
		rev("r1", 4, "m1", 200, "r1-3"),                  // gives back part of the redemption
		rev("r1", 5, "m1", 200, "r1-3"),                  // 400 > the 300 it took
		rev("r1", 6, "m1", 50, "r1-1"),                   // an adjustment is no redemption
		rev("r1", 7, "m2", 100, "r1-3"),                  // another member's redemption
		rev("r1", 8, "m1", 10, "r2-3"),                   // another register's event
		rev("r1", 9, "m1", 10, "r1-99"),                  // no such event
		rev("r1", 10, "m1", 10, "nonsense"),              // no event id at all
		rev("r1", 11, "m1", 100, "r1-3"),                 // the rest of the 300
		rev("r1", 12, "m1", -100, "r1-1"),                // taking points back: not checked
		pts("r1", 13, ledger.KindRedeem, "m1", 5000, ""), // a positive "redemption": held by sign
		rev("r1", 14, "m1", 5000, "r1-13"),               // undoing what was never taken
	)
	want := map[uint64]string{5: policy.CodeReverse, 6: policy.CodeReverse, 7: policy.CodeReverse, 8: policy.CodeReverse,
		9: policy.CodeReverse, 10: policy.CodeReverse, 13: policy.CodeSign, 14: policy.CodeReverse}
	if len(res.PolicyHolds) != len(want) {
		t.Fatalf("held %+v, want seqs %v", res.PolicyHolds, want)
	}
	for _, h := range res.PolicyHolds {
		if want[h.Seq] != h.Code || h.Text == "" {
			t.Errorf("seq %d held as %q (%s), want %q", h.Seq, h.Code, h.Text, want[h.Seq])
		}
	}
	if b := balance(t, s, "m1"); b != 500-300+200+100-100 {
		t.Errorf("m1 balance %d, want %d", b, 500-300+200+100-100)
	}
	if b := balance(t, s, "m2"); b != 500 {
		t.Errorf("m2 balance %d, want 500", b)
	}
	// The count of what was given back survives the batch: one more
	// point is over.
	res = apply(t, s, rev("r1", 15, "m1", 1, "r1-3"))
	if len(res.PolicyHolds) != 1 || res.PolicyHolds[0].Code != policy.CodeReverse {
		t.Fatalf("a reversal beyond the redemption in a later batch: %+v", res.PolicyHolds)
	}
}

// testPolicyProfiles: a register rewrites a member's profile, or records
// consent given, only for a member that enrolled or bought in its store:
// a register elsewhere in the chain is held for review, changing nothing;
// a consent withdrawal always applies; a member the register's store
// has seen (in an earlier batch or earlier in the same one) is not held.
func testPolicyProfiles(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	s.SetPolicy(newTestPolicy(t, ledgertest.NewClock(t0, true)))
	consent := func(reg string, seq uint64, member string, given bool) hqstore.Event {
		return inStore("s2", Ev(reg, seq, ledger.OutConsent, map[string]any{"member_id": member,
			"consent": ledger.Consent{Given: given, Channel: "in-store", At: t0, ClockTrusted: true}}))
	}
	apply(t, s,
		Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"C1"}, Contact: ledger.Contact{Phone: "+15550100"}}),
		sale("r1", 2, "s1", "m1", 1000, 1),
	)
	res := apply(t, s,
		inStore("s2", Ev("r2", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Mallory", Contact: ledger.Contact{Email: "m@evil.example"}})),
		consent("r2", 2, "m1", true),
		inStore("s2", Ev("r2", 3, ledger.OutMember, ledger.Member{ID: "m2", Name: "Bo", Aliases: []string{"C2"}})), // enrolled here
		consent("r2", 4, "m1", false), // a withdrawal is honoured anywhere
	)
	if len(res.PolicyHolds) != 2 || res.PolicyHolds[0].Seq != 1 || res.PolicyHolds[1].Seq != 2 ||
		res.PolicyHolds[0].Code != policy.CodeProfile || res.PolicyHolds[1].Code != policy.CodeProfile {
		t.Fatalf("held %+v, want r2's seq 1 and 2 as %q", res.PolicyHolds, policy.CodeProfile)
	}
	sum, err := s.Summary("m1")
	if err != nil {
		t.Fatal(err)
	}
	if m := sum.Member; m.Name != "Ann" || m.Contact.Email != "" || m.Contact.Phone != "+15550100" || m.Consent.Given {
		t.Fatalf("m1's profile changed from a foreign store: %+v", m)
	}
	// Once m1 buys in s2, s2's registers may change the profile, in the
	// same batch as the purchase and later.
	res = apply(t, s,
		inStore("s2", sale("r2", 5, "s2-1", "m1", 500, 1)),
		inStore("s2", Ev("r2", 6, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann B", Contact: ledger.Contact{Phone: "+15550199"}})),
	)
	res2 := apply(t, s, consent("r2", 7, "m1", true))
	if len(res.PolicyHolds)+len(res2.PolicyHolds) != 0 {
		t.Fatalf("held after m1 shopped in s2: %+v %+v", res.PolicyHolds, res2.PolicyHolds)
	}
	if sum, err = s.Summary("m1"); err != nil || sum.Member.Name != "Ann B" || !sum.Member.Consent.Given {
		t.Fatalf("m1 after shopping in s2: %+v %v", sum.Member, err)
	}
}

// testLookupIsNotShopping: a card lookup is answered only for an alias
// (a card or phone presented at a till), never for a bare member id; the
// store whose register asked then receives the member's summaries and
// erase documents, but it is not a store where the member shops: its
// registers' rewrite of the member's profile stays held by the policy
// until the member enrols or buys there.
func testLookupIsNotShopping(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	s.SetPolicy(newTestPolicy(t, ledgertest.NewClock(t0, true)))
	apply(t, s,
		Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"C1"}, Contact: ledger.Contact{Phone: "+15550100"}}),
		sale("r1", 2, "s1", "m1", 1000, 1),
	)
	take(t, s, 12)
	if sum, _, err := s.LookupSummary("m1"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Errorf("a lookup by member id (no card presented) found %+v (%v), want ErrUnknownMember", sum.Member, err)
	}
	if sum, _, err := s.LookupSummary("C1"); err != nil || sum.Member.ID != "m1" {
		t.Fatalf("lookup of card C1: %+v %v", sum.Member, err)
	}
	// What head office does once it answered s2's register about m1.
	if err := s.LookedUp("m1", "s2"); err != nil {
		t.Fatal(err)
	}
	if shops, err := s.ShopsOf("m1", 12); err != nil || strings.Join(shops, ",") != "s1,s2" {
		t.Fatalf("m1's summaries and erasures go to %v (%v), want s1,s2", shops, err)
	}
	res := apply(t, s,
		inStore("s2", Ev("r2", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Mallory", Aliases: []string{"C1"}, Contact: ledger.Contact{Email: "m@evil.example"}})),
	)
	if len(res.PolicyHolds) != 1 || res.PolicyHolds[0].Code != policy.CodeProfile {
		t.Fatalf("s2's rewrite of m1 after a mere lookup: held %+v, want it held as %q", res.PolicyHolds, policy.CodeProfile)
	}
	if sum, err := s.Summary("m1"); err != nil || sum.Member.Name != "Ann" || sum.Member.Contact.Email != "" {
		t.Fatalf("m1's profile after s2's held rewrite: %+v %v", sum.Member, err)
	}
	// m1 earns at s1: the summary reaches s2 as well.
	apply(t, s, sale("r1", 3, "s1-2", "m1", 500, 1))
	if got := take(t, s, 12); strings.Join(got["s2"], ",") != "m1" || strings.Join(got["s1"], ",") != "m1" {
		t.Fatalf("summaries after the lookup: %v, want m1 at s1 and s2", got)
	}
	// Once m1 buys in s2 (a sale and its points), s2's registers may
	// change the profile.
	res = apply(t, s,
		inStore("s2", sale("r2", 2, "s2-1", "m1", 500, 1)),
		inStore("s2", pts("r2", 3, ledger.KindEarn, "m1", 5, "s2-1")),
		inStore("s2", Ev("r2", 4, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann B", Aliases: []string{"C1"}})),
	)
	if len(res.PolicyHolds) != 0 {
		t.Fatalf("held after m1 bought in s2: %+v", res.PolicyHolds)
	}
	if sum, err := s.Summary("m1"); err != nil || sum.Member.Name != "Ann B" {
		t.Fatalf("m1 after buying in s2: %+v %v", sum.Member, err)
	}
}
