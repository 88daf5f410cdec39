package policy_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

func ruleSet(t *testing.T, version int, perUnit string) *rules.RuleSet {
	t.Helper()
	rs, err := rules.Decode([]byte(`{"version": ` + itoa(version) + `, "earn": {"points_per_unit": ` + perUnit + `},
		"tiers": [{"name": "base"}, {"name": "gold", "min_spend": 100000, "multiplier": 2}],
		"first_purchase_bonus": 50}`))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestAllowance(t *testing.T) {
	p := policy.New(policy.Limits{}, nil)
	if err := p.AddRuleSet(ruleSet(t, 3, "1")); err != nil {
		t.Fatal(err)
	}
	sale := ledger.Sale{RuleVersion: 3, Lines: []ledger.Line{{No: 1, SKU: "a", Quantity: 2, UnitPrice: 1000}, {No: 2, SKU: "b", Quantity: 1, UnitPrice: 500, Discount: 100}}}
	// (2000 + 400) minor units = 24 units at 1/unit, gold x2 = 48, + 50 first-purchase bonus.
	if got, known := p.Allowance(sale); !known || got != 98 {
		t.Fatalf("Allowance = %d, %v; want 98, true", got, known)
	}
	// A second rule set numbered 3 (another scope), more generous: the larger wins.
	if err := p.AddRuleSet(ruleSet(t, 3, "2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Allowance(sale); got != 146 {
		t.Fatalf("Allowance with two rule sets 3 = %d, want 146", got)
	}
	sale.RuleVersion = 4
	if _, known := p.Allowance(sale); known {
		t.Fatal("unknown version 4 known")
	}
	if v := p.Versions(); len(v) != 1 || v[0] != 3 {
		t.Fatalf("Versions = %v", v)
	}
	bad := ruleSet(t, 5, "1")
	bad.Version = 0
	if err := p.AddRuleSet(bad); err == nil {
		t.Fatal("invalid rule set accepted")
	}
}

func TestDay(t *testing.T) {
	clk := ledgertest.NewClock(time.Date(2026, 12, 1, 23, 30, 0, 0, time.UTC), true)
	if d := policy.New(policy.Limits{}, clk).Day(); d != "2026-12-01" {
		t.Fatalf("UTC day %s", d)
	}
	sofia, err := time.LoadLocation("Europe/Sofia")
	if err != nil {
		t.Skip(err)
	}
	if d := policy.New(policy.Limits{Location: sofia}, clk).Day(); d != "2026-12-02" {
		t.Fatalf("Sofia day %s", d)
	}
}

// TestCheck: every check, the attacks of issue 10 among them.
var redeemed = policy.Reversed{Found: true, Kind: ledger.KindRedeem, MemberID: "m1", Points: -150}

func withBack(r policy.Reversed, n int64) policy.Reversed { r.GivenBack = n; return r }
func held(r policy.Reversed) policy.Reversed              { r.Held = true; return r }

func TestCheck(t *testing.T) {
	p := policy.New(policy.Limits{AdjustPerEvent: 1000, AdjustPerDay: 2500}, nil)
	pt := func(kind ledger.EventKind, pts ledger.Points, sale string) *ledger.PointEvent {
		return &ledger.PointEvent{Kind: kind, Points: pts, MemberID: "m1", SaleID: sale}
	}
	sale := policy.Sale{Seen: true, Known: true, RuleVersion: 3, Allowed: 100, Earned: 40}
	for _, tc := range []struct {
		name string
		ev   policy.Event
		code string
	}{
		{"earn within", policy.Event{Point: pt(ledger.KindEarn, 60, "s1"), Sale: sale}, ""},
		{"earn over (the over-earn)", policy.Event{Point: pt(ledger.KindEarn, 61, "s1"), Sale: sale}, policy.CodeEarn},
		{"bonus over", policy.Event{Point: pt(ledger.KindBonus, 1_000_000, "s1"), Sale: sale}, policy.CodeEarn},
		{"earn negative", policy.Event{Point: pt(ledger.KindEarn, -1, "s1"), Sale: sale}, policy.CodeSign},
		{"earn without sale id", policy.Event{Point: pt(ledger.KindEarn, 1, ""), Sale: sale}, policy.CodeNoSale},
		{"earn for an unseen sale", policy.Event{Point: pt(ledger.KindEarn, 1, "s9")}, policy.CodeNoSale},
		{"earn under unknown rules", policy.Event{Point: pt(ledger.KindEarn, 1, "s1"), Sale: policy.Sale{Seen: true, RuleVersion: 9}}, policy.CodeRules},
		{"redeem", policy.Event{Point: pt(ledger.KindRedeem, -500, "s1")}, ""},
		{"redeem positive", policy.Event{Point: pt(ledger.KindRedeem, 500, "s1")}, policy.CodeSign},
		{"expire positive", policy.Event{Point: pt(ledger.KindExpire, 1, "")}, policy.CodeSign},
		{"expire", policy.Event{Point: pt(ledger.KindExpire, -10, "")}, ""},
		{"reverse", policy.Event{Point: pt(ledger.KindReverse, -10, "s1")}, ""},
		{"reverse gives back a redemption", policy.Event{Point: pt(ledger.KindReverse, 100, "s1"), Reversed: redeemed}, ""},
		{"reverse gives back the rest", policy.Event{Point: pt(ledger.KindReverse, 50, "s1"), Reversed: withBack(redeemed, 100)}, ""},
		{"reverse gives back more than taken", policy.Event{Point: pt(ledger.KindReverse, 51, "s1"), Reversed: withBack(redeemed, 100)}, policy.CodeReverse},
		{"reverse of nothing", policy.Event{Point: pt(ledger.KindReverse, 1, "s1")}, policy.CodeReverse},
		{"reverse of a held redemption", policy.Event{Point: pt(ledger.KindReverse, 1, "s1"), Reversed: held(redeemed)}, policy.CodeReverse},
		{"reverse of an earn", policy.Event{Point: pt(ledger.KindReverse, 1, "s1"), Reversed: policy.Reversed{Found: true, Kind: ledger.KindEarn, MemberID: "m1", Points: 50}}, policy.CodeReverse},
		{"reverse of another member's redemption", policy.Event{Point: pt(ledger.KindReverse, 1, "s1"), Reversed: policy.Reversed{Found: true, Kind: ledger.KindRedeem, MemberID: "m2", Points: -150}}, policy.CodeReverse},
		{"member from a store it never shopped at", policy.Event{Member: &ledger.Member{ID: "m1", Name: "X"}, ForeignStore: "s2"}, policy.CodeProfile},
		{"adjust within", policy.Event{Point: pt(ledger.KindAdjust, 1000, ""), AdjustedToday: 1500}, ""},
		{"adjust down within", policy.Event{Point: pt(ledger.KindAdjust, -1000, ""), AdjustedToday: 1500}, ""},
		{"adjust +1,000,000,000", policy.Event{Point: pt(ledger.KindAdjust, 1_000_000_000, "")}, policy.CodeAdjust},
		{"adjust over per event", policy.Event{Point: pt(ledger.KindAdjust, 1001, "")}, policy.CodeAdjust},
		{"adjust negative over per event", policy.Event{Point: pt(ledger.KindAdjust, -1001, "")}, policy.CodeAdjust},
		{"adjust over per day", policy.Event{Point: pt(ledger.KindAdjust, 1000, ""), AdjustedToday: 1501}, policy.CodeAdjust},
		{"unknown kind adding", policy.Event{Point: pt("gift", 5, "")}, policy.CodeSign},
		{"unknown kind taking", policy.Event{Point: pt("gift", -5, "")}, ""},
		{"member, new alias", policy.Event{Member: &ledger.Member{ID: "m1", Aliases: []string{"C1", "C2"}}, AliasOwners: map[string]string{"C1": "m1"}}, ""},
		{"member, alias moved (the card move)", policy.Event{Member: &ledger.Member{ID: "m2", Aliases: []string{"C1"}}, AliasOwners: map[string]string{"C1": "m1"}}, policy.CodeAlias},
		{"neither", policy.Event{}, ""},
	} {
		v := p.Check(tc.ev)
		if v.Code != tc.code || v.Hold() != (tc.code != "") {
			t.Errorf("%s: verdict %+v, want code %q", tc.name, v, tc.code)
		}
		if v.Hold() && v.Text == "" {
			t.Errorf("%s: held without a text", tc.name)
		}
	}
}

func TestNoAdjustments(t *testing.T) {
	p := policy.New(policy.Limits{AdjustPerEvent: -1}, nil)
	if v := p.Check(policy.Event{Point: &ledger.PointEvent{Kind: ledger.KindAdjust, Points: 1}}); v.Code != policy.CodeAdjust {
		t.Fatalf("adjustment with AdjustPerEvent -1: %+v", v)
	}
	if l := policy.New(policy.Limits{}, nil).Limits(); l.AdjustPerEvent != policy.DefaultAdjustPerEvent || l.AdjustPerDay != policy.DefaultAdjustPerDay {
		t.Fatalf("defaults %+v", l)
	}
}

// TestBirthdayYear: a birthday bonus counts for the birthday nearest its
// time, so a window across the new year counts once for its birthday.
func TestBirthdayYear(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.Add(12 * time.Hour)
	}
	for _, c := range []struct {
		birthday, at string
		want         int
	}{
		{"1990-11-27", "2026-11-27", 2026},
		{"--12-30", "2027-01-02", 2026},
		{"--01-02", "2026-12-30", 2027},
		{"--02-29", "2027-02-28", 2027},
		{"--06-15", "2026-09-01", 2026},
		{"", "2026-03-01", 2026},
		{"garbage", "2026-03-01", 2026},
	} {
		if got := policy.BirthdayYear(c.birthday, at(c.at)); got != c.want {
			t.Errorf("BirthdayYear(%q, %s) = %d, want %d", c.birthday, c.at, got, c.want)
		}
	}
}

// TestBonusOnce: a second first-purchase bonus, and a birthday bonus
// beyond the allowance, are held as bonus; other bonuses pass.
func TestBonusOnce(t *testing.T) {
	sale := policy.Sale{Seen: true, Known: true, RuleVersion: 1, Allowed: 1000}
	bonus := func(reason string) *ledger.PointEvent {
		return &ledger.PointEvent{Kind: ledger.KindBonus, MemberID: "m1", Points: 50, SaleID: "s1", Reason: reason}
	}
	for _, c := range []struct {
		name  string
		limit int
		ev    policy.Event
		want  string
	}{
		{"first", 0, policy.Event{Point: bonus(rules.BonusFirstPurchase), Sale: sale}, ""},
		{"first again", 0, policy.Event{Point: bonus(rules.BonusFirstPurchase), Sale: sale, Bonus: policy.Bonus{FirstPurchase: true}}, policy.CodeBonus},
		{"birthday", 0, policy.Event{Point: bonus(rules.BonusBirthday), Sale: sale, Bonus: policy.Bonus{BirthdayYear: 2026}}, ""},
		{"birthday again", 0, policy.Event{Point: bonus(rules.BonusBirthday), Sale: sale, Bonus: policy.Bonus{BirthdayYear: 2026, Birthdays: 1}}, policy.CodeBonus},
		{"birthday twice allowed", 2, policy.Event{Point: bonus(rules.BonusBirthday), Sale: sale, Bonus: policy.Bonus{BirthdayYear: 2026, Birthdays: 1}}, ""},
		{"birthday none allowed", -1, policy.Event{Point: bonus(rules.BonusBirthday), Sale: sale}, policy.CodeBonus},
		{"campaign", 0, policy.Event{Point: bonus(rules.BonusCampaign + "x"), Sale: sale, Bonus: policy.Bonus{FirstPurchase: true}}, ""},
	} {
		p := policy.New(policy.Limits{BirthdayPerYear: c.limit}, nil)
		if v := p.Check(c.ev); v.Code != c.want {
			t.Errorf("%s: verdict %+v, want code %q", c.name, v, c.want)
		}
	}
}
