package retention_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

func TestSleepRuleValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    retention.SleepRule
		ok   bool
	}{
		{"zero is the default", retention.SleepRule{}, true},
		{"intervals default multiplier", retention.SleepRule{Kind: retention.SleepIntervals}, true},
		{"negative intervals", retention.SleepRule{Kind: retention.SleepIntervals, Intervals: -1}, false},
		{"fixed negative", retention.SleepRule{Kind: retention.SleepFixed, FixedDays: -3}, false},
		{"threshold one", retention.SleepRule{Kind: retention.SleepPAlive, Threshold: 1}, false},
		{"negative window", retention.SleepRule{Kind: retention.SleepPNone, Threshold: 0.5, WindowDays: -1}, false},
		{"unknown", retention.SleepRule{Kind: "vibes"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, retention.ErrInvalid) {
				t.Errorf("Validate() = %v, ok want %v", err, tc.ok)
			}
		})
	}
}

// TestModelFallback: with too few members to fit BG/NBD the default
// (model-based) sleeping rule falls back to three own intervals, and the
// analysis says why.
func TestModelFallback(t *testing.T) {
	ms := []retention.Member{
		{ID: "a", Purchases: []retention.Purchase{buy("1", "2026-04-01", 100), buy("2", "2026-04-11", 100)}},
		{ID: "b", Purchases: []retention.Purchase{buy("3", "2026-06-20", 100), buy("4", "2026-06-28", 100)}},
	}
	a, err := retention.Analyze(ms, day("2026-06-30"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Model != nil || !strings.Contains(a.ModelError, "too little data") {
		t.Errorf("model %+v error %q", a.Model, a.ModelError)
	}
	if a.Sleeping != retention.FallbackSleepRule {
		t.Errorf("sleeping rule %+v, want the fallback", a.Sleeping)
	}
	pa, _ := a.Profile("a")
	pb, _ := a.Profile("b")
	if pa.Status != retention.StatusSleeping || pb.Status != retention.StatusActive {
		t.Errorf("statuses a=%s b=%s", pa.Status, pb.Status)
	}
}

func TestCategoriesAndCohorts(t *testing.T) {
	ms := []retention.Member{
		{ID: "a", Purchases: []retention.Purchase{buy("1", "2026-01-05", 100, "coffee"), buy("2", "2026-01-25", 100, "coffee", "cake"), buy("3", "2026-03-10", 100, "coffee")}},
		{ID: "b", Purchases: []retention.Purchase{buy("4", "2026-01-20", 100, "cake")}},
		{ID: "c", Purchases: []retention.Purchase{buy("5", "2026-02-01", 100, "coffee"), buy("6", "2026-05-01", 100, "coffee")}},
	}
	a, err := retention.Analyze(ms, day("2026-04-15"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := a.Metrics()
	if a.Excluded.Future != 1 {
		t.Errorf("the May purchase is after asOf: %+v", a.Excluded)
	}
	got := map[string]retention.CategoryStat{}
	for _, c := range m.Categories {
		got[c.Category] = c
	}
	// coffee: a on 3 days (mean interval 32), c on 1 day; cake: a once, b once.
	if c := got["coffee"]; c.Buyers != 2 || c.PurchaseDays != 4 || c.DaysPerBuyer != 2 || c.MedianDays != 32 {
		t.Errorf("coffee %+v", c)
	}
	if c := got["cake"]; c.Buyers != 2 || c.PurchaseDays != 2 || c.MedianDays != 0 {
		t.Errorf("cake %+v", c)
	}
	// January cohort (a, b): a repeated within 1 month (Jan 25), b never.
	// Observed months: to 2026-02-20 (b's first + 1 month) ... up to asOf.
	if len(m.Cohorts) != 2 || m.Cohorts[0].Cohort != "2026-01" || m.Cohorts[0].Members != 2 {
		t.Fatalf("cohorts %+v", m.Cohorts)
	}
	jan := m.Cohorts[0].Repeat
	if len(jan) != 2 || jan[0] != 0.5 || jan[1] != 0.5 {
		t.Errorf("January curve %v, want [0.5 0.5] (two fully observed months)", jan)
	}
	if feb := m.Cohorts[1].Repeat; len(feb) != 2 || feb[0] != 0 || feb[1] != 0 {
		t.Errorf("February curve %v", feb)
	}
	if math.Abs(m.RepeatRatio-1.0/3) > 1e-12 {
		t.Errorf("repeat ratio %v", m.RepeatRatio)
	}
}

func FuzzParseMembersCSV(f *testing.F) {
	f.Add("member_id,consent,birthday,enrolled_at\nm1,yes,--02-29,2026-01-01\n")
	f.Add("member_id,consent\nm1,maybe\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := retention.ParseMembersCSV(strings.NewReader(s), nil)
		if err != nil {
			if !errors.Is(err, retention.ErrInvalid) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for _, m := range ms {
			if m.ID == "" {
				t.Fatal("empty id accepted")
			}
		}
	})
}
