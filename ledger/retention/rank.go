package retention

import (
	"fmt"
	"math"
	"sort"
	"time"

	"gonum.org/v1/gonum/mat"
)

// RankFeatures name the ranking model's inputs, in the order of
// RankModel.Coef after the intercept. Days are calendar days as of the
// scoring date; "own interval" is the member's mean interval (the
// population's median for members with one purchase day).
var RankFeatures = []string{
	"log(1 + days since last purchase)",
	"log(1 + repeat purchase days)",
	"log(1 + days since first purchase)",
	"log(1 + days since last / own interval)",
	"log(1 + mean spend per purchase day, currency units)",
	"log(1 + purchase days per 30 days of age)",
}

// DefaultRankInnerDays is the time split inside the data the ranking model
// is trained on: features as of this many days before its end, target "no
// purchase in those days".
const DefaultRankInnerDays = 91

// RankModel is a logistic regression of "no purchase ahead" on a member's
// recency, frequency, age, own-interval absence and spend, trained on one
// period only (TrainRank). Higher scores mean more likely to stay away.
type RankModel struct {
	Cut       string    `json:"cut"`        // features as of this day
	End       string    `json:"end"`        // target: no purchase after Cut up to End
	Members   int       `json:"members"`    // training rows
	Positives int       `json:"positives"`  // of them with no purchase
	Intercept float64   `json:"intercept"`  //
	Coef      []float64 `json:"coef"`       // one per RankFeatures
	L2        float64   `json:"l2_penalty"` // ridge penalty on Coef
}

// rankRow computes a member's features from a cleaned history as of day
// into row (len(RankFeatures)); false without a purchase.
func rankRow(row []float64, h History, asOf Day, popMedian float64) bool {
	n := len(h.Days)
	if n == 0 {
		return false
	}
	first, last := h.Days[0], h.Days[n-1]
	iv := popMedian
	if n > 1 {
		iv = float64(last-first) / float64(n-1)
	}
	if iv <= 0 {
		iv = 1
	}
	var spend Money
	for _, s := range h.Spend {
		spend += s
	}
	rec := float64(asOf - last)
	age := float64(asOf - first)
	row[0] = math.Log1p(rec)
	row[1] = math.Log1p(float64(n - 1))
	row[2] = math.Log1p(age)
	row[3] = math.Log1p(rec / iv)
	row[4] = math.Log1p(math.Max(float64(spend)/float64(n)/100, 0))
	row[5] = math.Log1p(float64(n-1) / math.Max(age, 1) * 30)
	return true
}

// histories cleans every member as of asOf.
func histories(members []Member, asOf time.Time, c *Config) []History {
	hs := make([]History, len(members))
	cl := newPopulationCleaner(asOf, c)
	for i, m := range members {
		hs[i], _ = cl.clean(m)
	}
	return hs
}

// TrainRank trains the ranking model on the members' purchases up to and
// including end and nothing after: features as of end-innerDays, target
// "no purchase in the innerDays after". Members without a purchase by the
// cut are not training rows.
func TrainRank(members []Member, end time.Time, innerDays int, cfg *Config) (*RankModel, error) {
	c := cfg.withDefaults()
	hs := histories(members, end, &c)
	return trainRank(hs, DayOf(end, c.Location), innerDays)
}

// TrainRank trains the ranking model on the analysis's own histories, as
// TrainRank does with end = the analysis date.
func (a *Analysis) TrainRank(innerDays int) (*RankModel, error) {
	hs := make([]History, len(a.Profiles))
	for i := range a.Profiles {
		hs[i] = a.Profiles[i].history
	}
	return trainRank(hs, a.AsOf, innerDays)
}

// trainRank trains on cleaned histories up to end.
func trainRank(hs []History, end Day, innerDays int) (*RankModel, error) {
	if innerDays < 1 {
		return nil, fmt.Errorf("%w: inner split of %d days", ErrInvalid, innerDays)
	}
	cut := end - Day(innerDays)
	// How much of each history lies on or before the cut; the histories
	// are not copied.
	upTo := make([]int32, len(hs))
	var ivs []float64
	for i, h := range hs {
		n := sort.Search(len(h.Days), func(j int) bool { return h.Days[j] > cut })
		upTo[i] = int32(n)
		if n > 1 {
			ivs = append(ivs, float64(h.Days[n-1]-h.Days[0])/float64(n-1))
		}
	}
	pop := median(ivs)
	m := &RankModel{Cut: cut.String(), End: end.String(), L2: 1e-3}
	// The design matrix, computed once: one row of 1 (the intercept) and
	// the features per training member, in one flat slice.
	k := len(RankFeatures) + 1
	X := make([]float64, 0, len(hs)*k)
	y := make([]float64, 0, len(hs))
	for i, h := range hs {
		n := int(upTo[i])
		X = append(X, 1)
		X = X[:len(X)+k-1]
		if !rankRow(X[len(X)-k+1:], History{Days: h.Days[:n], Spend: h.Spend[:n]}, cut, pop) {
			X = X[:len(X)-k]
			continue
		}
		stay := 1.0
		if n < len(h.Days) && h.Days[n] <= end {
			stay = 0
		}
		y = append(y, stay)
		m.Positives += int(stay)
	}
	m.Members = len(y)
	if m.Members < 10 || m.Positives == 0 || m.Positives == m.Members {
		return nil, fmt.Errorf("%w: %d training members, %d without a purchase in the last %d days: nothing to learn", ErrNoData, m.Members, m.Positives, innerDays)
	}
	w, err := fitLogistic(X, k, y, m.L2)
	if err != nil {
		return nil, err
	}
	m.Intercept, m.Coef = w[0], w[1:]
	return m, nil
}

// fitLogistic fits y ~ sigmoid(w.x) by Newton's method (iteratively
// reweighted least squares) with a ridge penalty l2 on w[1:] (not the
// intercept). X holds len(y) rows of k values, the first of each 1.
func fitLogistic(X []float64, k int, y []float64, l2 float64) ([]float64, error) {
	w := make([]float64, k)
	H := mat.NewSymDense(k, nil)
	g := mat.NewVecDense(k, nil)
	var step mat.VecDense
	pen := l2 * float64(len(y))
	for it := 0; it < 100; it++ {
		H.Zero()
		g.Zero()
		hd := H.RawSymmetric().Data
		gd := g.RawVector().Data
		for i, yi := range y {
			xi := X[i*k : i*k+k : i*k+k]
			z := 0.0
			for j, v := range xi {
				z += w[j] * v
			}
			p := 1 / (1 + math.Exp(-z))
			r, q := yi-p, p*(1-p)
			for j, vj := range xi {
				gd[j] += r * vj
				qv := q * vj
				row := hd[j*k : j*k+k]
				for l := j; l < k; l++ {
					row[l] += qv * xi[l]
				}
			}
		}
		for j := 1; j < k; j++ {
			hd[j*k+j] += pen
			gd[j] -= pen * w[j]
		}
		if err := step.SolveVec(H, g); err != nil {
			return nil, fmt.Errorf("%w: logistic regression: %v", ErrNoData, err)
		}
		for j := range w {
			w[j] += step.AtVec(j)
		}
		if mat.Norm(&step, math.Inf(1)) < 1e-10 {
			return w, nil
		}
	}
	return w, nil
}

// Score is the model's probability that a member with history h makes no
// purchase ahead, as of asOf; popMedian is the population's median
// interval for members with one purchase day. False without a purchase.
func (m *RankModel) Score(h History, asOf Day, popMedian float64) (float64, bool) {
	var buf [8]float64
	row := buf[:len(RankFeatures)]
	if !rankRow(row, h, asOf, popMedian) {
		return 0, false
	}
	z := m.Intercept
	for j, v := range row {
		z += m.Coef[j] * v
	}
	return 1 / (1 + math.Exp(-z)), true
}

// ScoreProfile scores a profile of a.
func (m *RankModel) ScoreProfile(a *Analysis, p *Profile) (float64, bool) {
	return m.Score(p.history, a.AsOf, a.PopulationMedianInterval)
}
