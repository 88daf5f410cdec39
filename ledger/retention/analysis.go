package retention

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// Rhythm is a member's own purchase rhythm. Intervals are in days between
// distinct purchase days; with fewer than two purchase days they are zero
// and HasInterval is false. Its dates as text (FirstDate, LastDate,
// ExpectedNextDate) are formatted when asked for, not kept: an analysis
// holds a rhythm per member and per category, and a report writes them
// once (its JSON is the same: see MarshalJSON).
type Rhythm struct {
	PurchaseDays   int     `json:"purchase_days"`
	First          Day     `json:"-"`
	Last           Day     `json:"-"`
	HasInterval    bool    `json:"has_interval"`
	MeanInterval   float64 `json:"mean_interval_days"`
	MedianInterval float64 `json:"median_interval_days"`
	// ExpectedNext is Last plus the mean interval, rounded to a day; zero
	// without an interval.
	ExpectedNext Day `json:"-"`
}

// FirstDate is First as YYYY-MM-DD, empty without a purchase day.
func (r Rhythm) FirstDate() string {
	if r.PurchaseDays <= 0 {
		return ""
	}
	return r.First.String()
}

// LastDate is Last as YYYY-MM-DD, empty without a purchase day.
func (r Rhythm) LastDate() string {
	if r.PurchaseDays <= 0 {
		return ""
	}
	return r.Last.String()
}

// ExpectedNextDate is ExpectedNext as YYYY-MM-DD, empty without an
// interval.
func (r Rhythm) ExpectedNextDate() string {
	if !r.HasInterval {
		return ""
	}
	return r.ExpectedNext.String()
}

// rhythmJSON is a rhythm as JSON carries it, with its dates as text.
type rhythmJSON struct {
	PurchaseDays     int     `json:"purchase_days"`
	FirstDate        string  `json:"first"`
	LastDate         string  `json:"last"`
	HasInterval      bool    `json:"has_interval"`
	MeanInterval     float64 `json:"mean_interval_days"`
	MedianInterval   float64 `json:"median_interval_days"`
	ExpectedNextDate string  `json:"expected_next,omitempty"`
}

// MarshalJSON writes the rhythm with its dates as text: purchase_days,
// first, last, has_interval, mean_interval_days, median_interval_days and
// expected_next (when there is an interval).
func (r Rhythm) MarshalJSON() ([]byte, error) {
	return json.Marshal(rhythmJSON{PurchaseDays: r.PurchaseDays, FirstDate: r.FirstDate(), LastDate: r.LastDate(), HasInterval: r.HasInterval,
		MeanInterval: r.MeanInterval, MedianInterval: r.MedianInterval, ExpectedNextDate: r.ExpectedNextDate()})
}

// UnmarshalJSON reads what MarshalJSON writes; an empty date is day 0.
func (r *Rhythm) UnmarshalJSON(b []byte) error {
	var j rhythmJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := Rhythm{PurchaseDays: j.PurchaseDays, HasInterval: j.HasInterval, MeanInterval: j.MeanInterval, MedianInterval: j.MedianInterval}
	for _, d := range []struct {
		text string
		day  *Day
	}{{j.FirstDate, &out.First}, {j.LastDate, &out.Last}, {j.ExpectedNextDate, &out.ExpectedNext}} {
		if d.text == "" {
			continue
		}
		day, ok := parseDay(d.text)
		if !ok {
			return fmt.Errorf("%w: rhythm date %q", ErrInvalid, d.text)
		}
		*d.day = day
	}
	*r = out
	return nil
}

// parseDay reads a date as Day.AppendDate writes it: YYYY-MM-DD, the
// year signed and longer outside years 0 to 9999 (time.Parse reads only
// four-digit years).
func parseDay(s string) (Day, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	i := strings.IndexByte(s, '-')
	if i < 4 || len(s) != i+6 || s[i+3] != '-' || i > 4 && s[0] == '0' || neg && s[:i] == "0000" {
		return 0, false // not as AppendDate writes it
	}
	y, err1 := strconv.Atoi(s[:i])
	m, err2 := strconv.Atoi(s[i+1 : i+3])
	d, err3 := strconv.Atoi(s[i+4:])
	if err1 != nil || err2 != nil || err3 != nil || s[0] == '+' || s[i+1] == '+' || s[i+4] == '+' {
		return 0, false
	}
	if neg {
		y = -y
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if y2, m2, d2 := t.Date(); y2 != y || int(m2) != m || d2 != d {
		return 0, false // 2023-02-30 and the like
	}
	return DayOf(t, time.UTC), true
}

// RhythmOf computes the rhythm of sorted distinct purchase days.
func RhythmOf(days []Day) Rhythm {
	r, _ := rhythmOf(days, nil)
	return r
}

// rhythmOf is RhythmOf with scratch space for the gaps, returned for the
// next call.
func rhythmOf(days []Day, gaps []float64) (Rhythm, []float64) {
	var r Rhythm
	r.PurchaseDays = len(days)
	if len(days) == 0 {
		return r, gaps
	}
	r.First, r.Last = days[0], days[len(days)-1]
	if len(days) < 2 {
		return r, gaps
	}
	gaps = gaps[:0]
	for i := 1; i < len(days); i++ {
		gaps = append(gaps, float64(days[i]-days[i-1]))
	}
	r.HasInterval = true
	r.MeanInterval = float64(r.Last-r.First) / float64(len(gaps))
	r.MedianInterval = medianOfGaps(gaps)
	r.ExpectedNext = r.Last + Day(math.Round(r.MeanInterval))
	return r, gaps
}

// medianOfGaps is medianInPlace of gaps between distinct sorted days
// (whole, positive, never NaN): most rhythms have a few, which an
// insertion sort orders faster than a selection set up for many.
func medianOfGaps(gaps []float64) float64 {
	n := len(gaps)
	if n == 0 || n > 12 {
		return medianInPlace(gaps)
	}
	for i := 1; i < n; i++ {
		for j := i; j > 0 && gaps[j] < gaps[j-1]; j-- {
			gaps[j], gaps[j-1] = gaps[j-1], gaps[j]
		}
	}
	if n%2 == 1 {
		return gaps[n/2]
	}
	return (gaps[n/2-1] + gaps[n/2]) / 2
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Segment is a member's lifecycle segment.
type Segment string

// Segments. VIP takes precedence over the purchase-count segments.
const (
	SegNone    Segment = "none"    // no usable purchase
	SegNew     Segment = "new"     // one purchase day
	SegSecond  Segment = "second"  // two purchase days
	SegRegular Segment = "regular" // three or more
	SegVIP     Segment = "vip"     // top Config.VIPShare of buyers by spend, with two or more purchase days
)

// Status is a member's activity status; one per member, the most severe.
type Status string

// Statuses from least to most severe.
const (
	StatusActive   Status = "active"
	StatusDue      Status = "due"      // past own mean interval plus the offset
	StatusSleeping Status = "sleeping" // by the configured sleeping rule
	StatusLost     Status = "lost"     // absent for many own intervals
)

// Profile is everything the analysis knows about one member.
type Profile struct {
	MemberID   string           `json:"member_id"`
	Name       string           `json:"name,omitempty"`
	Consent    bool             `json:"consent"`            // some channel as of the analysis
	Channels   []ChannelConsent `json:"channels,omitempty"` // channels consented to as of the analysis
	Birthday   string           `json:"birthday,omitempty"`
	Rhythm     Rhythm           `json:"rhythm"`
	Categories CategoryRhythms  `json:"categories,omitempty"`
	Spend      Money            `json:"spend"`
	FirstSpend Money            `json:"first_spend"`
	Segment    Segment          `json:"segment"`
	Status     Status           `json:"status"`
	DaysSince  int              `json:"days_since_last"`
	PAlive     float64          `json:"p_alive"`            // NaN-free: 0 when no model
	PNone      float64          `json:"p_no_purchase"`      // in the sleeping rule's window; 0 when no model
	Expected   float64          `json:"expected_purchases"` // in the sleeping rule's window; 0 when no model
	Value      string           `json:"value"`              // "high", "mid", "low"
	// history is the cleaned history's days and spends (its categories
	// are dropped once the category rhythms are made).
	days  []Day
	spend []Money
}

// history is p's cleaned history, without its categories.
func (p *Profile) history() History { return History{Days: p.days, Spend: p.spend} }

// Customer is p's BG/NBD summary as of the analysis: purchase days less
// one, and the weeks from the first purchase day to the last and to the
// analysis date; the zero Customer for a member without a purchase day.
func (a *Analysis) Customer(p *Profile) bgnbd.Customer { return customerOf(&p.Rhythm, a.AsOf) }

// customerOf is the BG/NBD summary of rhythm r as of asOf.
func customerOf(r *Rhythm, asOf Day) bgnbd.Customer {
	if r.PurchaseDays <= 0 {
		return bgnbd.Customer{} // no purchase: nothing to summarise
	}
	return bgnbd.Customer{X: r.PurchaseDays - 1, Tx: float64(r.Last-r.First) / 7, T: float64(asOf-r.First) / 7}
}

// Analysis is the result of Analyze.
type Analysis struct {
	AsOf       Day        `json:"-"`
	AsOfDate   string     `json:"as_of"`
	Config     Config     `json:"-"`
	Sleeping   SleepRule  `json:"sleeping_rule"` // the rule actually applied
	Profiles   []Profile  `json:"members"`
	Excluded   Exclusions `json:"excluded"`
	Model      *bgnbd.Fit `json:"model,omitempty"`
	ModelError string     `json:"model_error,omitempty"`
	// Rejected is a degenerate fit (bgnbd.ErrDegenerate), kept so the
	// report can show what the optimiser found; it is not used.
	Rejected *bgnbd.Fit `json:"rejected_model,omitempty"`
	// RuleNote says, when the configured sleeping rule could not be
	// applied, why and which rule was used instead; empty otherwise.
	RuleNote string `json:"rule_note,omitempty"`
	// PopulationMedianInterval is the median of members' mean intervals,
	// the fallback rhythm for members with one purchase day.
	PopulationMedianInterval float64 `json:"population_median_interval_days"`
	// early holds the cohorts Analyze worked out beside the fit, which
	// needs none of them, for Metrics.
	early *earlyMetrics
}

// earlyMetrics are metrics worked out by Analyze, with the profiles, the
// date and the zone they were worked out from.
type earlyMetrics struct {
	profiles []Profile
	asOf     Day
	loc      *time.Location
	cohorts  []CohortCurve
}

// Analyze cleans every member's history as of asOf, computes rhythms,
// fits BG/NBD (weeks, purchase days), and assigns segments and statuses.
// A model that cannot be fitted is not fatal: ModelError says why and a
// model-based sleeping rule falls back to FallbackSleepRule.
func Analyze(members []Member, asOf time.Time, cfg *Config) (*Analysis, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	a := &Analysis{AsOf: DayOf(asOf, c.Location), Config: c}
	a.AsOfDate = a.AsOf.String()
	if err := uniqueIDs(members); err != nil {
		return nil, err
	}
	n := len(members)
	a.Profiles = make([]Profile, n)
	// Each member's profile depends on that member alone: the members are
	// split over the processors, each part with its own scratch space,
	// and the exclusions (counts) summed in part order. Each part lists
	// its mean intervals in the shared list from its first member on;
	// they are moved up behind the part before. Each member's BG/NBD
	// summary is noted as a key (predictor.keyOf).
	parts := partsFor(n)
	excluded := make([]Exclusions, parts)
	keys, intervals := make([]uint64, n), make([]float64, n)
	type listed struct{ lo, intervals int }
	lists := make([]listed, parts)
	inParts(n, parts, func(k, lo, hi int) {
		r := a.profileRange(members[lo:hi], a.Profiles[lo:hi], keys[lo:hi], intervals[lo:hi], asOf, &c)
		excluded[k], lists[k] = r.excluded, listed{lo, r.intervals}
	})
	withInterval := 0
	for k, ex := range excluded {
		a.Excluded.add(ex)
		l := lists[k]
		withInterval += copy(intervals[withInterval:], intervals[l.lo:l.lo+l.intervals])
	}
	intervals = intervals[:withInterval]
	// The members with the same summary take the same prediction and
	// count once in the fit, with their number: the distinct summaries
	// are found once, for both.
	pr := predictor{asOf: a.AsOf}
	which := pr.indexAll(keys)
	if pr.buyers == 0 {
		return nil, fmt.Errorf("%w: %d members, none with a purchase on or before %s (excluded: %+v)", ErrNoData, len(members), a.AsOfDate, a.Excluded)
	}
	grouped, grouping := pr.grouped(which), true
	var custs []bgnbd.Customer
	if pr.own > 0 {
		// A summary beyond the keys' range (purchases thousands of years
		// apart): the fit folds the summaries itself.
		grouping = false
		custs = make([]bgnbd.Customer, 0, pr.buyers)
		for i := range a.Profiles {
			if p := &a.Profiles[i]; p.Rhythm.PurchaseDays > 0 {
				custs = append(custs, customerOf(&p.Rhythm, a.AsOf))
			}
		}
	}
	// The fit runs beside what does not need it: the median interval,
	// segments and value tiers, and the cohorts' repeat curves (for
	// Metrics).
	type fitResult struct {
		fit bgnbd.Fit
		err error
	}
	fitted := make(chan fitResult, 1)
	go func() {
		var res fitResult
		if grouping {
			res.fit, res.err = bgnbd.FitGrouped(grouped, nil)
		} else {
			res.fit, res.err = bgnbd.FitParams(custs, nil)
		}
		fitted <- res
	}()
	a.PopulationMedianInterval = medianInPlace(intervals)
	a.assignSegments()
	a.early = &earlyMetrics{profiles: a.Profiles, asOf: a.AsOf, loc: a.Config.Location, cohorts: a.cohorts(cohortMonths)}
	res := <-fitted
	a.Sleeping = c.Sleeping
	if fit, err := res.fit, res.err; err != nil {
		a.ModelError = err.Error()
		if errors.Is(err, bgnbd.ErrDegenerate) {
			a.Rejected = &fit
		}
		if a.Sleeping.Kind == SleepPAlive || a.Sleeping.Kind == SleepPNone {
			want := a.Sleeping
			a.Sleeping = FallbackSleepRule.withDefaults()
			a.RuleNote = fmt.Sprintf("no usable model (%s): sleeping is %q instead of %q", a.ModelError, a.Sleeping, want)
		}
	} else {
		a.Model = &fit
	}
	window := float64(a.Sleeping.WindowDays)
	if window == 0 {
		window = float64(DefaultSleepRule.WindowDays)
	}
	setStatus := func(p *Profile) { p.Status = a.status(p) }
	if a.Model != nil {
		// The statuses are set in the same pass as the predictions they
		// read.
		pr.model, pr.horizon = a.Model.Params, window/7
		if err := pr.predictAll(a.Profiles, which, setStatus); err != nil {
			return nil, err
		}
		return a, nil
	}
	inParts(len(a.Profiles), partsFor(len(a.Profiles)), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			setStatus(&a.Profiles[i])
		}
	})
	return a, nil
}

// profileRange fills ps[i] from members[i] (cleaned history, rhythm,
// category rhythms, channels as of asOf and consent) and keys[i] with
// the key of its BG/NBD summary (predictor.keyOf), lists the mean
// intervals of those with one in intervals, in order, and returns what
// cleaning excluded and how many it listed. The channels are set here,
// in the parts over the processors, rather than in a pass of their own.
func (a *Analysis) profileRange(members []Member, ps []Profile, keys []uint64, intervals []float64, asOf time.Time, c *Config) rangeResult {
	var r rangeResult
	cl := newPopulationCleaner(asOf, c)
	cl.noCats = true // read by rh.categoriesOf below from cl.days
	var rh rhythms
	var ch channelSlab
	for i := range members {
		m := &members[i]
		h, ex := cl.clean(m)
		r.excluded.add(ex)
		p := &ps[i]
		if chs := ch.at(m, asOf); chs != nil {
			p.Channels, p.Consent = chs, true
		}
		// ps is freshly allocated (zero): fields are set one by one, not
		// copied in as a whole struct.
		p.MemberID, p.Name, p.Birthday, p.days, p.spend, p.Segment = m.ID, m.Name, m.Birthday, h.Days, h.Spend, SegNone
		p.Rhythm, rh.gaps = rhythmOf(h.Days, rh.gaps)
		if len(h.Days) > 0 {
			for _, s := range h.Spend {
				p.Spend += s
			}
			p.FirstSpend = h.Spend[0]
			p.DaysSince = int(a.AsOf - p.Rhythm.Last)
			p.Categories = rh.categoriesOf(cl.days, m.Purchases)
		}
		keys[i] = keyOf(&p.Rhythm, a.AsOf)
		if p.Rhythm.HasInterval {
			intervals[r.intervals] = p.Rhythm.MeanInterval
			r.intervals++
		}
	}
	return r
}

// rangeResult is what profileRange returns: the exclusions and the number
// of intervals listed.
type rangeResult struct {
	excluded  Exclusions
	intervals int
}

// channelSlab cuts members' channels from shared chunks rather than
// allocating them member by member (a third of the benchmark's population
// consents: most of a report's objects were these).
type channelSlab struct {
	scratch, slab []ChannelConsent
}

// at returns m's channels as of asOf, nil without any (as ChannelsAt
// gives).
func (cs *channelSlab) at(m *Member, asOf time.Time) []ChannelConsent {
	cs.scratch = m.appendChannelsAt(cs.scratch[:0], asOf)
	n := len(cs.scratch)
	if n == 0 {
		return nil
	}
	if len(cs.slab) < n {
		cs.slab = make([]ChannelConsent, max(n, 1024))
	}
	out := cs.slab[:n:n]
	cs.slab = cs.slab[n:]
	copy(out, cs.scratch)
	return out
}

// assignSegments sets purchase-count segments, value tiers (high = the top
// VIPShare of buyers by spend, ties broken by id so runs agree; mid = the
// next 30%; low = the rest) and VIPs: high-value members who came back (two
// or more purchase days). One large first basket makes a member high-value,
// not a VIP: they are still new, and the contact list's first-time message
// is the right one for them, so the row must not call them VIP.
func (a *Analysis) assignSegments() {
	// Spend first so the order compares ids only between equal spends;
	// ids are unique (Analyze checks), so the order is total.
	type key struct {
		spend Money
		i     int32
	}
	idx := make([]key, 0, len(a.Profiles))
	for i := range a.Profiles {
		p := &a.Profiles[i]
		switch {
		case p.Rhythm.PurchaseDays == 0:
			continue
		case p.Rhythm.PurchaseDays == 1:
			p.Segment = SegNew
		case p.Rhythm.PurchaseDays == 2:
			p.Segment = SegSecond
		default:
			p.Segment = SegRegular
		}
		idx = append(idx, key{p.Spend, int32(i)})
	}
	order := func(x, y key) int {
		if x.spend != y.spend {
			return cmp.Compare(y.spend, x.spend)
		}
		return strings.Compare(a.Profiles[x.i].MemberID, a.Profiles[y.i].MemberID)
	}
	vip := int(math.Ceil(a.Config.VIPShare * float64(len(idx))))
	mid := vip + int(math.Ceil(0.3*float64(len(idx))))
	// Only the tiers' edges matter, not the order within them: the first
	// mid by rank, then the first vip of those, by selection.
	if mid < len(idx) {
		nthFunc(idx, mid, order)
	}
	if vip < min(mid, len(idx)) {
		nthFunc(idx[:min(mid, len(idx))], vip, order)
	}
	for rank, k := range idx {
		p := &a.Profiles[k.i]
		switch {
		case rank < vip && p.Spend > 0:
			p.Value = "high"
			if p.Rhythm.PurchaseDays >= 2 {
				p.Segment = SegVIP
			}
		case rank < mid:
			p.Value = "mid"
		default:
			p.Value = "low"
		}
	}
}

// ownInterval is the member's mean interval, or the population's median
// for members with one purchase day.
func (a *Analysis) ownInterval(p *Profile) float64 {
	if p.Rhythm.HasInterval {
		return p.Rhythm.MeanInterval
	}
	return a.PopulationMedianInterval
}

// IsSleeping applies the analysis's sleeping rule to p.
func (a *Analysis) IsSleeping(p *Profile) bool {
	if p.Rhythm.PurchaseDays == 0 {
		return false
	}
	r := a.Sleeping
	switch r.Kind {
	case SleepFixed:
		return p.DaysSince > r.FixedDays
	case SleepIntervals:
		iv := a.ownInterval(p)
		return iv > 0 && float64(p.DaysSince) > r.Intervals*iv
	case SleepPAlive:
		return p.PAlive < r.Threshold
	case SleepPNone:
		if p.PNone > r.Threshold {
			return true
		}
		iv := a.ownInterval(p)
		return r.Intervals > 0 && iv > 0 && float64(p.DaysSince) > r.Intervals*iv
	}
	return false
}

func (a *Analysis) status(p *Profile) Status {
	if p.Rhythm.PurchaseDays == 0 {
		return StatusActive
	}
	iv := a.ownInterval(p)
	if iv > 0 && float64(p.DaysSince) > a.Config.LostIntervals*iv && p.DaysSince >= a.Config.LostMinDays {
		return StatusLost
	}
	if a.IsSleeping(p) {
		return StatusSleeping
	}
	if p.Rhythm.HasInterval && float64(p.DaysSince) >= p.Rhythm.MeanInterval+float64(a.Config.DueOffsetDays) {
		return StatusDue
	}
	return StatusActive
}

// Profile returns the profile of a member, or false.
func (a *Analysis) Profile(id string) (*Profile, bool) {
	for i := range a.Profiles {
		if a.Profiles[i].MemberID == id {
			return &a.Profiles[i], true
		}
	}
	return nil, false
}

// MatrixCell is one cell of the value-by-risk matrix.
type MatrixCell struct {
	Value   string `json:"value"`
	Status  Status `json:"status"`
	Members int    `json:"members"`
	Spend   Money  `json:"spend"`
}

// ValueRisk returns the value-by-risk matrix: for each value tier (high,
// mid, low) and status, how many members and how much past spend. The
// high-value sleeping and due cells are whom to call first.
func (a *Analysis) ValueRisk() []MatrixCell {
	values := [...]string{"high", "mid", "low"}
	statuses := [...]Status{StatusActive, StatusDue, StatusSleeping, StatusLost}
	cells := make([]MatrixCell, 0, len(values)*len(statuses))
	for _, v := range values {
		for _, s := range statuses {
			cells = append(cells, MatrixCell{Value: v, Status: s})
		}
	}
	// Counted in parts over the processors: counts and money add up the
	// same in any order.
	parts := partsFor(len(a.Profiles))
	type cell struct {
		members int
		spend   Money
	}
	counts := make([][len(values) * len(statuses)]cell, parts)
	inParts(len(a.Profiles), parts, func(k, lo, hi int) {
		for i := lo; i < hi; i++ {
			p := &a.Profiles[i]
			vi, si := valueIndex(p.Value), statusIndex(p.Status)
			if vi < 0 || si < 0 {
				continue
			}
			c := &counts[k][vi*len(statuses)+si]
			c.members++
			c.spend += p.Spend
		}
	})
	for k := range counts {
		for j, c := range counts[k] {
			cells[j].Members += c.members
			cells[j].Spend += c.spend
		}
	}
	return cells
}

// valueIndex is the index of v in ValueRisk's value tiers, or -1.
func valueIndex(v string) int {
	switch v {
	case "high":
		return 0
	case "mid":
		return 1
	case "low":
		return 2
	}
	return -1
}

// statusIndex is the index of s in ValueRisk's statuses, or -1.
func statusIndex(s Status) int {
	switch s {
	case StatusActive:
		return 0
	case StatusDue:
		return 1
	case StatusSleeping:
		return 2
	case StatusLost:
		return 3
	}
	return -1
}
