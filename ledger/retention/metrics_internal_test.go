package retention

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestCohortsMatchReference: the repeat curves from one pass over the
// members are those of two passes a month, on random populations with
// first purchases at month ends, on leap days, before 1970 and within the
// last months, in time zones either side of UTC.
func TestCohortsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	zones := []*time.Location{time.UTC, time.FixedZone("east", 13*3600), time.FixedZone("west", -11*3600)}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	end := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	starts := []time.Time{time.Date(1969, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2025, 8, 31, 0, 0, 0, 0, time.UTC), end.AddDate(0, -2, 0)}
	for _, loc := range zones {
		for round := range 20 {
			var ms []Member
			for i := range 300 {
				first := end.Add(-time.Duration(rng.IntN(3*365*24)) * time.Hour)
				if rng.IntN(4) == 0 {
					first = starts[rng.IntN(len(starts))].Add(time.Duration(rng.IntN(24)) * time.Hour)
				}
				m := Member{ID: fmt.Sprintf("m%04d", i)}
				at := first
				for k := range 1 + rng.IntN(5) {
					m.Purchases = append(m.Purchases, Purchase{SaleID: fmt.Sprintf("s%d-%d", i, k), At: at, ClockTrusted: true, Amount: 100})
					at = at.Add(time.Duration(1+rng.IntN(24*120)) * time.Hour)
					if at.After(end) {
						break
					}
				}
				ms = append(ms, m)
			}
			a, err := Analyze(ms, end, &Config{Location: loc})
			if err != nil {
				t.Fatal(err)
			}
			for _, months := range []int{1, 12, 40} {
				got, want := a.cohortsBy(months, true), a.cohortsBy(months, false)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s round %d, %d months:\n got %v\nwant %v", loc, round, months, got, want)
				}
			}
		}
	}
}

// TestCohortsBefore1970: a second purchase on a day before 1970 (a
// negative Day) counts as a second purchase in both ways of working out
// the curves (before: day -1 was "no second purchase", and so was any
// earlier day).
func TestCohortsBefore1970(t *testing.T) {
	end := time.Date(1970, 6, 30, 12, 0, 0, 0, time.UTC)
	buy := func(id string, days ...time.Time) Member {
		m := Member{ID: id}
		for k, d := range days {
			m.Purchases = append(m.Purchases, Purchase{SaleID: fmt.Sprintf("%s-%d", id, k), At: d, ClockTrusted: true, Amount: 100})
		}
		return m
	}
	ms := []Member{
		buy("a", time.Date(1969, 11, 3, 10, 0, 0, 0, time.UTC), time.Date(1969, 11, 20, 10, 0, 0, 0, time.UTC)),  // second day -42
		buy("b", time.Date(1969, 11, 10, 10, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 10, 0, 0, 0, time.UTC)), // second day -1
		buy("c", time.Date(1969, 11, 12, 10, 0, 0, 0, time.UTC), time.Date(1970, 1, 20, 10, 0, 0, 0, time.UTC)),  // second day 19
		buy("d", time.Date(1969, 11, 14, 10, 0, 0, 0, time.UTC)),                                                 // no second
	}
	a, err := Analyze(ms, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.25, 0.5, 0.75} // a in its first month, b in its second, c in its third
	for _, onePass := range []bool{true, false} {
		got := a.cohortsBy(3, onePass)
		if len(got) != 1 || got[0].Cohort != "1969-11" || got[0].Members != 4 || !reflect.DeepEqual(got[0].Repeat, want) {
			t.Fatalf("one pass %v: %+v, want cohort 1969-11 of 4 repeating %v", onePass, got, want)
		}
	}
}

// TestEarlyCohorts: the cohorts Analyze works out beside the fit are
// those Metrics works out itself, each call of Metrics has its own copy,
// and profiles replaced after Analyze are not answered from them.
func TestEarlyCohorts(t *testing.T) {
	end := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 4))
	var ms []Member
	for i := range 400 {
		m := Member{ID: fmt.Sprintf("m%04d", i)}
		at := end.Add(-time.Duration(rng.IntN(2*365*24)) * time.Hour)
		for k := range 1 + rng.IntN(4) {
			m.Purchases = append(m.Purchases, Purchase{SaleID: fmt.Sprintf("s%d-%d", i, k), At: at, ClockTrusted: true, Amount: 100})
			at = at.Add(time.Duration(1+rng.IntN(90*24)) * time.Hour)
		}
		ms = append(ms, m)
	}
	a, err := Analyze(ms, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.early == nil {
		t.Fatal("Analyze kept no cohorts")
	}
	got := a.Metrics()
	if len(got.Cohorts) == 0 {
		t.Fatal("no cohorts")
	}
	got.Cohorts[0].Repeat[0] = -1 // a caller's change must not reach the next call
	again := a.Metrics()
	fresh := *a
	fresh.early = nil
	want := fresh.Metrics()
	if !reflect.DeepEqual(again, want) {
		t.Fatalf("metrics from Analyze's cohorts:\n%+v\nworked out by Metrics:\n%+v", again.Cohorts, want.Cohorts)
	}
	// Profiles replaced by the caller: their own cohorts.
	replaced := *a
	replaced.Profiles = append([]Profile(nil), a.Profiles[:len(a.Profiles)/2]...)
	if _, ok := replaced.earlyCohorts(); ok {
		t.Fatal("cohorts of other profiles answered from Analyze's")
	}
	// Another date or zone: their own cohorts.
	later := *a
	later.AsOf += 40
	if _, ok := later.earlyCohorts(); ok {
		t.Fatal("cohorts as of another date answered from Analyze's")
	}
	east := *a
	east.Config.Location = time.FixedZone("east", 13*3600)
	if _, ok := east.earlyCohorts(); ok {
		t.Fatal("cohorts in another zone answered from Analyze's")
	}
}
