package retention_test

import (
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func buy(id, at string, amount retention.Money, cats ...string) retention.Purchase {
	return retention.Purchase{SaleID: id, At: day(at).Add(10 * time.Hour), ClockTrusted: true, Amount: amount, Categories: cats}
}

func loadCDNOW(t testing.TB) []retention.Member {
	t.Helper()
	f, err := os.Open("../../testdata/cdnow/CDNOW_sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := retention.ParseCDNOW(f)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

var calEnd = day("1997-09-30")

func TestCDNOWReproducesPublishedFit(t *testing.T) {
	ms := loadCDNOW(t)
	if len(ms) != 2357 {
		t.Fatalf("%d members, want 2357", len(ms))
	}
	a, err := retention.Analyze(ms, calEnd, &retention.Config{KeepZeroAmount: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Model == nil {
		t.Fatal(a.ModelError)
	}
	want := map[string][2]float64{"r": {a.Model.R, 0.2426}, "alpha": {a.Model.Alpha, 4.4135}, "a": {a.Model.A, 0.7929}, "b": {a.Model.B, 2.4258}}
	for name, gw := range want {
		if rel := math.Abs(gw[0]-gw[1]) / gw[1]; rel > 0.005 {
			t.Errorf("%s = %.4f, published %.4f", name, gw[0], gw[1])
		}
	}
	if math.Abs(a.Model.LogLik+9582.4) > 0.5 {
		t.Errorf("LL = %.2f, published -9582.4", a.Model.LogLik)
	}
	// Holdout purchases are after asOf and so excluded as "future"; the
	// README's total of repeat days in calibration is 2,457.
	x := 0
	for i := range a.Profiles {
		if p := &a.Profiles[i]; p.Rhythm.PurchaseDays > 0 {
			x += a.Customer(p).X
		}
	}
	if x != 2457 {
		t.Errorf("repeat purchase days %d, want 2457", x)
	}
	// Without KeepZeroAmount the 8 free orders are excluded and counted.
	b, err := retention.Analyze(ms, calEnd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Excluded.ZeroAmount != 8 || b.Excluded.NoPurchases != 8 {
		t.Errorf("exclusions %+v, want 8 zero-amount entries and 8 members without purchases", b.Excluded)
	}
}

func TestEvaluationDefaultBeatsFixed(t *testing.T) {
	ev, err := retention.Evaluate(loadCDNOW(t), calEnd, 273, &retention.Config{KeepZeroAmount: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Members != 2357 || ev.HoldoutEnd != "1998-06-30" {
		t.Fatalf("members %d holdout end %s", ev.Members, ev.HoldoutEnd)
	}
	// 2,357 customers, 1,882 holdout purchase days among fewer buyers: the
	// positives are the non-buyers.
	if ev.Positives < 1500 || ev.Positives > 1800 {
		t.Errorf("positives %d implausible", ev.Positives)
	}
	var fixed, def *retention.EvalRow
	for i, r := range ev.Rows {
		switch {
		case r.Sleep.Kind == retention.SleepFixed:
			fixed = &ev.Rows[i]
		case r.Sleep == retention.DefaultSleepRule:
			def = &ev.Rows[i]
		}
		if r.TP+r.FN != ev.Positives {
			t.Errorf("%s: TP+FN = %d, positives %d", r.Rule, r.TP+r.FN, ev.Positives)
		}
	}
	if fixed == nil || def == nil {
		t.Fatalf("rows missing: %+v", ev.Rows)
	}
	if def.F1 <= fixed.F1 {
		t.Errorf("default F1 %.4f does not beat fixed 6 weeks %.4f", def.F1, fixed.F1)
	}
	if ev.Rows[0].Recall != 1 || ev.Rows[0].AUC != 0.5 {
		t.Errorf("baseline row %+v", ev.Rows[0])
	}
}

func TestRhythmHandComputed(t *testing.T) {
	m := retention.Member{ID: "m1", Purchases: []retention.Purchase{
		buy("s1", "2026-01-01", 1000, "coffee"),
		buy("s2", "2026-01-01", 500, "cake"), // same day: one purchase day
		buy("s3", "2026-01-11", 1000, "coffee"),
		buy("s4", "2026-01-31", 1000, "coffee"),
		buy("s5", "2026-02-10", 2000),
	}}
	a, err := retention.Analyze([]retention.Member{m}, day("2026-03-01"), &retention.Config{Sleeping: retention.SleepRule{Kind: retention.SleepIntervals}})
	if err != nil {
		t.Fatal(err)
	}
	p := a.Profiles[0]
	r := p.Rhythm
	// Gaps 10, 20, 10 days: mean 40/3, median 10.
	if r.PurchaseDays != 4 || math.Abs(r.MeanInterval-40.0/3) > 1e-12 || r.MedianInterval != 10 {
		t.Errorf("rhythm %+v", r)
	}
	if r.ExpectedNextDate() != "2026-02-23" || r.LastDate() != "2026-02-10" {
		t.Errorf("expected next %s last %s", r.ExpectedNextDate(), r.LastDate())
	}
	if c, _ := p.Categories.Get("coffee"); c.PurchaseDays != 3 || c.MeanInterval != 15 {
		t.Errorf("coffee rhythm %+v", c)
	}
	if p.Spend != 5500 || p.FirstSpend != 1500 || p.DaysSince != 19 || p.Segment != retention.SegVIP {
		t.Errorf("profile %+v", p)
	}
	if a.ModelError == "" {
		t.Error("one member fitted a model")
	}
}

func TestStatuses(t *testing.T) {
	asOf := day("2026-06-30")
	mk := func(id string, dates ...string) retention.Member {
		m := retention.Member{ID: id}
		for i, d := range dates {
			m.Purchases = append(m.Purchases, buy(id+string(rune('a'+i)), d, 1000))
		}
		return m
	}
	members := []retention.Member{
		mk("active", "2026-06-01", "2026-06-11", "2026-06-21"),   // interval 10, 9 days since
		mk("due", "2026-06-01", "2026-06-11", "2026-06-20"),      // interval 9.5, 10 days since
		mk("sleeping", "2026-05-01", "2026-05-11", "2026-05-21"), // interval 10, 40 days since > 30
		mk("lost", "2025-01-01", "2025-01-11", "2025-01-21"),     // 525 days since
		mk("new", "2026-06-29"),
	}
	for _, tc := range []struct {
		name   string
		offset int
		want   map[string]retention.Status
	}{
		{"own interval", 0, map[string]retention.Status{"active": "active", "due": "due", "sleeping": "sleeping", "lost": "lost", "new": "active"}},
		{"two days early", -2, map[string]retention.Status{"active": "due", "due": "due"}},
		{"three days late", 3, map[string]retention.Status{"active": "active", "due": "active"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := retention.Analyze(members, asOf, &retention.Config{DueOffsetDays: tc.offset, Sleeping: retention.SleepRule{Kind: retention.SleepIntervals}})
			if err != nil {
				t.Fatal(err)
			}
			for id, want := range tc.want {
				p, _ := a.Profile(id)
				if p.Status != want {
					t.Errorf("%s: %s, want %s", id, p.Status, want)
				}
			}
		})
	}
}

func TestBadInputCountedAndExcluded(t *testing.T) {
	asOf := day("2026-06-30")
	m := retention.Member{ID: "m", EnrolledAt: day("2026-01-01"), Purchases: []retention.Purchase{
		buy("old", "2025-12-31", 1000),    // before enrolment
		buy("future", "2026-07-01", 1000), // register clock ahead
		buy("zero", "2026-02-01", 0),
		buy("orphan", "2026-02-02", -500), // refund of nothing
		buy("full", "2026-03-01", 1000), buy("full", "2026-03-02", -1000),
		buy("part", "2026-04-01", 1000), buy("part", "2026-04-05", -400),
	}}
	a, err := retention.Analyze([]retention.Member{m, {ID: "empty"}}, asOf, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := retention.Exclusions{Future: 1, BeforeEnrolment: 1, ZeroAmount: 1, OrphanRefund: 1, Refunded: 2, NoPurchases: 1}
	if a.Excluded != want {
		t.Errorf("excluded %+v, want %+v", a.Excluded, want)
	}
	p, _ := a.Profile("m")
	if p.Rhythm.PurchaseDays != 1 || p.Spend != 600 || p.Rhythm.FirstDate() != "2026-04-01" {
		t.Errorf("kept %+v spend %d", p.Rhythm, p.Spend)
	}
	if _, err := retention.Analyze([]retention.Member{{ID: "x", Purchases: []retention.Purchase{buy("z", "2026-01-01", 0)}}}, asOf, nil); !errors.Is(err, retention.ErrNoData) {
		t.Errorf("all excluded: err = %v", err)
	}
	if _, err := retention.Analyze([]retention.Member{m, m}, asOf, nil); !errors.Is(err, retention.ErrInvalid) {
		t.Errorf("duplicate member: err = %v", err)
	}
	if _, err := retention.Analyze([]retention.Member{m}, asOf, &retention.Config{VIPShare: 2}); !errors.Is(err, retention.ErrInvalid) {
		t.Errorf("bad config: err = %v", err)
	}
}

func TestUpliftSourceExample(t *testing.T) {
	u, err := retention.ComputeUplift(retention.UpliftInput{Customers: 150, PurchasesPerYear: 4, PerPurchase: 20000, ShareBP: 1500})
	if err != nil {
		t.Fatal(err)
	}
	if u.ExtraRevenue != 450000 || u.BaseRevenue != 12000000 || u.GrowthBP != 375 {
		t.Errorf("uplift %+v, want +450000 on 12000000 = 375bp", u)
	}
	if _, err := retention.ComputeUplift(retention.UpliftInput{Customers: 1, ShareBP: 10001}); !errors.Is(err, retention.ErrInvalid) {
		t.Errorf("share over 100%%: err = %v", err)
	}
}

func TestMetricsHandComputed(t *testing.T) {
	ms := []retention.Member{
		{ID: "a", Purchases: []retention.Purchase{buy("1", "2026-01-01", 1000), buy("2", "2026-01-11", 3000)}},
		{ID: "b", Purchases: []retention.Purchase{buy("3", "2026-01-05", 2000)}},
	}
	a, err := retention.Analyze(ms, day("2026-03-01"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := a.Metrics()
	if m.Buyers != 2 || m.Repeaters != 1 || m.RepeatRatio != 0.5 || m.Revenue != 6000 {
		t.Errorf("counts %+v", m)
	}
	if m.AvgBasketNew != 1500 || m.AvgBasketReturning != 3000 || m.MedianIntervalDays != 10 {
		t.Errorf("baskets new %d returning %d median %v", m.AvgBasketNew, m.AvgBasketReturning, m.MedianIntervalDays)
	}
	// Top 20% of 2 buyers = 1 buyer (a, 4000 of 6000).
	if math.Abs(m.TopRevenueShare-4000.0/6000) > 1e-12 {
		t.Errorf("top share %v", m.TopRevenueShare)
	}
	if m.Intervals[1].Count != 1 { // 10 days falls in 7-14
		t.Errorf("interval histogram %+v", m.Intervals)
	}
}

// TestMetricsCountSegmentsByName: Metrics counts every segment and status
// a profile carries under its name, those Analyze gives and any other (a
// profile read from a newer head office's JSON), and names none it did not
// see.
func TestMetricsCountSegmentsByName(t *testing.T) {
	ms := []retention.Member{
		{ID: "a", Purchases: []retention.Purchase{buy("1", "2026-01-01", 1000), buy("2", "2026-01-11", 3000)}},
		{ID: "b", Purchases: []retention.Purchase{buy("3", "2026-01-05", 2000)}},
		{ID: "c", Purchases: []retention.Purchase{buy("4", "2026-02-05", 500)}},
		{ID: "d"},
	}
	a, err := retention.Analyze(ms, day("2026-03-01"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Profiles[1].Segment, a.Profiles[1].Status = "dormant", "paused"
	m := a.Metrics()
	wantSegs := map[string]int{"dormant": 1, string(a.Profiles[0].Segment): 1, string(a.Profiles[2].Segment): 1, "none": 1}
	wantStats := map[string]int{"paused": 1}
	wantStats[string(a.Profiles[0].Status)]++
	wantStats[string(a.Profiles[2].Status)]++
	if !reflect.DeepEqual(m.Segments, wantSegs) || !reflect.DeepEqual(m.Statuses, wantStats) {
		t.Errorf("segments %v statuses %v, want %v %v", m.Segments, m.Statuses, wantSegs, wantStats)
	}
}

type hist map[string][]retention.ContactRecord

func (h hist) Contacts(id string) ([]retention.ContactRecord, error) { return h[id], nil }

func TestContactListConsentAndCaps(t *testing.T) {
	asOf := day("2026-06-30")
	sleeper := func(id string, consent bool) retention.Member {
		return retention.Member{ID: id, Consent: consent, Purchases: []retention.Purchase{
			buy(id+"1", "2026-04-01", 1000), buy(id+"2", "2026-04-11", 1000), buy(id+"3", "2026-04-21", 1000)}}
	}
	ms := []retention.Member{
		sleeper("s-consent", true),
		sleeper("s-noconsent", false),
		{ID: "bday", Consent: true, Birthday: "1990-07-03", Purchases: []retention.Purchase{buy("b1", "2026-01-01", 1000), buy("b2", "2026-06-25", 1000)}},
		{ID: "first", Consent: true, Purchases: []retention.Purchase{buy("f1", "2026-06-20", 1000)}},
		{ID: "follow", Consent: true, Purchases: []retention.Purchase{buy("x1", "2026-06-01", 1000), buy("x2", "2026-06-24", 1000)}},
	}
	a, err := retention.Analyze(ms, asOf, &retention.Config{Sleeping: retention.SleepRule{Kind: retention.SleepIntervals}})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(id string, k retention.ContactKind, at string) retention.ContactRecord {
		return retention.ContactRecord{MemberID: id, Kind: k, At: day(at)}
	}
	for _, tc := range []struct {
		name string
		h    hist
		want map[string]retention.ContactKind // member -> kind; absent = not listed
	}{
		{"nobody contacted yet", nil, map[string]retention.ContactKind{"s-consent": "sleeping", "bday": "birthday", "first": "first-time", "follow": "followup"}},
		{"due sent this lapse: sleeping offer still comes", hist{"s-consent": {rec("s-consent", "due", "2026-05-10")}},
			map[string]retention.ContactKind{"s-consent": "sleeping"}},
		{"sleeping offer made once per lapse", hist{"s-consent": {rec("s-consent", "due", "2026-05-10"), rec("s-consent", "sleeping", "2026-06-01")}},
			map[string]retention.ContactKind{"s-consent": ""}},
		{"budget used up", hist{"s-consent": {rec("s-consent", "followup", "2026-04-27"), rec("s-consent", "due", "2026-05-10"), rec("s-consent", "first-time", "2026-06-10")}},
			map[string]retention.ContactKind{"s-consent": ""}},
		{"reminded two days ago", hist{"s-consent": {rec("s-consent", "sleeping", "2026-06-28")}}, map[string]retention.ContactKind{"s-consent": ""}},
		{"contacts of an earlier lapse do not count", hist{"s-consent": {rec("s-consent", "due", "2026-03-01"), rec("s-consent", "due", "2026-03-10"), rec("s-consent", "due", "2026-03-20")}},
			map[string]retention.ContactKind{"s-consent": "sleeping"}},
		{"birthday already greeted, spacing holds the follow-up", hist{"bday": {rec("bday", "birthday", "2026-06-29")}}, map[string]retention.ContactKind{"bday": ""}},
		{"birthday greeted last year", hist{"bday": {rec("bday", "birthday", "2025-07-01")}}, map[string]retention.ContactKind{"bday": "birthday"}},
		{"first-time already sent", hist{"first": {rec("first", "first-time", "2026-06-21")}}, map[string]retention.ContactKind{"first": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h retention.ContactHistory
			if tc.h != nil {
				h = tc.h
			}
			cs, err := a.ContactList(h, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]retention.ContactKind{}
			for _, c := range cs {
				if _, dup := got[c.MemberID]; dup {
					t.Errorf("%s listed twice", c.MemberID)
				}
				got[c.MemberID] = c.Kind
			}
			if _, ok := got["s-noconsent"]; ok {
				t.Error("member without consent listed")
			}
			for id, want := range tc.want {
				if got[id] != want {
					t.Errorf("%s: got %q, want %q", id, got[id], want)
				}
			}
		})
	}
	if _, err := a.ContactList(nil, &retention.ContactOptions{Kinds: []retention.ContactKind{"spam"}}); !errors.Is(err, retention.ErrInvalid) {
		t.Errorf("unknown kind: err = %v", err)
	}
}

func TestPrompt(t *testing.T) {
	asOf := day("2026-06-30").Add(12 * time.Hour)
	regular := []retention.Purchase{buy("1", "2026-06-01", 1000), buy("2", "2026-06-11", 1000), buy("3", "2026-06-21", 1000)}
	for _, tc := range []struct {
		name string
		in   retention.PromptInput
		want string
	}{
		{"birthday beats all", retention.PromptInput{Member: retention.Member{Birthday: "--07-02", Purchases: regular[:1]}}, "Birthday this week"},
		{"first return visit", retention.PromptInput{Member: retention.Member{Purchases: regular[:1]}}, "First return visit"},
		{"local due", retention.PromptInput{Member: retention.Member{Purchases: []retention.Purchase{buy("1", "2026-06-01", 1000), buy("2", "2026-06-11", 1000)}}}, "Due (usually every 10 days)"},
		{"local sleeping", retention.PromptInput{Member: retention.Member{Purchases: []retention.Purchase{buy("1", "2026-05-01", 1000), buy("2", "2026-05-11", 1000)}}}, "Welcome back after 50 days"},
		{"head office says sleeping with offer", retention.PromptInput{Member: retention.Member{Purchases: regular}, Summary: &retention.MemberSummary{Status: "sleeping", PurchaseDays: 3, LastPurchase: "2026-06-21", Offer: "double points today"}}, "double points today"},
		{"head office summary from an analysis", retention.PromptInput{Member: retention.Member{Purchases: regular[:1]}, Summary: summaryOf(t)}, "Due (usually every 10 days)"},
		{"near reward", retention.PromptInput{Member: retention.Member{Purchases: regular}, Balance: 95, NextReward: 100}, "5 points to the next reward"},
		{"nothing", retention.PromptInput{Member: retention.Member{Purchases: regular}, Balance: 10, NextReward: 100}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.AsOf = asOf
			got := retention.Prompt(tc.in, nil)
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) && !strings.Contains(got, tc.want) {
				t.Errorf("prompt %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAUC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scores []float64
		truth  []bool
		want   float64
	}{
		{"perfect", []float64{1, 2, 3, 4}, []bool{false, false, true, true}, 1},
		{"inverted", []float64{4, 3, 2, 1}, []bool{false, false, true, true}, 0},
		{"all tied", []float64{1, 1, 1, 1}, []bool{false, true, false, true}, 0.5},
		{"one swap", []float64{1, 2, 3, 4}, []bool{false, true, false, true}, 0.75},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retention.AUC(tc.scores, tc.truth); got != tc.want {
				t.Errorf("AUC %v, want %v", got, tc.want)
			}
		})
	}
}

// summaryOf analyses a member who bought at three registers every ten days
// and is due; the register only saw the first purchase.
func summaryOf(t *testing.T) *retention.MemberSummary {
	t.Helper()
	m := retention.Member{ID: "m", Purchases: []retention.Purchase{buy("1", "2026-06-01", 1000), buy("2", "2026-06-11", 1000), buy("3", "2026-06-21", 1000)}}
	a, err := retention.Analyze([]retention.Member{m}, day("2026-06-30"), &retention.Config{DueOffsetDays: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := a.Profiles[0].Summary()
	if s.Status != retention.StatusDue || s.PurchaseDays != 3 {
		t.Fatalf("summary %+v", s)
	}
	return &s
}
