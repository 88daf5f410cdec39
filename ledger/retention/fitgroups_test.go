package retention_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
	"github.com/loyalty-terminal/loyalty/ledger/retention/retentiontest"
)

// simulatedMembers draws n members from a BG/NBD process, each purchase
// on its own day, up to end.
func simulatedMembers(n int, end time.Time) []retention.Member {
	cs := bgnbd.Simulate(rand.NewPCG(11, 12), bgnbd.Params{R: 0.9, Alpha: 4, A: 0.8, B: 3}, n, 104, 1.0/7)
	ms := make([]retention.Member, len(cs))
	for i, c := range cs {
		first := end.Add(-time.Duration(c.T*7*24) * time.Hour)
		ms[i].ID = fmt.Sprintf("m%07d", i)
		for k := 0; k <= c.X; k++ {
			off := 0.0
			if c.X > 0 {
				off = c.Tx * 7 * float64(k) / float64(c.X)
			}
			ms[i].Purchases = append(ms[i].Purchases, retention.Purchase{SaleID: fmt.Sprint(k), At: first.Add(time.Duration(off*24) * time.Hour), ClockTrusted: true, Amount: 100})
		}
	}
	return ms
}

// TestAnalyzeFitIsFitParams: Analyze fits the buyers' summaries folded
// by their keys in whole days (bgnbd.FitGrouped); the fit is the one
// FitParams makes of the summaries member by member, to the bit: on a
// population large enough for the fit's warm start, on the generated
// chain, and with a member whose purchases lie too far apart for a key
// (then FitParams folds them itself).
func TestAnalyzeFitIsFitParams(t *testing.T) {
	end := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	far := retention.Member{ID: "zz-far", Purchases: []retention.Purchase{
		{SaleID: "1", At: time.Date(-4000, 1, 1, 0, 0, 0, 0, time.UTC), ClockTrusted: true, Amount: 100},
		{SaleID: "2", At: end.AddDate(0, 0, -3), ClockTrusted: true, Amount: 100},
	}}
	for _, tc := range []struct {
		name string
		ms   []retention.Member
		asOf time.Time
	}{
		{"simulated", simulatedMembers(60_000, end), end},
		{"generated", retentiontest.Generate(1).Members(), retentiontest.End},
		{"one summary beyond the keys", append(simulatedMembers(2_000, end), far), end},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := retention.Analyze(tc.ms, tc.asOf, nil)
			if err != nil {
				t.Fatal(err)
			}
			var cs []bgnbd.Customer
			for i := range a.Profiles {
				if a.Profiles[i].Rhythm.PurchaseDays > 0 {
					cs = append(cs, a.Customer(&a.Profiles[i]))
				}
			}
			want, err := bgnbd.FitParams(cs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.Model == nil || !reflect.DeepEqual(*a.Model, want) {
				t.Fatalf("Analyze's fit %+v (%s)\nFitParams'      %+v", a.Model, a.ModelError, want)
			}
			if tc.name == "simulated" && want.Distinct < 20_000 {
				t.Errorf("%d distinct summaries: the fit's warm start is not exercised", want.Distinct)
			}
		})
	}
}
