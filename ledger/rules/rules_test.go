package rules_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // TestExpiryFor needs Asia/Jerusalem on any machine

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// dec parses a decimal literal for a test table.
func dec(t testing.TB, s string) *rules.Dec {
	t.Helper()
	d, err := rules.ParseDec(s)
	if err != nil {
		t.Fatalf("ParseDec(%q): %v", s, err)
	}
	return &d
}

// basic is one point per currency unit (100 minor units), rounded down per
// line, in UTC.
func basic(t testing.TB) *rules.RuleSet {
	return &rules.RuleSet{Version: 1, Earn: rules.Rate{PointsPerUnit: dec(t, "1")}}
}

func mustEval(t *testing.T, rs *rules.RuleSet, in rules.SaleInput) rules.Outcome {
	t.Helper()
	if in.At.IsZero() {
		in.At = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	}
	out, err := rs.Evaluate(in)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return out
}

func linePoints(o rules.Outcome) []int64 {
	var p []int64
	for _, l := range o.Lines {
		p = append(p, l.Points)
	}
	return p
}

func lines(amounts ...int64) []rules.LineInput {
	var ls []rules.LineInput
	for i, a := range amounts {
		ls = append(ls, rules.LineInput{No: i + 1, SKU: fmt.Sprint("sku", i+1), Amount: a})
	}
	return ls
}

func TestRounding(t *testing.T) {
	tests := []struct {
		name    string
		mode    rules.Rounding
		scope   rules.RoundScope
		amounts []int64
		want    []int64
	}{
		{"floor default", "", "", []int64{250, 399, 100, 0}, []int64{2, 3, 1, 0}},
		{"half-up up", rules.RoundHalfUp, rules.PerLine, []int64{250, 249, 350}, []int64{3, 2, 4}},
		{"half-even to even", rules.RoundHalfEven, rules.PerLine, []int64{250, 350, 251, 149}, []int64{2, 4, 3, 1}},
		{"per line floor loses fractions", rules.RoundFloor, rules.PerLine, []int64{150, 150}, []int64{1, 1}},
		{"per sale floor keeps the sum", rules.RoundFloor, rules.PerSale, []int64{150, 150}, []int64{2, 1}},
		{"per sale largest remainder first", rules.RoundFloor, rules.PerSale, []int64{110, 190, 100}, []int64{1, 2, 1}},
		{"per sale half-up", rules.RoundHalfUp, rules.PerSale, []int64{125, 125}, []int64{2, 1}},
		{"per sale half-even down", rules.RoundHalfEven, rules.PerSale, []int64{125, 125}, []int64{1, 1}},
		{"per line half-up both up", rules.RoundHalfUp, rules.PerLine, []int64{150, 150}, []int64{2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := basic(t)
			rs.Rounding, rs.RoundScope = tt.mode, tt.scope
			out := mustEval(t, rs, rules.SaleInput{Lines: lines(tt.amounts...)})
			if got := linePoints(out); !slices.Equal(got, tt.want) {
				t.Errorf("points = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRatesAndExclusions(t *testing.T) {
	rs := &rules.RuleSet{
		Version: 1, Unit: 100, PointValue: 1,
		Earn: rules.Rate{PointsPerUnit: dec(t, "1")},
		CategoryRates: []rules.CategoryRate{
			{Category: "tobacco", Rate: rules.Rate{Exclude: true}},
			{Category: "books", Rate: rules.Rate{PointsPerUnit: dec(t, "2")}},
			{Category: "wine", Rate: rules.Rate{PercentBack: dec(t, "5")}},
		},
		SKURates: []rules.SKURate{
			{SKU: "cigar-gift", Rate: rules.Rate{PointsPerUnit: dec(t, "0.5")}},
			{SKU: "book-promo", Rate: rules.Rate{Exclude: true}},
		},
	}
	tests := []struct {
		name string
		line rules.LineInput
		want int64
	}{
		{"default", rules.LineInput{SKU: "milk", Category: "dairy", Amount: 1000}, 10},
		{"no category uses default", rules.LineInput{SKU: "x", Amount: 1000}, 10},
		{"category rate", rules.LineInput{SKU: "novel", Category: "books", Amount: 1000}, 20},
		{"category excluded", rules.LineInput{SKU: "cig", Category: "tobacco", Amount: 1000}, 0},
		{"sku beats excluded category", rules.LineInput{SKU: "cigar-gift", Category: "tobacco", Amount: 1000}, 5},
		{"sku exclusion beats category rate", rules.LineInput{SKU: "book-promo", Category: "books", Amount: 1000}, 0},
		{"percent back 5% of 1000 minor at 1 per point", rules.LineInput{SKU: "red", Category: "wine", Amount: 1000}, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.line.No = 1
			out := mustEval(t, rs, rules.SaleInput{Lines: []rules.LineInput{tt.line}})
			if got := out.Lines[0].Points; got != tt.want {
				t.Errorf("points = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPointsPerUnitFractionAndUnit(t *testing.T) {
	// One point per ten currency units of 1000 minor units each (e.g. a
	// currency with three decimals).
	rs := &rules.RuleSet{Version: 1, Unit: 1000, Earn: rules.Rate{PointsPerUnit: dec(t, "0.1")}}
	out := mustEval(t, rs, rules.SaleInput{Lines: lines(99_999, 100_000, 250_000)})
	if got, want := linePoints(out), []int64{9, 10, 25}; !slices.Equal(got, want) {
		t.Errorf("points = %v, want %v", got, want)
	}
}

func campaignRules(t *testing.T, tz string) *rules.RuleSet {
	rs := basic(t)
	rs.TimeZone = tz
	rs.Campaigns = []rules.Campaign{
		{ID: "double-tuesday", Multiplier: dec(t, "2"), Weekdays: []string{"tue"}},
		{ID: "surprise", Multiplier: dec(t, "3"), From: "2026-11-27", To: "2026-11-27"},
	}
	return rs
}

func TestCampaigns(t *testing.T) {
	// 2026-12-01 is a Tuesday; Asia/Jerusalem is UTC+2 in winter.
	tests := []struct {
		name    string
		tz      string
		at      time.Time
		trusted bool
		want    int64
		camps   []string
	}{
		{"tuesday in UTC", "UTC", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), true, 20, []string{"double-tuesday"}},
		{"monday in UTC", "UTC", time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC), true, 10, nil},
		{"same instant is tuesday in Jerusalem", "Asia/Jerusalem", time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC), true, 20, []string{"double-tuesday"}},
		{"tuesday ends at local midnight", "Asia/Jerusalem", time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC), true, 10, nil},
		{"untrusted clock: no campaign", "UTC", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), false, 10, nil},
		{"one-day surprise", "UTC", time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), true, 30, []string{"surprise"}},
		{"surprise over in Jerusalem", "Asia/Jerusalem", time.Date(2026, 11, 27, 22, 30, 0, 0, time.UTC), true, 10, nil},
		{"surprise already on in Jerusalem", "Asia/Jerusalem", time.Date(2026, 11, 26, 22, 30, 0, 0, time.UTC), true, 30, []string{"surprise"}},
		{"day before surprise", "UTC", time.Date(2026, 11, 26, 23, 59, 59, 0, time.UTC), true, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := campaignRules(t, tt.tz)
			out := mustEval(t, rs, rules.SaleInput{Lines: lines(1000), At: tt.at, ClockTrusted: tt.trusted})
			if got := out.Lines[0].Points; got != tt.want {
				t.Errorf("points = %d, want %d", got, tt.want)
			}
			if !slices.Equal(out.Campaigns, tt.camps) {
				t.Errorf("campaigns = %v, want %v", out.Campaigns, tt.camps)
			}
		})
	}
}

func TestCampaignCategoriesAndBonus(t *testing.T) {
	rs := basic(t)
	rs.CategoryRates = []rules.CategoryRate{{Category: "tobacco", Rate: rules.Rate{Exclude: true}}}
	rs.Campaigns = []rules.Campaign{
		{ID: "coffee-week", Multiplier: dec(t, "2"), From: "2026-11-23", To: "2026-11-29", Categories: []string{"coffee"}},
		{ID: "coffee-bonus", BonusPoints: 25, From: "2026-11-23", To: "2026-11-29", Categories: []string{"coffee"}},
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	in := rules.SaleInput{
		Lines: []rules.LineInput{
			{No: 1, SKU: "beans", Category: "coffee", Amount: 1000},
			{No: 2, SKU: "milk", Category: "dairy", Amount: 1000},
		},
		Member: rules.MemberState{ID: "m1", Purchases: 3}, At: at, ClockTrusted: true,
	}
	out := mustEval(t, rs, in)
	if got, want := linePoints(out), []int64{20, 10}; !slices.Equal(got, want) {
		t.Errorf("points = %v, want %v", got, want)
	}
	if want := []rules.Bonus{{Kind: "campaign:coffee-bonus", Points: 25}}; !slices.Equal(out.Bonuses, want) {
		t.Errorf("bonuses = %v, want %v", out.Bonuses, want)
	}
	if out.Multiplier != rules.DecOne {
		t.Errorf("general multiplier = %s, want 1 (category campaigns excluded)", out.Multiplier)
	}
	// Without a coffee line neither the multiplier nor the bonus applies.
	in.Lines = in.Lines[1:]
	out = mustEval(t, rs, in)
	if len(out.Bonuses) != 0 || len(out.Campaigns) != 0 {
		t.Errorf("no coffee: bonuses %v campaigns %v, want none", out.Bonuses, out.Campaigns)
	}
	// Anonymous sale: no bonus.
	in.Lines = []rules.LineInput{{No: 1, SKU: "beans", Category: "coffee", Amount: 1000}}
	in.Member = rules.MemberState{}
	out = mustEval(t, rs, in)
	if len(out.Bonuses) != 0 || out.Lines[0].Points != 20 {
		t.Errorf("anonymous: %+v, want 20 points and no bonus", out)
	}
}

func TestStacking(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) // a Tuesday in December
	tests := []struct {
		name     string
		stacking rules.Stacking
		maxMult  string
		tierMult string
		want     int64
		wantMult string
	}{
		{"highest wins", rules.StackHighest, "", "", 30, "3"},
		{"default is highest", "", "", "", 30, "3"},
		{"multiply", rules.StackMultiply, "", "", 60, "6"},
		{"multiply capped", rules.StackMultiply, "5", "", 50, "5"},
		{"tier times highest", rules.StackHighest, "", "1.5", 45, "4.5"},
		{"tier times product capped at default 10", rules.StackMultiply, "", "2", 100, "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := basic(t)
			rs.Stacking = tt.stacking
			if tt.maxMult != "" {
				rs.MaxMultiplier = dec(t, tt.maxMult)
			}
			rs.Campaigns = []rules.Campaign{
				{ID: "tue", Multiplier: dec(t, "2"), Weekdays: []string{"tue"}},
				{ID: "december", Multiplier: dec(t, "3"), From: "2026-12-01", To: "2026-12-31"},
			}
			if tt.maxMult != "" {
				// keep campaign multipliers within the cap
				rs.Campaigns[1].Multiplier = dec(t, "3")
			}
			var member rules.MemberState
			if tt.tierMult != "" {
				rs.Tiers = []rules.Tier{{Name: "base", Multiplier: dec(t, tt.tierMult)}}
				member = rules.MemberState{ID: "m", Purchases: 5}
			}
			out := mustEval(t, rs, rules.SaleInput{Lines: lines(1000), At: at, ClockTrusted: true, Member: member})
			if got := out.Lines[0].Points; got != tt.want {
				t.Errorf("points = %d, want %d", got, tt.want)
			}
			if got := out.Multiplier.String(); got != tt.wantMult {
				t.Errorf("multiplier = %s, want %s", got, tt.wantMult)
			}
		})
	}
}

func tierRules(t *testing.T) *rules.RuleSet {
	rs := basic(t)
	rs.Tiers = []rules.Tier{
		{Name: "member"},
		{Name: "silver", MinSpend: 100_000, MinVisits: 12, Multiplier: dec(t, "1.25")},
		{Name: "gold", MinSpend: 500_000, MinVisits: 40, Multiplier: dec(t, "1.5")},
	}
	return rs
}

func TestTierFor(t *testing.T) {
	rs := tierRules(t)
	tests := []struct {
		name   string
		spend  int64
		visits int
		want   string
	}{
		{"nothing", 0, 0, "member"},
		{"negative counts as zero", -5, -1, "member"},
		{"just below silver", 99_999, 11, "member"},
		{"silver by spend", 100_000, 0, "silver"},
		{"silver by visits", 0, 12, "silver"},
		{"gold by spend", 500_000, 1, "gold"},
		{"gold by visits", 10, 40, "gold"},
		{"spend silver visits gold", 200_000, 45, "gold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rs.TierFor(tt.spend, tt.visits).Name; got != tt.want {
				t.Errorf("TierFor(%d, %d) = %q, want %q", tt.spend, tt.visits, got, tt.want)
			}
		})
	}
	if got := basic(t).TierFor(1e9, 1000); got.Name != "" {
		t.Errorf("no tiers: got %q, want none", got.Name)
	}
}

func TestTierAtSaleTime(t *testing.T) {
	rs := tierRules(t)
	tests := []struct {
		name     string
		member   rules.MemberState
		amount   int64
		wantTier string
		want     int64
	}{
		{"this sale lifts to silver", rules.MemberState{ID: "m", Tier: "member", Spend12m: 95_000, Visits12m: 3, Purchases: 9}, 10_000, "silver", 125},
		{"this visit is the 12th", rules.MemberState{ID: "m", Tier: "member", Spend12m: 1000, Visits12m: 11, Purchases: 30}, 1000, "silver", 12},
		{"drops from gold as old spend leaves the window", rules.MemberState{ID: "m", Tier: "gold", Spend12m: 150_000, Visits12m: 20, Purchases: 90}, 1000, "silver", 12},
		{"drops to base", rules.MemberState{ID: "m", Tier: "silver", Spend12m: 0, Visits12m: 0, Purchases: 90}, 1000, "member", 10},
		{"absurd visits do not wrap", rules.MemberState{ID: "m", Visits12m: int(^uint(0) >> 1), Purchases: 90}, 1000, "gold", 15},
		{"stays gold", rules.MemberState{ID: "m", Tier: "gold", Spend12m: 600_000, Visits12m: 50, Purchases: 90}, 1000, "gold", 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := mustEval(t, rs, rules.SaleInput{Lines: lines(tt.amount), Member: tt.member})
			if out.Tier != tt.wantTier || out.Lines[0].Points != tt.want {
				t.Errorf("tier %q points %d, want %q %d", out.Tier, out.Lines[0].Points, tt.wantTier, tt.want)
			}
		})
	}
}

func TestFirstPurchaseBonusAtNextVisit(t *testing.T) {
	rs := basic(t)
	rs.FirstPurchaseBonus = 50
	// First sale: marks the bonus pending, credits nothing.
	m := rules.MemberState{ID: "m1"}
	first := mustEval(t, rs, rules.SaleInput{Lines: lines(1000), Member: m})
	if !first.FirstBonusPending || len(first.Bonuses) != 0 || first.Total() != 10 {
		t.Fatalf("first sale: %+v, want pending, no bonus, 10 points", first)
	}
	// Next visit: the bonus is credited and no longer pending.
	m.Purchases, m.FirstBonusPending = 1, first.FirstBonusPending
	second := mustEval(t, rs, rules.SaleInput{Lines: lines(1000), Member: m})
	want := []rules.Bonus{{Kind: rules.BonusFirstPurchase, Points: 50}}
	if second.FirstBonusPending || !slices.Equal(second.Bonuses, want) || second.Total() != 60 {
		t.Fatalf("second sale: %+v, want bonus 50 and total 60", second)
	}
	// Third: nothing more.
	m.Purchases, m.FirstBonusPending = 2, second.FirstBonusPending
	third := mustEval(t, rs, rules.SaleInput{Lines: lines(1000), Member: m})
	if third.FirstBonusPending || len(third.Bonuses) != 0 {
		t.Fatalf("third sale: %+v, want no bonus", third)
	}
	// Anonymous sales never start it; rule sets without the bonus never
	// mark it pending.
	if o := mustEval(t, rs, rules.SaleInput{Lines: lines(1000)}); o.FirstBonusPending {
		t.Error("anonymous sale marked a first-purchase bonus pending")
	}
	if o := mustEval(t, basic(t), rules.SaleInput{Lines: lines(1000), Member: rules.MemberState{ID: "m2"}}); o.FirstBonusPending {
		t.Error("rule set without the bonus marked it pending")
	}
}

func TestBirthdayBonus(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		birthday string
		at       time.Time
		givenAt  time.Time
		untrust  bool
		want     bool
	}{
		{"on the day", "1990-03-15", day(2026, 3, 15), time.Time{}, false, true},
		{"3 days before", "1990-03-15", day(2026, 3, 12), time.Time{}, false, true},
		{"4 days before", "1990-03-15", day(2026, 3, 11), time.Time{}, false, false},
		{"7 days after", "1990-03-15", day(2026, 3, 22), time.Time{}, false, true},
		{"8 days after", "1990-03-15", day(2026, 3, 23), time.Time{}, false, false},
		{"already given in this window", "1990-03-15", day(2026, 3, 17), day(2026, 3, 14), false, false},
		{"given last year", "1990-03-15", day(2026, 3, 17), day(2025, 3, 15), false, true},
		{"untrusted clock", "1990-03-15", day(2026, 3, 15), time.Time{}, true, false},
		{"year-less", "--03-15", day(2026, 3, 15), time.Time{}, false, true},
		{"29 Feb on 28 Feb in a common year", "2000-02-29", day(2027, 2, 28), time.Time{}, false, true},
		{"29 Feb window ends from 28 Feb", "2000-02-29", day(2027, 3, 8), time.Time{}, false, false},
		{"29 Feb in a leap year", "--02-29", day(2028, 2, 29), time.Time{}, false, true},
		{"29 Feb not yet on 28 Feb minus 4", "--02-29", day(2028, 2, 25), time.Time{}, false, false},
		{"window across new year", "--01-02", day(2026, 12, 30), time.Time{}, false, true},
		{"window across new year, given days ago", "--01-02", day(2027, 1, 3), day(2026, 12, 31), false, false},
		{"window end across new year", "--12-30", day(2027, 1, 5), time.Time{}, false, true},
		{"no birthday", "", day(2026, 3, 15), time.Time{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := basic(t)
			rs.Birthday = rules.BirthdayBonus{Points: 100, DaysBefore: 3, DaysAfter: 7}
			m := rules.MemberState{ID: "m", Birthday: tt.birthday, Purchases: 4, BirthdayBonusGivenAt: tt.givenAt}
			out := mustEval(t, rs, rules.SaleInput{Lines: lines(1000), Member: m, At: tt.at, ClockTrusted: !tt.untrust})
			got := slices.Contains(out.Bonuses, rules.Bonus{Kind: rules.BonusBirthday, Points: 100})
			if got != tt.want || out.BirthdayBonus != tt.want {
				t.Errorf("birthday bonus = %v (flag %v), want %v", got, out.BirthdayBonus, tt.want)
			}
		})
	}
}

func TestParseBirthday(t *testing.T) {
	tests := []struct {
		in    string
		month time.Month
		day   int
		ok    bool
	}{
		{"1990-03-15", time.March, 15, true},
		{"--02-29", time.February, 29, true},
		{"2000-02-29", time.February, 29, true},
		{"2001-02-29", 0, 0, false},
		{"--02-30", 0, 0, false},
		{"--13-01", 0, 0, false},
		{"--1-15", 0, 0, false},
		{"--+1-15", 0, 0, false},
		{"15.03.1990", 0, 0, false},
		{"", 0, 0, false},
		{"1066-10-14", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, d, err := rules.ParseBirthday(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, rules.ErrInput) {
				t.Errorf("err %v does not wrap ErrInput", err)
			}
			if m != tt.month || d != tt.day {
				t.Errorf("= %v %d, want %v %d", m, d, tt.month, tt.day)
			}
		})
	}
	// A malformed birthday on a member does not stop the sale: it only
	// earns no birthday bonus.
	rs := basic(t)
	rs.Birthday = rules.BirthdayBonus{Points: 10, DaysBefore: 90, DaysAfter: 90}
	out, err := rs.Evaluate(rules.SaleInput{Lines: lines(100), At: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), ClockTrusted: true,
		Member: rules.MemberState{ID: "m", Birthday: "31/12"}})
	if err != nil || len(out.Bonuses) != 0 || out.Total() != 1 {
		t.Errorf("malformed birthday: %+v, %v; want 1 point and no bonus", out, err)
	}
}

func TestExpiryFor(t *testing.T) {
	jer, err := time.LoadLocation("Asia/Jerusalem")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded in this test binary
	}
	tests := []struct {
		name   string
		tz     string
		months int
		at     time.Time
		want   time.Time
	}{
		{"never", "", 0, time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC), time.Time{}},
		{"jan 31 + 1 month in a common year", "", 1, time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC), time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)},
		{"jan 31 + 1 month in a leap year", "", 1, time.Date(2028, 1, 31, 10, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 10, 0, 0, 0, time.UTC)},
		{"feb 29 + 12 months", "", 12, time.Date(2028, 2, 29, 10, 0, 0, 0, time.UTC), time.Date(2029, 2, 28, 10, 0, 0, 0, time.UTC)},
		{"aug 31 + 1 month", "", 1, time.Date(2026, 8, 31, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)},
		{"across the year", "", 12, time.Date(2026, 12, 15, 8, 0, 0, 0, time.UTC), time.Date(2027, 12, 15, 8, 0, 0, 0, time.UTC)},
		{"23 months", "", 23, time.Date(2026, 3, 31, 8, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 8, 0, 0, 0, time.UTC)},
		{"clock time in a DST gap moves forward", "Europe/Sofia", 1, time.Date(2027, 2, 28, 1, 30, 0, 0, time.UTC), time.Date(2027, 3, 28, 1, 30, 0, 0, time.UTC)},
		{"store time zone decides the date", "Asia/Jerusalem", 1, time.Date(2026, 1, 31, 23, 30, 0, 0, time.UTC), time.Date(2026, 3, 1, 1, 30, 0, 0, jer)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := basic(t)
			rs.TimeZone, rs.ExpiryMonths = tt.tz, tt.months
			got := rs.ExpiryFor(tt.at)
			if !got.Equal(tt.want) {
				t.Errorf("ExpiryFor(%v) = %v, want %v", tt.at, got, tt.want)
			}
			e, err := rs.Compile()
			if err != nil {
				t.Fatal(err)
			}
			if got := e.ExpiryFor(tt.at); !got.Equal(tt.want) {
				t.Errorf("Engine.ExpiryFor(%v) = %v, want %v", tt.at, got, tt.want)
			}
			if out := mustEval(t, rs, rules.SaleInput{Lines: lines(100), At: tt.at}); !out.ExpiresAt.Equal(tt.want) {
				t.Errorf("Outcome.ExpiresAt = %v, want %v", out.ExpiresAt, tt.want)
			}
		})
	}
}

func TestRewards(t *testing.T) {
	rs := basic(t)
	rs.Rewards = []rules.Reward{{ID: "coffee", Name: "Free coffee", Points: 100, Discount: 1200}, {ID: "ten-off", Name: "10 off", Points: 500, Discount: 1000}}
	if r, ok := rs.Reward("ten-off"); !ok || r.Points != 500 || r.Discount != 1000 {
		t.Errorf("Reward(ten-off) = %+v %v", r, ok)
	}
	if _, ok := rs.Reward("nope"); ok {
		t.Error("unknown reward found")
	}
}

func TestPartialReverse(t *testing.T) {
	tests := []struct {
		name                 string
		earned, sold, before int64
		now                  int64
		want                 int64
		wantErr              bool
	}{
		{"full refund", 10, 3, 0, 3, 10, false},
		{"first of three", 10, 3, 0, 1, 3, false},
		{"second of three", 10, 3, 1, 1, 3, false},
		{"last of three takes the remainder", 10, 3, 2, 1, 4, false},
		{"nothing earned", 0, 5, 0, 2, 0, false},
		{"zero units now", 10, 3, 1, 0, 0, false},
		{"huge numbers do not overflow", rules.MaxPoints, 1 << 40, 0, 1<<40 - 1, rules.MaxPoints - 1, false},
		{"beyond sold", 10, 3, 2, 2, 0, true},
		{"already fully refunded", 10, 3, 3, 1, 0, true},
		{"negative earned", -1, 3, 0, 1, 0, true},
		{"no units sold", 10, 0, 0, 0, 0, true},
		{"negative units", 10, 3, 0, -1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rules.PartialReverse(tt.earned, tt.sold, tt.before, tt.now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, rules.ErrInput) {
				t.Errorf("err %v does not wrap ErrInput", err)
			}
			if got != tt.want {
				t.Errorf("= %d, want %d", got, tt.want)
			}
		})
	}
}

// TestPartialReverseSums checks every way of splitting a refund of up to all
// units: the reversals never exceed what was earned and a full refund
// reverses exactly that.
func TestPartialReverseSums(t *testing.T) {
	for earned := int64(0); earned <= 23; earned++ {
		for sold := int64(1); sold <= 7; sold++ {
			// every composition of sold into steps, encoded as a bit mask of cut points
			for mask := 0; mask < 1<<(sold-1); mask++ {
				var done, sum int64
				step := int64(0)
				for u := int64(1); u <= sold; u++ {
					step++
					if u == sold || mask&(1<<(u-1)) != 0 {
						r, err := rules.PartialReverse(earned, sold, done, step)
						if err != nil {
							t.Fatal(err)
						}
						if r < 0 {
							t.Fatalf("negative reversal %d", r)
						}
						sum += r
						done += step
						step = 0
						if sum > earned {
							t.Fatalf("earned %d sold %d mask %b: reversed %d > earned", earned, sold, mask, sum)
						}
					}
				}
				if sum != earned {
					t.Fatalf("earned %d sold %d mask %b: full refund reversed %d", earned, sold, mask, sum)
				}
			}
		}
	}
}

func TestEvaluateBadInput(t *testing.T) {
	tests := []struct {
		name string
		rs   *rules.RuleSet
		in   rules.SaleInput
		want error
	}{
		{"negative amount", basic(t), rules.SaleInput{Lines: lines(100, -1)}, rules.ErrInput},
		{"duplicate line number", basic(t), rules.SaleInput{Lines: []rules.LineInput{{No: 1, Amount: 1}, {No: 1, Amount: 2}}}, rules.ErrInput},
		{"amount above max", basic(t), rules.SaleInput{Lines: lines(rules.MaxAmount + 1)}, rules.ErrOverflow},
		{"total above max", basic(t), rules.SaleInput{Lines: lines(rules.MaxAmount, 1)}, rules.ErrOverflow},
		{"max int64 amount", basic(t), rules.SaleInput{Lines: lines(1<<63 - 1)}, rules.ErrOverflow},
		{"points beyond max", &rules.RuleSet{Version: 1, Earn: rules.Rate{PointsPerUnit: dec(t, "1000")}}, rules.SaleInput{Lines: lines(rules.MaxAmount)}, rules.ErrOverflow},
		{"invalid rule set", &rules.RuleSet{}, rules.SaleInput{Lines: lines(100)}, rules.ErrInvalid},
		{"no sale time", basic(t), rules.SaleInput{Lines: lines(100), At: time.Time{}}, rules.ErrInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "no sale time" && tt.in.At.IsZero() {
				tt.in.At = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			out, err := tt.rs.Evaluate(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if out.Lines != nil || out.Bonuses != nil {
				t.Errorf("outcome on error = %+v, want zero", out)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	bad := &rules.RuleSet{
		Version:  0,
		TimeZone: "Mars/Olympus",
		Rounding: "up",
		Earn:     rules.Rate{PointsPerUnit: dec(t, "1"), PercentBack: dec(t, "5")},
		CategoryRates: []rules.CategoryRate{
			{Category: "a", Rate: rules.Rate{Exclude: true}},
			{Category: "a", Rate: rules.Rate{}},
		},
		Campaigns: []rules.Campaign{
			{ID: "ok", Multiplier: dec(t, "2"), Weekdays: []string{"tue"}},
			{ID: "big", Multiplier: dec(t, "11"), Weekdays: []string{"tuesday"}, From: "2026-12-31", To: "2026-12-01"},
			{ID: "ok", BonusPoints: 5},
		},
		Tiers:        []rules.Tier{{Name: "base", MinSpend: 10}, {Name: "gold", MinSpend: 0}},
		Rewards:      []rules.Reward{{ID: "r", Name: "R", Points: 0, Discount: 10}},
		Birthday:     rules.BirthdayBonus{Points: 10, DaysBefore: 400},
		ExpiryMonths: -1,
	}
	err := bad.Validate()
	if !errors.Is(err, rules.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	var ve rules.ValidationErrors
	if !errors.As(err, &ve) {
		t.Fatalf("err %T is not ValidationErrors", err)
	}
	got := map[string]string{}
	for _, fe := range ve {
		got[fe.Path] = fe.Msg
	}
	want := map[string]string{
		"version":                    "must be at least 1",
		"timezone":                   "unknown time zone",
		"rounding":                   "use floor, half-up or half-even",
		"earn":                       "set only one",
		"category_rates[1].category": `"a" is already in category_rates[0]`,
		"category_rates[1]":          "set one of",
		"campaigns[1].multiplier":    "must be between 1 and 10",
		"campaigns[1].weekdays[0]":   "not a weekday",
		"campaigns[1].to":            "before from",
		"campaigns[2].id":            "already used",
		"campaigns[2]":               "not time-boxed",
		"tiers[0]":                   "base tier",
		"tiers[1]":                   "set min_spend or min_visits",
		"rewards[0].points":          "must be between 1",
		"birthday.days_before":       "must be between 0 and 90",
		"expiry_months":              "must be between 0 (never)",
	}
	for path, frag := range want {
		if msg, ok := got[path]; !ok || !strings.Contains(msg, frag) {
			t.Errorf("%s: got %q, want it to contain %q", path, msg, frag)
		}
	}
	if len(ve) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ve), len(want), err)
	}
	if !strings.Contains(err.Error(), "campaigns[1].multiplier: must be between 1 and 10 (got 11)") {
		t.Errorf("message %q does not name the path and the allowed range", err)
	}
	if err := basic(t).Validate(); err != nil {
		t.Errorf("valid rule set: %v", err)
	}
}

func TestDecParse(t *testing.T) {
	tests := []struct {
		in   string
		want rules.Dec
		ok   bool
	}{
		{"2", 20000, true}, {"1.5", 15000, true}, {"0.0125", 125, true}, {"10.", 0, false},
		{".5", 0, false}, {"-1", 0, false}, {"1e3", 0, false}, {"1.00001", 0, false},
		{"+1", 0, false}, {"", 0, false}, {"1000000000", 1_000_000_000 * 10000, true}, {"1000000001", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := rules.ParseDec(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseDec(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
			if err == nil {
				if back, _ := rules.ParseDec(got.String()); back != got {
					t.Errorf("String round trip: %q -> %q", tt.in, got.String())
				}
			}
		})
	}
}

func TestEngineConcurrent(t *testing.T) {
	rs := campaignRules(t, "Asia/Jerusalem")
	e, err := rs.Compile()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	done := make(chan int64)
	for range 4 {
		go func() {
			var s int64
			for range 100 {
				o, err := e.Evaluate(rules.SaleInput{Lines: lines(1000), At: at, ClockTrusted: true})
				if err != nil {
					s = -1
					break
				}
				s += o.Total()
			}
			done <- s
		}()
	}
	for range 4 {
		if s := <-done; s != 2000 {
			t.Errorf("goroutine total = %d, want 2000", s)
		}
	}
	if got := e.ActiveCampaigns(at, true); len(got) != 1 || got[0].ID != "double-tuesday" {
		t.Errorf("ActiveCampaigns = %v", got)
	}
}
