package retention_test

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/retentiontest"
)

// TestAnalyzeSameOnAnyProcessors holds the analysis of a population large
// enough to be split over the processors to the analysis done on one:
// every profile (history, rhythms, predictions, segment, status), the
// exclusions, the fit, the metrics and the value-by-risk matrix are the
// same whatever the split.
func TestAnalyzeSameOnAnyProcessors(t *testing.T) {
	base := retentiontest.Generate(3).Members()
	var ms []retention.Member
	for copyNo := 0; len(ms) < 3*4096; copyNo++ {
		for _, m := range base {
			m.ID = fmt.Sprintf("%s-%02d", m.ID, copyNo)
			ms = append(ms, m)
		}
	}
	asOf := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	type figures struct {
		metrics   retention.Metrics
		valueRisk []retention.MatrixCell
	}
	analyze := func(procs int) (*retention.Analysis, figures) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		a, err := retention.Analyze(ms, asOf, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a, figures{a.Metrics(), a.ValueRisk()}
	}
	one, oneFigures := analyze(1)
	if one.Model == nil {
		t.Fatalf("no model: %s", one.ModelError)
	}
	for _, procs := range []int{2, 3, 5} {
		got, gotFigures := analyze(procs)
		if !reflect.DeepEqual(got.Excluded, one.Excluded) || !reflect.DeepEqual(got.Model, one.Model) {
			t.Errorf("%d processors: excluded %+v model %+v, one processor: %+v %+v", procs, got.Excluded, got.Model, one.Excluded, one.Model)
		}
		if !reflect.DeepEqual(gotFigures, oneFigures) {
			t.Errorf("%d processors: metrics and matrix %+v, one processor: %+v", procs, gotFigures, oneFigures)
		}
		for i := range one.Profiles {
			if !reflect.DeepEqual(got.Profiles[i], one.Profiles[i]) {
				t.Fatalf("%d processors: member %s differs:\n%+v\none processor:\n%+v", procs, one.Profiles[i].MemberID, got.Profiles[i], one.Profiles[i])
			}
		}
	}
}

// TestAnalyzeRefusesDuplicateIDs: a member listed twice is ErrInvalid
// wherever the two sit in a sorted list split over the processors (in one
// part, across the seam of two), and unsorted unique ids are accepted.
func TestAnalyzeRefusesDuplicateIDs(t *testing.T) {
	asOf := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	members := func(n int) []retention.Member {
		ms := make([]retention.Member, n)
		for i := range ms {
			ms[i] = retention.Member{ID: fmt.Sprintf("m%06d", i), Purchases: []retention.Purchase{{SaleID: "s", At: asOf.AddDate(0, 0, -i%300), ClockTrusted: true, Amount: 100}}}
		}
		return ms
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	const n = 3 * 4096
	for _, dup := range []int{1, 100, n / 3, n/3 + 1, n - 1} {
		ms := members(n)
		ms[dup].ID = ms[dup-1].ID
		if _, err := retention.Analyze(ms, asOf, nil); !errors.Is(err, retention.ErrInvalid) || !strings.Contains(err.Error(), ms[dup].ID) {
			t.Errorf("duplicate at %d: %v", dup, err)
		}
	}
	ms := members(n)
	ms[10], ms[n-10] = ms[n-10], ms[10]
	if _, err := retention.Analyze(ms, asOf, nil); errors.Is(err, retention.ErrInvalid) {
		t.Errorf("unsorted unique ids: %v", err)
	}
}

// TestPredictionsAreEachMembersOwn holds every member's predictions, which
// Analyze computes once per distinct summary and shares the hypergeometric
// part of per (purchase days, age), to the model's three methods on that
// member's own summary, bit for bit, for two sleeping windows.
func TestPredictionsAreEachMembersOwn(t *testing.T) {
	ms := retentiontest.Generate(5).Members()
	asOf := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, window := range []int{30, 91} {
		cfg := &retention.Config{Sleeping: retention.SleepRule{Kind: retention.SleepPNone, Threshold: 0.5, WindowDays: window}}
		a, err := retention.Analyze(ms, asOf, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if a.Model == nil {
			t.Fatalf("no model: %s", a.ModelError)
		}
		if a.Sleeping.WindowDays != window {
			t.Fatalf("window %d applied as %d", window, a.Sleeping.WindowDays)
		}
		horizon := float64(window) / 7
		shared := map[[2]float64]int{} // members per (purchase days, age)
		for i := range a.Profiles {
			p := &a.Profiles[i]
			if p.Rhythm.PurchaseDays == 0 {
				continue
			}
			c := a.Customer(p)
			shared[[2]float64{float64(c.X), c.T}]++
			e, err := a.Model.ExpectedPurchases(c, horizon)
			if err != nil {
				e = 0
			}
			if p.PAlive != a.Model.PAlive(c) || p.PNone != a.Model.PNoPurchase(c, horizon) || p.Expected != e {
				t.Fatalf("window %d, member %s %+v: %v %v %v, the model says %v %v %v", window, p.MemberID, c,
					p.PAlive, p.PNone, p.Expected, a.Model.PAlive(c), a.Model.PNoPurchase(c, horizon), e)
			}
		}
		if len(shared) == 0 || len(shared) == len(a.Profiles) {
			t.Fatalf("%d distinct (purchase days, age) among %d members: nothing shared", len(shared), len(a.Profiles))
		}
	}
}
