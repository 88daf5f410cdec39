package retention

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"gonum.org/v1/gonum/mat"
)

// RankFeatures name the base feature set's inputs, in the order of
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

// Extra features of the larger sets: "shape" lets recency bend and treats
// members with one purchase day apart; "recent" counts the last 91 days;
// "inter" lets recency, frequency and age act together (a long absence
// means more for a frequent buyer than for a rare one).
var (
	rankShapeFeatures = []string{
		"log(1 + days since last purchase) squared",
		"one purchase day (1 or 0)",
		"one purchase day x log(1 + days since last purchase)",
	}
	rankRecentFeatures = []string{
		"log(1 + purchase days in the last 91 days)",
		"share of spend in the last 91 days",
	}
	rankInterFeatures = []string{
		"log(1 + days since last purchase) x log(1 + repeat purchase days)",
		"log(1 + repeat purchase days) squared",
		"log(1 + days since last purchase) x log(1 + days since first purchase)",
	}
)

// RankFeatureSets are the feature sets the ranking model can be trained
// on: base, base+shape, base+recent, base+shape+recent, base+inter,
// base+shape+recent+inter.
var RankFeatureSets = []string{"base", "base+shape", "base+recent", "base+shape+recent", "base+inter", "base+shape+recent+inter"}

// rankExtras says which extra features a set has.
type rankExtras struct{ shape, recent, inter bool }

// rankSet says which extras a feature set has.
func rankSet(name string) (rankExtras, bool) {
	switch name {
	case "base":
		return rankExtras{}, true
	case "base+shape":
		return rankExtras{shape: true}, true
	case "base+recent":
		return rankExtras{recent: true}, true
	case "base+shape+recent":
		return rankExtras{shape: true, recent: true}, true
	case "base+inter":
		return rankExtras{inter: true}, true
	case "base+shape+recent+inter":
		return rankExtras{shape: true, recent: true, inter: true}, true
	}
	return rankExtras{}, false
}

// rankFeatureNames lists the features of a set, in coefficient order.
func rankFeatureNames(set string) []string {
	x, _ := rankSet(set)
	names := append([]string(nil), RankFeatures...)
	if x.shape {
		names = append(names, rankShapeFeatures...)
	}
	if x.recent {
		names = append(names, rankRecentFeatures...)
	}
	if x.inter {
		names = append(names, rankInterFeatures...)
	}
	return names
}

// RankSpec is one way of training the ranking model.
type RankSpec struct {
	Features string  `json:"features"`   // one of RankFeatureSets
	L2       float64 `json:"l2_penalty"` // ridge penalty per training row on the coefficients (not the intercept)
	// Cuts is the number of training cut-offs, 30 days apart, the latest
	// the inner split before the end, each with its own "no purchase in
	// the inner split's days after" target; 1 is a single cut.
	Cuts int `json:"cuts"`
}

func (s RankSpec) String() string {
	return fmt.Sprintf("%s, ridge %g, %d cut-off(s)", s.Features, s.L2, s.Cuts)
}

// DefaultRankSpec is how contact lists' ranking model is trained: the
// candidate SelectRank chose on CDNOW's calibration period by a validation
// split inside it (docs/retention-eval.md; TestDefaultRankSpecIsSelected).
var DefaultRankSpec = RankSpec{Features: "base+inter", L2: 0.1, Cuts: 1}

// RankCandidates are the specs SelectRank compares, written down before
// any of them was scored on the holdout: every feature set, ridge 1e-4 to
// 1, one cut or three.
func RankCandidates() []RankSpec {
	var out []RankSpec
	for _, cuts := range []int{1, 3} {
		for _, f := range RankFeatureSets {
			for _, l2 := range RankRidges {
				out = append(out, RankSpec{Features: f, L2: l2, Cuts: cuts})
			}
		}
	}
	return out
}

// PreviousRankSpec is the spec the same selection chose before the
// "inter" feature sets and ridge 1 were candidates; the evaluation shows
// its holdout AUC for the record.
var PreviousRankSpec = RankSpec{Features: "base+shape+recent", L2: 0.1, Cuts: 1}

// RankRidges are the ridge penalties SelectRank tries.
var RankRidges = []float64{1e-4, 1e-3, 1e-2, 1e-1, 1}

// DefaultRankInnerDays is the time split inside the data the ranking model
// is trained on: features as of this many days before its end, target "no
// purchase in those days".
const DefaultRankInnerDays = 91

// RankModel is a logistic regression of "no purchase ahead" on a member's
// recency, frequency, age, own-interval absence and spend, trained on one
// period only (TrainRank). Higher scores mean more likely to stay away.
type RankModel struct {
	Cut       string    `json:"cut"`        // features as of this day (the latest cut-off)
	End       string    `json:"end"`        // target: no purchase after Cut up to End
	Members   int       `json:"members"`    // training rows
	Positives int       `json:"positives"`  // of them with no purchase
	Intercept float64   `json:"intercept"`  //
	Coef      []float64 `json:"coef"`       // one per Features
	L2        float64   `json:"l2_penalty"` // ridge penalty on Coef
	Spec      RankSpec  `json:"spec"`
	Features  []string  `json:"features"`
}

// rankRow computes a member's features from a cleaned history as of day
// into row (as many as the set has); false without a purchase.
func rankRow(row []float64, x rankExtras, h History, asOf Day, popMedian float64) bool {
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
	k := 6
	if x.shape {
		one := 0.0
		if n == 1 {
			one = 1
		}
		row[k], row[k+1], row[k+2] = row[0]*row[0], one, one*row[0]
		k += 3
	}
	if x.recent {
		var days int
		var late Money
		for i := n - 1; i >= 0 && h.Days[i] > asOf-91; i-- {
			days++
			late += h.Spend[i]
		}
		share := 0.0
		if spend > 0 {
			share = math.Min(1, math.Max(0, float64(late)/float64(spend)))
		}
		row[k], row[k+1] = math.Log1p(float64(days)), share
		k += 2
	}
	if x.inter {
		row[k], row[k+1], row[k+2] = row[0]*row[1], row[1]*row[1], row[0]*row[2]
	}
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

// TrainRank trains the ranking model (DefaultRankSpec) on the members'
// purchases up to and including end and nothing after: features as of
// end-innerDays, target "no purchase in the innerDays after". Members
// without a purchase by the cut are not training rows.
func TrainRank(members []Member, end time.Time, innerDays int, cfg *Config) (*RankModel, error) {
	return TrainRankSpec(members, end, innerDays, DefaultRankSpec, cfg)
}

// TrainRankSpec is TrainRank with a given spec.
func TrainRankSpec(members []Member, end time.Time, innerDays int, spec RankSpec, cfg *Config) (*RankModel, error) {
	c := cfg.withDefaults()
	hs := histories(members, end, &c)
	return trainRank(hs, DayOf(end, c.Location), innerDays, spec)
}

// TrainRank trains the ranking model on the analysis's own histories, as
// TrainRank does with end = the analysis date.
func (a *Analysis) TrainRank(innerDays int) (*RankModel, error) {
	hs := make([]History, len(a.Profiles))
	for i := range a.Profiles {
		hs[i] = a.Profiles[i].history
	}
	return trainRank(hs, a.AsOf, innerDays, DefaultRankSpec)
}

// rankRows computes the rows (a leading 1, then the features) and targets
// of the members as of cut, target "no purchase after cut up to end", from
// histories that may go beyond end. It appends to X and y and returns
// them with the number of positives.
func rankRows(X, y []float64, hs []History, cut, end Day, x rankExtras) ([]float64, []float64, int) {
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
	k := 1 + len(RankFeatures)
	if x.shape {
		k += len(rankShapeFeatures)
	}
	if x.recent {
		k += len(rankRecentFeatures)
	}
	if x.inter {
		k += len(rankInterFeatures)
	}
	pos := 0
	X, y = slices.Grow(X, len(hs)*k), slices.Grow(y, len(hs))
	for i, h := range hs {
		n := int(upTo[i])
		X = append(X, 1)
		X = X[:len(X)+k-1]
		if !rankRow(X[len(X)-k+1:], x, History{Days: h.Days[:n], Spend: h.Spend[:n]}, cut, pop) {
			X = X[:len(X)-k]
			continue
		}
		stay := 1.0
		if n < len(h.Days) && h.Days[n] <= end {
			stay = 0
		}
		y = append(y, stay)
		pos += int(stay)
	}
	return X, y, pos
}

// trainRank trains on cleaned histories up to end.
func trainRank(hs []History, end Day, innerDays int, spec RankSpec) (*RankModel, error) {
	if innerDays < 1 {
		return nil, fmt.Errorf("%w: inner split of %d days", ErrInvalid, innerDays)
	}
	x, ok := rankSet(spec.Features)
	if !ok || spec.Cuts < 1 || spec.L2 < 0 {
		return nil, fmt.Errorf("%w: ranking spec %+v", ErrInvalid, spec)
	}
	cut := end - Day(innerDays)
	names := rankFeatureNames(spec.Features)
	k := 1 + len(names)
	m := &RankModel{Cut: cut.String(), End: end.String(), L2: spec.L2, Spec: spec, Features: names}
	// The design matrix, computed once: one row of 1 (the intercept) and
	// the features per training member and cut-off, in one flat slice.
	X := make([]float64, 0, len(hs)*k*spec.Cuts)
	y := make([]float64, 0, len(hs)*spec.Cuts)
	for c := range spec.Cuts {
		var pos int
		ci := cut - Day(30*c)
		X, y, pos = rankRows(X, y, hs, ci, ci+Day(innerDays), x)
		m.Positives += pos
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

// RankCandidate is one spec and how it ranked on the validation split.
type RankCandidate struct {
	Spec          RankSpec `json:"spec"`
	ValidationAUC float64  `json:"validation_auc"`
}

// RankSelection is SelectRank's result: every candidate's validation AUC
// and the one chosen.
type RankSelection struct {
	TrainCut   string          `json:"train_cut"`  // candidates trained with features as of this day (the latest cut-off) ...
	ValidCut   string          `json:"valid_cut"`  // ... and validated as of this day, target no purchase to End
	End        string          `json:"end"`        // the end of the data used
	Members    int             `json:"members"`    // validation rows
	Positives  int             `json:"positives"`  // of them without a purchase
	Candidates []RankCandidate `json:"candidates"` // in RankCandidates order
	Chosen     RankSpec        `json:"chosen"`     // the best validation AUC; the earlier (simpler) candidate on a tie
	ChosenAUC  float64         `json:"chosen_auc"`
}

// SelectRank chooses how to train the ranking model using the members'
// purchases up to end only, by a validation split inside that period:
// each candidate is trained as TrainRank would be with end-innerDays as
// its end, then scored on the members as of end-innerDays, target "no
// purchase from then to end". Nothing after end is read.
func SelectRank(members []Member, end time.Time, innerDays int, cfg *Config) (*RankSelection, error) {
	if innerDays < 1 {
		return nil, fmt.Errorf("%w: inner split of %d days", ErrInvalid, innerDays)
	}
	c := cfg.withDefaults()
	hs := histories(members, end, &c)
	e := DayOf(end, c.Location)
	vcut := e - Day(innerDays)
	sel := &RankSelection{TrainCut: (vcut - Day(innerDays)).String(), ValidCut: vcut.String(), End: e.String()}
	for _, spec := range RankCandidates() {
		m, err := trainRank(hs, vcut, innerDays, spec)
		if err != nil {
			return nil, fmt.Errorf("select ranking: %s: %w", spec, err)
		}
		x, _ := rankSet(spec.Features)
		X, y, pos := rankRows(nil, nil, hs, vcut, e, x)
		k := 1 + len(m.Coef)
		scores := make([]float64, len(y))
		truth := make([]bool, len(y))
		for i := range y {
			z := m.Intercept
			for j, v := range X[i*k+1 : i*k+k] {
				z += m.Coef[j] * v
			}
			scores[i], truth[i] = z, y[i] == 1
		}
		sel.Members, sel.Positives = len(y), pos
		auc := AUC(scores, truth)
		sel.Candidates = append(sel.Candidates, RankCandidate{Spec: spec, ValidationAUC: auc})
		if len(sel.Candidates) == 1 || auc > sel.ChosenAUC {
			sel.Chosen, sel.ChosenAUC = spec, auc
		}
	}
	return sel, nil
}

// fitLogistic fits y ~ sigmoid(w.x) by Newton's method (iteratively
// reweighted least squares) with a ridge penalty l2 on w[1:] (not the
// intercept). X holds len(y) rows of k values, the first of each 1. Once
// the steps are small (below 1e-4) the Hessian is kept from the last full
// step and only the gradient is recomputed (a chord step), which costs a
// sixth of a full pass here; the fixed point is the same (the gradient is
// zero), it converges in one or two more steps instead of one.
//
// With many rows (rankWarmRows) it starts where the same fit of every
// tenth row ends and keeps the Hessian of its first full step: on the
// benchmark's 75,000 rows one full pass and chord steps instead of five
// full passes, and the tenth's passes cost a tenth. The maximum is the
// same (the penalty is per row, so the tenth's problem is the whole's in
// small); TestLogisticWarmStartSameFit.
func fitLogistic(X []float64, k int, y []float64, l2 float64) ([]float64, error) {
	var w0 []float64
	if n := len(y); n >= rankWarmRows {
		sx := make([]float64, 0, (n/10+1)*k)
		sy := make([]float64, 0, n/10+1)
		for i := 0; i < n; i += 10 {
			sx = append(sx, X[i*k:i*k+k]...)
			sy = append(sy, y[i])
		}
		w0, _ = newtonLogistic(sx, k, sy, l2, nil)
	}
	return newtonLogistic(X, k, y, l2, w0)
}

// rankWarmRows is the number of training rows from which fitLogistic
// starts from a tenth's fit.
const rankWarmRows = 20_000

// newtonLogistic is fitLogistic's Newton's method from w0 (zero when nil).
func newtonLogistic(X []float64, k int, y []float64, l2 float64, w0 []float64) ([]float64, error) {
	w := make([]float64, k)
	copy(w, w0)
	H := mat.NewSymDense(k, nil)
	g := mat.NewVecDense(k, nil)
	var step mat.VecDense
	var chol mat.Cholesky
	pen := l2 * float64(len(y))
	frozen := false
	last := math.Inf(1)
	for it := 0; it < 100; it++ {
		if !frozen {
			H.Zero()
		}
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
			r := yi - p
			if frozen {
				for j, vj := range xi {
					gd[j] += r * vj
				}
				continue
			}
			q := p * (1 - p)
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
			gd[j] -= pen * w[j]
		}
		if !frozen {
			for j := 1; j < k; j++ {
				hd[j*k+j] += pen
			}
			if !chol.Factorize(H) {
				return nil, fmt.Errorf("%w: logistic regression: the Hessian is singular (the features do not separate)", ErrNoData)
			}
		}
		if err := chol.SolveVecTo(&step, g); err != nil {
			return nil, fmt.Errorf("%w: logistic regression: %v", ErrNoData, err)
		}
		for j := range w {
			w[j] += step.AtVec(j)
		}
		norm := mat.Norm(&step, math.Inf(1))
		if norm < 1e-10 {
			return w, nil
		}
		// From a warm start the first Hessian is already close to the
		// one at the maximum: keep it from the first step on. A chord
		// step that does not at least halve the last one recomputes it.
		frozen = (norm < 1e-4 || w0 != nil && it == 0) && !(frozen && norm > last/2)
		last = norm
	}
	return w, nil
}

// Score is the model's probability that a member with history h makes no
// purchase ahead, as of asOf; popMedian is the population's median
// interval for members with one purchase day. False without a purchase.
func (m *RankModel) Score(h History, asOf Day, popMedian float64) (float64, bool) {
	var buf [16]float64
	x, _ := rankSet(m.Spec.Features)
	row := buf[:len(m.Coef)]
	if !rankRow(row, x, h, asOf, popMedian) {
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
