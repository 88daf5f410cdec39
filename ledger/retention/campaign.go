package retention

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
)

// DefaultHoldoutShare is the share of contacts held out as a control group
// unless told otherwise.
const DefaultHoldoutShare = 0.10

// heldOut decides, reproducibly, whether a contact is held out: a hash of
// the seed, the member, the kind and the lapse episode (the last purchase
// day) below share. The same member stays in the same group for the same
// kind all through one episode, however often the list is run; each kind
// and segment gets about share of its contacts held out.
func heldOut(seed, member string, kind ContactKind, episode Day, share float64) bool {
	if share <= 0 {
		return false
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", seed, member, kind, episode)
	return float64(h.Sum64()>>11)/float64(1<<53) < share
}

// GroupOutcome is what one group (contacted or held out) did in the days
// after its contact.
type GroupOutcome struct {
	Members   int     `json:"members"`
	Returned  int     `json:"returned"` // bought at least once in the window
	Rate      float64 `json:"return_rate"`
	RateLo    float64 `json:"return_rate_lo"` // Wilson 95%
	RateHi    float64 `json:"return_rate_hi"`
	Purchases int     `json:"purchase_days"`
	Spend     Money   `json:"spend"`
	// SpendPerMember is the mean spend per member in the window.
	SpendPerMember float64 `json:"spend_per_member"`
	spends         []float64
}

// Campaign compares contacted with held-out members over the days after
// each one's contact.
type Campaign struct {
	Days        int          `json:"days"`
	Kind        ContactKind  `json:"kind,omitempty"` // empty: all kinds
	Contacted   GroupOutcome `json:"contacted"`
	HeldOut     GroupOutcome `json:"held_out"`
	NotYet      int          `json:"not_yet_observable"`  // contacts whose window ends after the analysis date
	RateDiff    float64      `json:"return_rate_diff"`    // 0 when a group is empty (no comparison; interval -1 to 1)
	RateDiffLo  float64      `json:"return_rate_diff_lo"` // Newcombe's hybrid Wilson 95%
	RateDiffHi  float64      `json:"return_rate_diff_hi"`
	SpendDiff   float64      `json:"spend_per_member_diff"`    // 0 when a group is empty (no comparison)
	SpendDiffLo float64      `json:"spend_per_member_diff_lo"` // bootstrap 95%, 2000 resamples, fixed seed; 0 and 0 when a group is empty (no comparison: the verdict says so)
	SpendDiffHi float64      `json:"spend_per_member_diff_hi"`
	Verdict     string       `json:"verdict"`
}

// MinGroup is the smallest group Campaign draws a conclusion from.
const MinGroup = 30

// MeasureCampaign measures the contacts in recs (sent and held out; the
// first record per member and kind counts) against the purchases of the
// analysis: for each, the purchase days in the days after its day. Only
// contacts whose window ended by the analysis date are measured. kind ""
// takes every kind.
func (a *Analysis) MeasureCampaign(recs []ContactRecord, days int, kind ContactKind) (*Campaign, error) {
	if days < 1 {
		return nil, fmt.Errorf("%w: campaign window of %d days", ErrInvalid, days)
	}
	type key struct {
		m string
		k ContactKind
	}
	first := map[key]ContactRecord{}
	for _, r := range recs {
		if kind != "" && r.Kind != kind {
			continue
		}
		k := key{r.MemberID, r.Kind}
		if f, ok := first[k]; !ok || r.At.Before(f.At) {
			first[k] = r
		}
	}
	keys := make([]key, 0, len(first))
	for k := range first {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].m != keys[j].m {
			return keys[i].m < keys[j].m
		}
		return keys[i].k < keys[j].k
	})
	c := &Campaign{Days: days, Kind: kind}
	byID := make(map[string]*Profile, len(a.Profiles))
	for i := range a.Profiles {
		byID[a.Profiles[i].MemberID] = &a.Profiles[i]
	}
	for _, k := range keys {
		r := first[k]
		d := DayOf(r.At, a.Config.Location)
		if d+Day(days) > a.AsOf {
			c.NotYet++
			continue
		}
		g := &c.Contacted
		if r.HeldOut {
			g = &c.HeldOut
		}
		g.Members++
		var spend Money
		n := 0
		if p, ok := byID[r.MemberID]; ok {
			for i, pd := range p.days {
				if pd > d && pd <= d+Day(days) {
					n++
					spend += p.spend[i]
				}
			}
		}
		if n > 0 {
			g.Returned++
		}
		g.Purchases += n
		g.Spend += spend
		g.spends = append(g.spends, float64(spend))
	}
	for _, g := range []*GroupOutcome{&c.Contacted, &c.HeldOut} {
		if g.Members > 0 {
			g.Rate = float64(g.Returned) / float64(g.Members)
			g.SpendPerMember = float64(g.Spend) / float64(g.Members)
		}
		g.RateLo, g.RateHi = Wilson(g.Returned, g.Members)
	}
	c.RateDiff = c.Contacted.Rate - c.HeldOut.Rate
	c.RateDiffLo, c.RateDiffHi = newcombe(c.Contacted, c.HeldOut)
	c.SpendDiff = c.Contacted.SpendPerMember - c.HeldOut.SpendPerMember
	c.SpendDiffLo, c.SpendDiffHi = bootstrapDiff(c.Contacted.spends, c.HeldOut.spends, 2000)
	if c.Contacted.Members == 0 || c.HeldOut.Members == 0 {
		// No comparison: a difference against an empty group would read
		// as a finding (the verdict says why there is none).
		c.RateDiff, c.SpendDiff = 0, 0
	}
	switch {
	case c.Contacted.Members < MinGroup || c.HeldOut.Members < MinGroup:
		c.Verdict = fmt.Sprintf("too small to tell: %d contacted and %d held out measured; at least %d in each group are needed", c.Contacted.Members, c.HeldOut.Members, MinGroup)
	case c.RateDiffLo > 0:
		c.Verdict = fmt.Sprintf("contacting brought members back: return rate +%.1f points (95%% interval %+.1f to %+.1f)", 100*c.RateDiff, 100*c.RateDiffLo, 100*c.RateDiffHi)
	case c.RateDiffHi < 0:
		c.Verdict = fmt.Sprintf("contacted members came back less: return rate %.1f points (95%% interval %+.1f to %+.1f)", 100*c.RateDiff, 100*c.RateDiffLo, 100*c.RateDiffHi)
	default:
		c.Verdict = fmt.Sprintf("cannot tell: the return rate differs by %+.1f points, and the 95%% interval (%+.1f to %+.1f) includes no effect", 100*c.RateDiff, 100*c.RateDiffLo, 100*c.RateDiffHi)
	}
	return c, nil
}

// Wilson is the Wilson score 95% interval of k successes in n trials;
// (0, 1) when n is 0.
func Wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	const z = 1.959963984540054
	p, nn := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nn
	mid := (p + z*z/(2*nn)) / den
	half := z / den * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn))
	return math.Max(0, mid-half), math.Min(1, mid+half)
}

// newcombe is Newcombe's hybrid score interval (method 10) for the
// difference of two proportions, from each group's Wilson interval.
func newcombe(a, b GroupOutcome) (lo, hi float64) {
	if a.Members == 0 || b.Members == 0 {
		return -1, 1
	}
	d := a.Rate - b.Rate
	lo = d - math.Sqrt(sq(a.Rate-a.RateLo)+sq(b.RateHi-b.Rate))
	hi = d + math.Sqrt(sq(a.RateHi-a.Rate)+sq(b.Rate-b.RateLo))
	return lo, hi
}

func sq(v float64) float64 { return v * v }

// bootstrapDiff is the percentile bootstrap 95% interval of mean(x) -
// mean(y), resampling each group; the seed is fixed so reports repeat.
// With an empty group there is no comparison: 0, 0 (an infinite bound
// made report.json and report campaign --format json fail: JSON has no
// infinity, and the text printed the bound as a garbled number).
func bootstrapDiff(x, y []float64, n int) (lo, hi float64) {
	if len(x) == 0 || len(y) == 0 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(1, 2))
	mean := func(v []float64) float64 {
		s := 0.0
		for range v {
			s += v[rng.IntN(len(v))]
		}
		return s / float64(len(v))
	}
	diffs := make([]float64, n)
	for i := range diffs {
		diffs[i] = mean(x) - mean(y)
	}
	sort.Float64s(diffs)
	return diffs[int(0.025*float64(n))], diffs[int(0.975*float64(n))-1]
}

// Conclusive reports whether the campaign says something: both groups
// have at least MinGroup measured members and the 95% interval of the
// return-rate difference excludes zero.
func (c *Campaign) Conclusive() bool {
	return c.Contacted.Members >= MinGroup && c.HeldOut.Members >= MinGroup && (c.RateDiffLo > 0 || c.RateDiffHi < 0)
}

// MeasuredUplift is the uplift sum fed with a campaign's measured
// return-rate difference instead of an assumed share: the extra share of
// contacted members who came back is taken as the share of customers who
// buy ExtraPurchases more a year. Lo and Hi are the same sum at the ends
// of the difference's 95% interval (a negative end counts as no gain).
type MeasuredUplift struct {
	ShareBP    int64  `json:"share_bp"` // measured difference in basis points (0 when negative)
	ShareLoBP  int64  `json:"share_lo_bp"`
	ShareHiBP  int64  `json:"share_hi_bp"`
	Uplift     Uplift `json:"uplift"`
	Lo         Uplift `json:"uplift_lo"`
	Hi         Uplift `json:"uplift_hi"`
	Conclusive bool   `json:"conclusive"` // Campaign.Conclusive
	Verdict    string `json:"verdict"`    // the campaign's own words
}

// shareBP turns a share into basis points clamped to 0..10000.
func shareBP(v float64) int64 {
	return int64(math.Round(10000 * math.Min(1, math.Max(0, v))))
}

// Project does the uplift sum of in with the campaign's measured share in
// place of in.ShareBP (ignored). It does not judge: Conclusive and
// Verdict say whether the measurement supports the figure.
func (c *Campaign) Project(in UpliftInput) (MeasuredUplift, error) {
	m := MeasuredUplift{ShareBP: shareBP(c.RateDiff), ShareLoBP: shareBP(c.RateDiffLo), ShareHiBP: shareBP(c.RateDiffHi),
		Conclusive: c.Conclusive(), Verdict: c.Verdict}
	for _, x := range []struct {
		bp  int64
		out *Uplift
	}{{m.ShareBP, &m.Uplift}, {m.ShareLoBP, &m.Lo}, {m.ShareHiBP, &m.Hi}} {
		in.ShareBP = x.bp
		u, err := ComputeUplift(in)
		if err != nil {
			return MeasuredUplift{}, err
		}
		*x.out = u
	}
	return m, nil
}
