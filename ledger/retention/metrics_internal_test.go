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
