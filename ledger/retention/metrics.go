package retention

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Bucket is one bar of a histogram over [Lo, Hi).
type Bucket struct {
	Label string  `json:"label"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int     `json:"count"`
}

// CategoryStat is how often members buy in one category.
type CategoryStat struct {
	Category     string  `json:"category"`
	Buyers       int     `json:"buyers"`
	PurchaseDays int     `json:"purchase_days"`
	DaysPerBuyer float64 `json:"days_per_buyer"`
	MedianDays   float64 `json:"median_interval_days"` // median of members' mean intervals in this category
}

// CohortCurve is the repeat curve of one first-purchase cohort: Repeat[k]
// is the share of the cohort that had made a second purchase within k+1
// months of their first (only months fully observed by asOf).
type CohortCurve struct {
	Cohort  string    `json:"cohort"` // YYYY-MM of the first purchase
	Members int       `json:"members"`
	Repeat  []float64 `json:"repeat"`
}

// Metrics are the retention metrics of an analysis.
type Metrics struct {
	Members            int     `json:"members"`
	Buyers             int     `json:"buyers"`
	Repeaters          int     `json:"repeaters"`
	RepeatRatio        float64 `json:"repeat_ratio"` // repeaters / buyers
	Revenue            Money   `json:"revenue"`
	AvgBasketNew       Money   `json:"avg_basket_new"`       // first purchase day's spend
	AvgBasketReturning Money   `json:"avg_basket_returning"` // later purchase days' spend
	MedianIntervalDays float64 `json:"median_interval_days"` // over all gaps between purchase days, pooled (frequent buyers weigh most)
	// MemberIntervalDays is the typical customer's interval: the median of
	// each repeat buyer's own mean interval.
	MemberIntervalDays float64 `json:"member_median_interval_days"`
	// Within the same customers: repeat buyers' mean first basket, the
	// mean of their later baskets (each customer's own mean, then averaged
	// over customers), and the share whose first basket was smaller than
	// their own later average.
	RepeatFirstBasket  Money   `json:"repeat_buyers_first_basket"`
	RepeatLaterBasket  Money   `json:"repeat_buyers_later_basket"`
	RepeatFirstSmaller float64 `json:"repeat_buyers_first_smaller_share"`
	// RevenueLast12Months is the spend on purchase days in the 365 days
	// up to the analysis date: the base the uplift is measured against.
	RevenueLast12Months Money          `json:"revenue_last_12_months"`
	Intervals           []Bucket       `json:"intervals"`
	TopShare            float64        `json:"top_share"`          // share of buyers ...
	TopRevenueShare     float64        `json:"top_revenue_share"`  // ... and their share of revenue
	PurchasesPerYear    float64        `json:"purchases_per_year"` // per repeat buyer, from mean interval
	Segments            map[string]int `json:"segments"`
	Statuses            map[string]int `json:"statuses"`
	Categories          []CategoryStat `json:"categories,omitempty"`
	Cohorts             []CohortCurve  `json:"cohorts"`
	PAlive              []Bucket       `json:"p_alive"`
}

// intervalEdges are the histogram edges in days.
// The last edge stands for "no upper bound" (JSON has no infinity).
var intervalEdges = []float64{0, 7, 14, 30, 60, 90, 180, 365, openEdge}

const openEdge = 1e9

// Metrics computes the retention metrics. The cohorts' repeat curves of
// an analysis Analyze made are those it worked out beside the fit, from
// the profiles as it made them, while a.Profiles is still that slice and
// a.AsOf and a.Config.Location are unchanged: a caller that changes a
// profile in place (rather than replacing the slice) gets those curves.
func (a *Analysis) Metrics() Metrics {
	m := Metrics{Members: len(a.Profiles), Segments: map[string]int{}, Statuses: map[string]int{}, TopShare: a.Config.TopShare}
	for i := 0; i+1 < len(intervalEdges); i++ {
		lab := fmt.Sprintf("%g-%g d", intervalEdges[i], intervalEdges[i+1])
		if intervalEdges[i+1] == openEdge {
			lab = fmt.Sprintf("%g+ d", intervalEdges[i])
		}
		m.Intervals = append(m.Intervals, Bucket{Label: lab, Lo: intervalEdges[i], Hi: intervalEdges[i+1]})
	}
	for i := 0; i < 10; i++ {
		m.PAlive = append(m.PAlive, Bucket{Label: fmt.Sprintf("%.1f-%.1f", float64(i)/10, float64(i+1)/10), Lo: float64(i) / 10, Hi: float64(i+1) / 10})
	}
	// The cohorts read the profiles only: Analyze works them out beside
	// the fit; otherwise they are worked out beside the rest.
	cohorts := make(chan []CohortCurve, 1)
	if cs, ok := a.earlyCohorts(); ok {
		cohorts <- cs
	} else {
		go func() { cohorts <- a.cohorts(cohortMonths) }()
	}
	// The profiles are summed in contiguous parts over the processors and
	// the parts merged in order: counts and money add up the same in any
	// order, the lists are only selected from, and the two sums of floats
	// are added member by member in member order, as one pass adds them,
	// so the metrics are the same on any number of processors.
	n := len(a.Profiles)
	parts := partsFor(n)
	sums := make([]metricSums, parts)
	// Each part's lists are cut from shared ones at its first member,
	// then moved up behind the part before.
	spends, rates, firsts, laters := make([]Money, n), make([]float64, n), make([]Money, n), make([]float64, n)
	inParts(n, parts, func(k, lo, hi int) {
		s := &sums[k]
		s.spends, s.rates, s.firsts, s.laterMeans = spends[lo:lo:hi], rates[lo:lo:hi], firsts[lo:lo:hi], laters[lo:lo:hi]
		s.add(a, a.Profiles[lo:hi])
	})
	spends, rates, firsts, laters = spends[:0], rates[:0], firsts[:0], laters[:0]
	var newSum, retSum Money
	var firstSum, laterSum float64
	var smaller, retDays int
	var gaps gapCounts
	var cats []catAgg
	catIdx := map[string]int{}
	var segs [len(segmentOrder)]int
	var stats [len(statusOrder)]int
	for k := range sums {
		s := &sums[k]
		for i, n := range s.segments {
			segs[i] += n
		}
		for i, n := range s.statuses {
			stats[i] += n
		}
		for v, n := range s.otherSegments {
			m.Segments[v] += n
		}
		for v, n := range s.otherStatuses {
			m.Statuses[v] += n
		}
		m.Buyers += s.buyers
		m.Repeaters += s.repeaters
		m.Revenue += s.revenue
		m.RevenueLast12Months += s.last12
		newSum += s.newSum
		retSum += s.retSum
		retDays += s.retDays
		smaller += s.smaller
		for i := range s.firsts {
			firstSum += float64(s.firsts[i])
			laterSum += s.laterMeans[i]
		}
		for b, n := range s.pAlive {
			m.PAlive[b].Count += n
		}
		spends, rates = append(spends, s.spends...), append(rates, s.rates...)
		gaps.merge(&s.gaps)
		for i := range s.cats {
			cats = mergeCat(cats, catIdx, &s.cats[i])
		}
	}
	for i, n := range segs {
		if n > 0 {
			m.Segments[string(segmentOrder[i])] += n
		}
	}
	for i, n := range stats {
		if n > 0 {
			m.Statuses[string(statusOrder[i])] += n
		}
	}
	gaps.count(m.Intervals)
	if m.Buyers > 0 {
		m.RepeatRatio = float64(m.Repeaters) / float64(m.Buyers)
		m.AvgBasketNew = divRound(newSum, int64(m.Buyers))
	}
	if retDays > 0 {
		m.AvgBasketReturning = divRound(retSum, int64(retDays))
	}
	m.MedianIntervalDays = gaps.median()
	m.MemberIntervalDays = a.PopulationMedianInterval
	if m.Repeaters > 0 {
		m.RepeatFirstBasket = Money(math.Round(firstSum / float64(m.Repeaters)))
		m.RepeatLaterBasket = Money(math.Round(laterSum / float64(m.Repeaters)))
		m.RepeatFirstSmaller = float64(smaller) / float64(m.Repeaters)
	}
	m.PurchasesPerYear = medianInPlace(rates)
	// The top share's spend: the largest top spends, found by selection.
	top := int(math.Ceil(a.Config.TopShare * float64(len(spends))))
	var topSum Money
	if top > 0 {
		nth(spends, len(spends)-top)
		for _, s := range spends[len(spends)-top:] {
			topSum += s
		}
	}
	if m.Revenue > 0 {
		m.TopRevenueShare = float64(topSum) / float64(m.Revenue)
	}
	for i := range cats {
		cs := &cats[i].stat
		cs.DaysPerBuyer = float64(cs.PurchaseDays) / float64(cs.Buyers)
		cs.MedianDays = medianInPlace(cats[i].ivs)
		m.Categories = append(m.Categories, *cs)
	}
	slices.SortFunc(m.Categories, func(x, y CategoryStat) int { return strings.Compare(x.Category, y.Category) })
	m.Cohorts = <-cohorts
	return m
}

// segmentOrder and statusOrder are the segments and statuses Metrics
// counts in arrays, in the order of countSegment and statusIndex; a value
// outside them (a profile not made by Analyze) is counted by name.
var (
	segmentOrder = [...]Segment{SegNone, SegNew, SegSecond, SegRegular, SegVIP}
	statusOrder  = [...]Status{StatusActive, StatusDue, StatusSleeping, StatusLost}
)

// catAgg is one category's figures as Metrics gathers them, with its
// members' mean intervals.
type catAgg struct {
	stat CategoryStat
	ivs  []float64
}

// metricSums is what Metrics gathers from one part of the profiles.
type metricSums struct {
	segments                     [len(segmentOrder)]int
	statuses                     [len(statusOrder)]int
	otherSegments, otherStatuses map[string]int
	buyers, repeaters            int
	revenue, last12              Money
	newSum, retSum               Money
	retDays, smaller             int
	// firsts and laterMeans are each repeat buyer's first basket and mean
	// later basket, in member order, for the merge to add up in order.
	firsts     []Money
	laterMeans []float64
	rates      []float64 // purchases a year of each repeat buyer
	spends     []Money   // each buyer's
	gaps       gapCounts
	pAlive     [10]int
	cats       []catAgg
	catIdx     map[string]int
}

// add gathers the figures of ps, in order. Its lists have room for one
// entry a profile.
func (s *metricSums) add(a *Analysis, ps []Profile) {
	for i := range ps {
		p := &ps[i]
		s.countSegment(p.Segment)
		if p.Rhythm.PurchaseDays == 0 {
			continue
		}
		s.countStatus(p.Status)
		s.buyers++
		s.revenue += p.Spend
		s.spends = append(s.spends, p.Spend)
		s.newSum += p.FirstSpend
		h := p.history()
		for i := 1; i < len(h.Days); i++ {
			s.retSum += h.Spend[i]
			s.retDays++
			s.gaps.add(int64(h.Days[i]) - int64(h.Days[i-1]))
		}
		for i, d := range h.Days {
			if d > a.AsOf-365 {
				s.last12 += h.Spend[i]
			}
		}
		if p.Rhythm.HasInterval {
			s.repeaters++
			s.rates = append(s.rates, 365.25/p.Rhythm.MeanInterval)
			var later Money
			for _, sp := range h.Spend[1:] {
				later += sp
			}
			laterMean := float64(later) / float64(len(h.Spend)-1)
			s.firsts = append(s.firsts, h.Spend[0])
			s.laterMeans = append(s.laterMeans, laterMean)
			if float64(h.Spend[0]) < laterMean {
				s.smaller++
			}
		}
		if a.Model != nil {
			s.pAlive[min(int(p.PAlive*10), 9)]++
		}
		for k := range p.Categories {
			s.addCategory(&p.Categories[k])
		}
	}
}

func (s *metricSums) countSegment(v Segment) {
	i := -1
	switch v {
	case SegNone:
		i = 0
	case SegNew:
		i = 1
	case SegSecond:
		i = 2
	case SegRegular:
		i = 3
	case SegVIP:
		i = 4
	}
	if i >= 0 {
		s.segments[i]++
		return
	}
	if s.otherSegments == nil {
		s.otherSegments = map[string]int{}
	}
	s.otherSegments[string(v)]++
}

func (s *metricSums) countStatus(v Status) {
	if i := statusIndex(v); i >= 0 {
		s.statuses[i]++
		return
	}
	if s.otherStatuses == nil {
		s.otherStatuses = map[string]int{}
	}
	s.otherStatuses[string(v)]++
}

// addCategory counts one member's rhythm in a category.
func (s *metricSums) addCategory(r *CategoryRhythm) {
	if s.catIdx == nil {
		s.catIdx = map[string]int{}
	}
	j := findCat(s.cats, s.catIdx, r.Category)
	if j < 0 {
		j = len(s.cats)
		s.catIdx[r.Category] = j
		s.cats = append(s.cats, catAgg{stat: CategoryStat{Category: r.Category}})
	}
	cs := &s.cats[j]
	cs.stat.Buyers++
	cs.stat.PurchaseDays += r.PurchaseDays
	if r.HasInterval {
		if len(cs.ivs) == cap(cs.ivs) {
			// Doubled, not append's quarter steps: a large
			// category's list would leave four times itself
			// behind.
			cs.ivs = slices.Grow(cs.ivs, max(64, len(cs.ivs)))
		}
		cs.ivs = append(cs.ivs, r.MeanInterval)
	}
}

// findCat is the index of category c in cats, or -1. A chain has few
// categories: found by a scan, by the map beyond linearCats.
func findCat(cats []catAgg, idx map[string]int, c string) int {
	if len(cats) <= linearCats {
		for i := range cats {
			if cats[i].stat.Category == c {
				return i
			}
		}
		return -1
	}
	if j, ok := idx[c]; ok {
		return j
	}
	return -1
}

// mergeCat adds a part's figures of one category into cats.
func mergeCat(cats []catAgg, idx map[string]int, c *catAgg) []catAgg {
	j := findCat(cats, idx, c.stat.Category)
	if j < 0 {
		idx[c.stat.Category] = len(cats)
		return append(cats, *c)
	}
	cs := &cats[j]
	cs.stat.Buyers += c.stat.Buyers
	cs.stat.PurchaseDays += c.stat.PurchaseDays
	cs.ivs = appendPart(cs.ivs, c.ivs)
	return cats
}

// appendPart appends a part's list to the lists before it: the first
// part's list is taken as it is.
func appendPart[T any](all, part []T) []T {
	if all == nil {
		return part
	}
	return append(all, part...)
}

// merge adds o's gaps to g.
func (g *gapCounts) merge(o *gapCounts) {
	g.n += o.n
	g.low = appendPart(g.low, o.low)
	g.high = appendPart(g.high, o.high)
	if len(o.byDays) > len(g.byDays) {
		g.byDays, o.byDays = o.byDays, g.byDays
	}
	for d, n := range o.byDays {
		g.byDays[d] += n
	}
}

// gapCounts holds the gaps between purchase days as counts per whole
// number of days: the histogram and the median need no list of every gap.
type gapCounts struct {
	n         int
	byDays    []int
	low, high []float64 // below 0 and beyond maxGapDays, as they come
}

// maxGapDays bounds the days counted one by one (about 2,800 years).
const maxGapDays = 1 << 20

func (g *gapCounts) add(d int64) {
	g.n++
	switch {
	case d < 0:
		g.low = append(g.low, float64(d))
	case d >= maxGapDays:
		g.high = append(g.high, float64(d))
	default:
		if int(d) >= len(g.byDays) {
			g.byDays = append(g.byDays, make([]int, max(int(d)+1, 2*len(g.byDays))-len(g.byDays))...)
		}
		g.byDays[d]++
	}
}

// count adds the gaps into the buckets they fall in.
func (g *gapCounts) count(bs []Bucket) {
	in := func(v float64, n int) {
		for b := range bs {
			if v >= bs[b].Lo && v < bs[b].Hi {
				bs[b].Count += n
			}
		}
	}
	for _, v := range g.low {
		in(v, 1)
	}
	for d, n := range g.byDays {
		if n > 0 {
			in(float64(d), n)
		}
	}
	for _, v := range g.high {
		in(v, 1)
	}
}

// at returns the k-th smallest gap (0-based).
func (g *gapCounts) at(k int) float64 {
	if k < len(g.low) {
		s := slices.Clone(g.low)
		slices.Sort(s)
		return s[k]
	}
	k -= len(g.low)
	for d, n := range g.byDays {
		if k < n {
			return float64(d)
		}
		k -= n
	}
	s := slices.Clone(g.high)
	slices.Sort(s)
	return s[k]
}

// median is median of every gap.
func (g *gapCounts) median() float64 {
	if g.n == 0 {
		return 0
	}
	if g.n%2 == 1 {
		return g.at(g.n / 2)
	}
	return (g.at(g.n/2-1) + g.at(g.n/2)) / 2
}

func divRound(sum Money, n int64) Money {
	if n == 0 {
		return 0
	}
	q := int64(sum) / n
	if r := int64(sum) % n; 2*r >= n {
		q++
	}
	return Money(q)
}

// cohorts builds repeat curves by first-purchase month, up to maxMonths.
// A cohort's point k is only given when every member of the cohort has
// been observed for k+1 months, so curves do not bend down at the end.
// The end of each month after a first purchase is worked out once per
// distinct first day, not once per member.
func (a *Analysis) cohorts(maxMonths int) []CohortCurve { return a.cohortsBy(maxMonths, true) }

// cohortMonths is the number of months the metrics' repeat curves follow.
const cohortMonths = 12

// earlyCohorts returns a copy of the cohorts Analyze worked out, when
// the analysis still holds the profiles, the date and the zone it worked
// them out from. (A profile changed in place is not seen: Metrics says
// so.)
func (a *Analysis) earlyCohorts() ([]CohortCurve, bool) {
	e := a.early
	if e == nil || len(e.profiles) != len(a.Profiles) || len(a.Profiles) == 0 || &e.profiles[0] != &a.Profiles[0] ||
		e.asOf != a.AsOf || e.loc != a.Config.Location {
		return nil, false
	}
	out := make([]CohortCurve, len(e.cohorts))
	for i, c := range e.cohorts {
		c.Repeat = slices.Clone(c.Repeat)
		out[i] = c
	}
	return out, true
}

// cohortsBy is cohorts, by one pass over the members when onePass and
// their month ends never go back, else by two passes a month.
func (a *Analysis) cohortsBy(maxMonths int, onePass bool) []CohortCurve {
	type firstDay struct {
		cohort int
		ends   []Day // ends[k]: the end of month k+1 after this first day
	}
	type member struct {
		first     int  // index into firsts
		second    Day  // day of second purchase (before 1970 a negative day)
		hasSecond bool // second is set
	}
	type cohort struct {
		key     string
		members []member
	}
	var cohorts []cohort
	byMonth := map[int]int{} // calendar month -> cohort
	byDay := map[Day]int{}   // first day -> firsts
	var firsts []firstDay
	// Each buyer's first day first, counting the cohorts' members, so
	// the members are placed in one slice cut per cohort rather than
	// appended cohort by cohort.
	firstOf := make([]int32, len(a.Profiles))
	var sizes []int
	for i := range a.Profiles {
		p := &a.Profiles[i]
		if p.Rhythm.PurchaseDays == 0 {
			firstOf[i] = -1
			continue
		}
		f, ok := byDay[p.Rhythm.First]
		if !ok {
			y, mo, _ := civil(p.Rhythm.First)
			c, ok := byMonth[y*12+mo]
			if !ok {
				c = len(cohorts)
				byMonth[y*12+mo] = c
				cohorts = append(cohorts, cohort{key: p.Rhythm.First.Time().Format("2006-01")})
			}
			ends := make([]Day, maxMonths)
			for k := range ends {
				ends[k] = DayOf(p.Rhythm.First.Time().AddDate(0, k+1, 0), a.Config.Location)
			}
			f = len(firsts)
			byDay[p.Rhythm.First] = f
			firsts = append(firsts, firstDay{cohort: c, ends: ends})
		}
		firstOf[i] = int32(f)
		if c := firsts[f].cohort; c < len(sizes) {
			sizes[c]++
		} else {
			sizes = append(sizes, 1)
		}
	}
	if monotoneEnds := onePass && func() bool {
		for _, f := range firsts {
			for k := 1; k < len(f.ends); k++ {
				if f.ends[k] < f.ends[k-1] {
					return false
				}
			}
		}
		return true
	}(); monotoneEnds {
		// Month ends that never go back (AddDate's always do): a month is
		// observed for a first day up to the first end after the analysis
		// date, and a member counts as repeated from the first month end
		// not before the second purchase on. One pass over the members
		// fills each cohort's count per such month, instead of two passes
		// a month (TestCohortsMatchReference).
		observed := make([]int, len(firsts)) // months observed from each first day
		for j, f := range firsts {
			for observed[j] < len(f.ends) && f.ends[observed[j]] <= a.AsOf {
				observed[j]++
			}
		}
		months := make([]int, len(cohorts)) // months observed from every first day of the cohort
		for c := range months {
			months[c] = maxMonths
		}
		from := make([]int, len(cohorts)*(maxMonths+1)) // cohort c's members repeated from month k: from[c*(maxMonths+1)+k]
		for i, f := range firstOf {
			if f < 0 {
				continue
			}
			c := firsts[f].cohort
			months[c] = min(months[c], observed[f])
			k := maxMonths // never
			if p := &a.Profiles[i]; len(p.days) > 1 {
				ends := firsts[f].ends
				for k = 0; k < maxMonths && p.days[1] > ends[k]; k++ {
				}
			}
			from[c*(maxMonths+1)+k]++
		}
		order := make([]int, len(cohorts))
		for c := range order {
			order[c] = c
		}
		slices.SortFunc(order, func(x, y int) int { return strings.Compare(cohorts[x].key, cohorts[y].key) })
		var out []CohortCurve
		for _, c := range order {
			curve, n := CohortCurve{Cohort: cohorts[c].key, Members: sizes[c]}, 0
			for month := 1; month <= months[c]; month++ {
				n += from[c*(maxMonths+1)+month-1]
				curve.Repeat = append(curve.Repeat, float64(n)/float64(sizes[c]))
			}
			out = append(out, curve)
		}
		return out
	}
	n := 0
	for _, size := range sizes {
		n += size
	}
	all := make([]member, n)
	for c, size := range sizes {
		cohorts[c].members, all = all[:0:size], all[size:]
	}
	for i, f := range firstOf {
		if f < 0 {
			continue
		}
		p := &a.Profiles[i]
		m := member{first: int(f)}
		if len(p.days) > 1 {
			m.second, m.hasSecond = p.days[1], true
		}
		c := &cohorts[firsts[f].cohort]
		c.members = append(c.members, m)
	}
	slices.SortFunc(cohorts, func(x, y cohort) int { return strings.Compare(x.key, y.key) })
	var out []CohortCurve
	for _, co := range cohorts {
		ms := co.members
		c := CohortCurve{Cohort: co.key, Members: len(ms)}
		for month := 1; month <= maxMonths; month++ {
			observed := true
			for _, m := range ms {
				if firsts[m.first].ends[month-1] > a.AsOf {
					observed = false
					break
				}
			}
			if !observed {
				break
			}
			n := 0
			for _, m := range ms {
				if m.hasSecond && m.second <= firsts[m.first].ends[month-1] {
					n++
				}
			}
			c.Repeat = append(c.Repeat, float64(n)/float64(len(ms)))
		}
		out = append(out, c)
	}
	return out
}

// UpliftInput is the source documents' "what if X% bought once more" sum.
type UpliftInput struct {
	Customers        int64 // active customers
	PurchasesPerYear int64 // what each buys today
	PerPurchase      Money // average basket, minor units
	ShareBP          int64 // share of customers buying ExtraPurchases more, in basis points (1500 = 15%)
	ExtraPurchases   int64 // how many more purchases a year those customers make; default 1
	// BaseRevenue, when positive, is the revenue the growth is measured
	// against (e.g. the last 12 months' actual revenue) instead of
	// customers x purchases x basket.
	BaseRevenue Money
}

// Uplift is the result of the uplift sum, in integer minor units.
type Uplift struct {
	BaseRevenue  Money `json:"base_revenue"`
	ExtraRevenue Money `json:"extra_revenue"`
	// GrowthBP is ExtraRevenue / BaseRevenue in basis points (375 = 3.75%),
	// rounded half up.
	GrowthBP int64 `json:"growth_bp"`
}

// ComputeUplift does the uplift arithmetic without floating point:
// base = customers x purchases x basket; extra = customers x share x extra
// purchases x basket. The source documents' example (150 customers, 4 a
// year, 20,000 each, 15% buying a fifth time) gives +450,000 and 3.75%.
func ComputeUplift(in UpliftInput) (Uplift, error) {
	if in.ExtraPurchases == 0 {
		in.ExtraPurchases = 1
	}
	if in.Customers < 0 || in.PurchasesPerYear < 0 || in.PerPurchase < 0 || in.ShareBP < 0 || in.ShareBP > 10000 || in.ExtraPurchases < 0 {
		return Uplift{}, fmt.Errorf("%w: uplift input %+v", ErrInvalid, in)
	}
	base := in.Customers * in.PurchasesPerYear * int64(in.PerPurchase)
	if in.BaseRevenue > 0 {
		base = int64(in.BaseRevenue)
	} else if in.BaseRevenue < 0 {
		return Uplift{}, fmt.Errorf("%w: base revenue %d", ErrInvalid, in.BaseRevenue)
	}
	// customers x share(bp) x extra x basket / 10000, rounded half up.
	num := in.Customers * in.ShareBP * in.ExtraPurchases * int64(in.PerPurchase)
	extra := (num + 5000) / 10000
	u := Uplift{BaseRevenue: Money(base), ExtraRevenue: Money(extra)}
	if base > 0 {
		u.GrowthBP = (extra*10000*2 + base) / (2 * base)
	}
	return u, nil
}

// UpliftFromData fills the uplift input from the metrics: repeat buyers
// as customers, their median yearly purchase rate, the average returning
// basket, and the last 12 months' actual revenue as the base the growth is
// measured against.
func (m Metrics) UpliftFromData(shareBP int64) UpliftInput {
	return UpliftInput{
		Customers:        int64(m.Repeaters),
		PurchasesPerYear: int64(math.Round(m.PurchasesPerYear)),
		PerPurchase:      m.AvgBasketReturning,
		ShareBP:          shareBP,
		ExtraPurchases:   1,
		BaseRevenue:      m.RevenueLast12Months,
	}
}
