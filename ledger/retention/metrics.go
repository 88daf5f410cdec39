package retention

import (
	"fmt"
	"math"
	"sort"
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

// Metrics computes the retention metrics.
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
	var newSum, retSum Money
	var firstSum, laterSum float64
	var smaller int
	var retDays int
	var gaps, rates []float64
	var spends []Money
	cats := map[string]*CategoryStat{}
	catIv := map[string][]float64{}
	for _, p := range a.Profiles {
		m.Segments[string(p.Segment)]++
		if p.Rhythm.PurchaseDays == 0 {
			continue
		}
		m.Statuses[string(p.Status)]++
		m.Buyers++
		m.Revenue += p.Spend
		spends = append(spends, p.Spend)
		newSum += p.FirstSpend
		h := p.history
		for i := 1; i < len(h.Days); i++ {
			retSum += h.Spend[i]
			retDays++
			g := float64(h.Days[i] - h.Days[i-1])
			gaps = append(gaps, g)
			for b := range m.Intervals {
				if g >= m.Intervals[b].Lo && g < m.Intervals[b].Hi {
					m.Intervals[b].Count++
				}
			}
		}
		for i, d := range h.Days {
			if d > a.AsOf-365 {
				m.RevenueLast12Months += h.Spend[i]
			}
		}
		if p.Rhythm.HasInterval {
			m.Repeaters++
			rates = append(rates, 365.25/p.Rhythm.MeanInterval)
			var later Money
			for _, sp := range h.Spend[1:] {
				later += sp
			}
			laterMean := float64(later) / float64(len(h.Spend)-1)
			firstSum += float64(h.Spend[0])
			laterSum += laterMean
			if float64(h.Spend[0]) < laterMean {
				smaller++
			}
		}
		if a.Model != nil {
			b := min(int(p.PAlive*10), 9)
			m.PAlive[b].Count++
		}
		for c, r := range p.Categories {
			cs := cats[c]
			if cs == nil {
				cs = &CategoryStat{Category: c}
				cats[c] = cs
			}
			cs.Buyers++
			cs.PurchaseDays += r.PurchaseDays
			if r.HasInterval {
				catIv[c] = append(catIv[c], r.MeanInterval)
			}
		}
	}
	if m.Buyers > 0 {
		m.RepeatRatio = float64(m.Repeaters) / float64(m.Buyers)
		m.AvgBasketNew = divRound(newSum, int64(m.Buyers))
	}
	if retDays > 0 {
		m.AvgBasketReturning = divRound(retSum, int64(retDays))
	}
	m.MedianIntervalDays = median(gaps)
	m.MemberIntervalDays = a.PopulationMedianInterval
	if m.Repeaters > 0 {
		m.RepeatFirstBasket = Money(math.Round(firstSum / float64(m.Repeaters)))
		m.RepeatLaterBasket = Money(math.Round(laterSum / float64(m.Repeaters)))
		m.RepeatFirstSmaller = float64(smaller) / float64(m.Repeaters)
	}
	m.PurchasesPerYear = median(rates)
	sort.Slice(spends, func(i, j int) bool { return spends[i] > spends[j] })
	top := int(math.Ceil(a.Config.TopShare * float64(len(spends))))
	var topSum Money
	for _, s := range spends[:top] {
		topSum += s
	}
	if m.Revenue > 0 {
		m.TopRevenueShare = float64(topSum) / float64(m.Revenue)
	}
	for _, cs := range cats {
		cs.DaysPerBuyer = float64(cs.PurchaseDays) / float64(cs.Buyers)
		cs.MedianDays = median(catIv[cs.Category])
		m.Categories = append(m.Categories, *cs)
	}
	sort.Slice(m.Categories, func(i, j int) bool { return m.Categories[i].Category < m.Categories[j].Category })
	m.Cohorts = a.cohorts(12)
	return m
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
func (a *Analysis) cohorts(maxMonths int) []CohortCurve {
	type agg struct {
		first  Day
		repeat []Day // day of second purchase, or -1
	}
	by := map[string][]agg{}
	var keys []string
	for _, p := range a.Profiles {
		if p.Rhythm.PurchaseDays == 0 {
			continue
		}
		k := p.Rhythm.First.Time().Format("2006-01")
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		second := Day(-1)
		if len(p.history.Days) > 1 {
			second = p.history.Days[1]
		}
		by[k] = append(by[k], agg{first: p.Rhythm.First, repeat: []Day{second}})
	}
	sort.Strings(keys)
	var out []CohortCurve
	for _, k := range keys {
		ms := by[k]
		c := CohortCurve{Cohort: k, Members: len(ms)}
		for month := 1; month <= maxMonths; month++ {
			observed := true
			n := 0
			for _, m := range ms {
				end := DayOf(m.first.Time().AddDate(0, month, 0), a.Config.Location)
				if end > a.AsOf {
					observed = false
					break
				}
				if m.repeat[0] >= 0 && m.repeat[0] <= end {
					n++
				}
			}
			if !observed {
				break
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
