package retention_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// simulateCampaigns builds runs campaigns of n members each (ids prefixed
// by the run) in one analysis: every member bought once on 2026-01-05, was
// contacted (or held out, every tenth) on 2026-02-01, and comes back
// within 30 days with probability base (held out) or base+uplift
// (contacted), spending 20.00.
func simulateCampaigns(t *testing.T, runs, n int, base, uplift float64) (*retention.Analysis, [][]retention.ContactRecord) {
	t.Helper()
	var ms []retention.Member
	recs := make([][]retention.ContactRecord, runs)
	for run := range runs {
		rng := rand.New(rand.NewPCG(uint64(run+1), 1))
		for i := range n {
			id := fmt.Sprintf("r%02dc%05d", run, i)
			m := retention.Member{ID: id, Purchases: []retention.Purchase{buy(id+"a", "2026-01-05", 2000)}}
			held := i%10 == 0
			p := base
			if !held {
				p += uplift
			}
			if rng.Float64() < p {
				back := buy(id+"b", "2026-02-01", 2000)
				back.At = back.At.AddDate(0, 0, 1+rng.IntN(30))
				m.Purchases = append(m.Purchases, back)
			}
			ms = append(ms, m)
			recs[run] = append(recs[run], retention.ContactRecord{MemberID: id, Kind: retention.ContactSleeping, At: day("2026-02-01"), HeldOut: held})
		}
	}
	a, err := retention.Analyze(ms, day("2026-03-15"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, recs
}

// TestCampaignRecoversInjectedUplift: over 20 simulated campaigns each,
// a known uplift lies inside the measured 95% intervals (rate and spend)
// about 95% of the time and the verdict says contacting worked; with no
// uplift the interval covers zero about 95% of the time; small groups are
// too small to tell. Seeds are fixed, so the counts are exact.
func TestCampaignRecoversInjectedUplift(t *testing.T) {
	const runs = 20
	for _, tc := range []struct {
		name     string
		n        int
		uplift   float64
		verdict  string
		minRight int // runs with the verdict
	}{
		{"uplift of 15 points", 2000, 0.15, "contacting brought members back", 18},
		{"no uplift", 2000, 0, "cannot tell", 17},
		{"too few held out", 200, 0.15, "too small to tell", runs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			right, rateIn, spendIn := 0, 0, 0
			a, recs := simulateCampaigns(t, runs, tc.n, 0.25, tc.uplift)
			for seed := range runs {
				c, err := a.MeasureCampaign(recs[seed], 30, "")
				if err != nil {
					t.Fatal(err)
				}
				if c.Contacted.Members+c.HeldOut.Members != tc.n || c.HeldOut.Members != tc.n/10 {
					t.Fatalf("groups %d + %d", c.Contacted.Members, c.HeldOut.Members)
				}
				if strings.HasPrefix(c.Verdict, tc.verdict) {
					right++
				}
				if c.RateDiffLo <= tc.uplift && tc.uplift <= c.RateDiffHi {
					rateIn++
				}
				if spend := tc.uplift * 2000; c.SpendDiffLo <= spend && spend <= c.SpendDiffHi {
					spendIn++
				}
				if seed == 0 {
					t.Logf("%s: %s; spend per member %+.0f (%.0f..%.0f)", tc.name, c.Verdict, c.SpendDiff, c.SpendDiffLo, c.SpendDiffHi)
				}
			}
			if right < tc.minRight {
				t.Errorf("verdict %q in %d of %d runs, want at least %d", tc.verdict, right, runs, tc.minRight)
			}
			if rateIn < 17 || spendIn < 17 {
				t.Errorf("true uplift inside the 95%% interval in %d (rate) and %d (spend) of %d runs, want at least 17", rateIn, spendIn, runs)
			}
			t.Logf("%s: verdict right %d/%d, rate interval covers the truth %d/%d, spend %d/%d", tc.name, right, runs, rateIn, runs, spendIn, runs)
		})
	}
}

func TestWilson(t *testing.T) {
	// Hand values: 0 of 10 -> 0..0.2775; 5 of 10 -> 0.2366..0.7634.
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{{0, 10, 0, 0.2775}, {5, 10, 0.2366, 0.7634}, {0, 0, 0, 1}} {
		lo, hi := retention.Wilson(tc.k, tc.n)
		if math.Abs(lo-tc.lo) > 1e-4 || math.Abs(hi-tc.hi) > 1e-4 {
			t.Errorf("Wilson(%d,%d) = %.4f..%.4f, want %.4f..%.4f", tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
}

// TestCampaignProject: the measured difference and its interval become
// the share of the uplift sum; a negative end counts as no gain; a
// conclusive measurement says so and a small one does not.
func TestCampaignProject(t *testing.T) {
	a, recs := simulateCampaigns(t, 1, 2000, 0.25, 0.15)
	c, err := a.MeasureCampaign(recs[0], 30, "")
	if err != nil {
		t.Fatal(err)
	}
	in := retention.UpliftInput{Customers: 150, PurchasesPerYear: 4, PerPurchase: 20000, ShareBP: 9999}
	m, err := c.Project(in)
	if err != nil {
		t.Fatal(err)
	}
	bp := int64(math.Round(10000 * c.RateDiff))
	if m.ShareBP != bp || !m.Conclusive || m.Verdict != c.Verdict {
		t.Errorf("projection %+v, want share %d bp, conclusive", m, bp)
	}
	in.ShareBP = bp
	want, _ := retention.ComputeUplift(in)
	if m.Uplift != want || !(m.Lo.ExtraRevenue < m.Uplift.ExtraRevenue && m.Uplift.ExtraRevenue < m.Hi.ExtraRevenue) {
		t.Errorf("uplift %+v (lo %+v hi %+v), want %+v between its bounds", m.Uplift, m.Lo, m.Hi, want)
	}
	// 150 customers x share x 20000: the sum itself, checked by hand.
	if m.Uplift.ExtraRevenue != retention.Money((150*bp*20000+5000)/10000) {
		t.Errorf("extra revenue %d", m.Uplift.ExtraRevenue)
	}
	a, recs = simulateCampaigns(t, 1, 200, 0.25, 0)
	c, err = a.MeasureCampaign(recs[0], 30, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err = c.Project(in)
	if err != nil {
		t.Fatal(err)
	}
	if m.Conclusive || m.ShareLoBP != 0 || m.Lo.ExtraRevenue != 0 || !strings.HasPrefix(m.Verdict, "too small to tell") {
		t.Errorf("small campaign: %+v, want inconclusive with the low end at no gain", m)
	}
}

// TestCampaignWithAnEmptyGroup: right after the first contacts (no one held
// out yet, or none measurable) the campaign still encodes as JSON (the
// spend interval was -Inf..+Inf, and report.json failed with "json:
// unsupported value: -Inf").
func TestCampaignWithAnEmptyGroup(t *testing.T) {
	m := retention.Member{ID: "m1", Purchases: []retention.Purchase{buy("s1", "2026-01-05", 2000), buy("s2", "2026-02-10", 2000)}}
	a, err := retention.Analyze([]retention.Member{m}, day("2026-03-15"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.MeasureCampaign([]retention.ContactRecord{{MemberID: "m1", Kind: retention.ContactSleeping, At: day("2026-02-01")}}, 30, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Contacted.Members != 1 || c.HeldOut.Members != 0 {
		t.Fatalf("groups %+v / %+v", c.Contacted, c.HeldOut)
	}
	if c.SpendDiffLo != 0 || c.SpendDiffHi != 0 {
		t.Errorf("spend interval %v..%v with an empty group, want 0..0", c.SpendDiffLo, c.SpendDiffHi)
	}
	// No difference against a group that is not there: a point estimate
	// outside its own interval read as a finding.
	if c.SpendDiff != 0 || c.RateDiff != 0 || c.RateDiffLo != -1 || c.RateDiffHi != 1 || !strings.HasPrefix(c.Verdict, "too small to tell") {
		t.Errorf("with an empty group: spend diff %v, rate diff %v (%v..%v), verdict %q", c.SpendDiff, c.RateDiff, c.RateDiffLo, c.RateDiffHi, c.Verdict)
	}
	if _, err := json.Marshal(c); err != nil {
		t.Fatalf("campaign with an empty group does not encode: %v", err)
	}
}
