package retention

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
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
	// "rhythm" measures the absence against the member's own rhythm
	// and spend: the median gap is less pulled by one long pause than
	// the mean; lateness is zero until the member is past due; the
	// spend trend is below zero when the last basket was smaller than
	// usual; the mean age of the purchase days weighs recency by how
	// many purchases are recent.
	rankRhythmFeatures = []string{
		"log(1 + days since last / own median interval)",
		"log(1 + days past own mean interval)",
		"log(1 + last day's spend) - log(1 + mean spend per purchase day)",
		"log(1 + mean days since each purchase day)",
	}
	// "bgnbd" adds the BG/NBD model's view, fitted on the same members'
	// purchases up to the day the features are taken (never later).
	rankBGFeatures = []string{
		"BG/NBD P(alive)",
		"BG/NBD P(no purchase in the inner split's days)",
	}
)

// RankFeatureSets are the feature sets the ranking model can be trained
// on: base, base+shape, base+recent, base+shape+recent, base+inter,
// base+shape+recent+inter.
var RankFeatureSets = []string{"base", "base+shape", "base+recent", "base+shape+recent", "base+inter", "base+shape+recent+inter", "base+inter+rhythm", "base+inter+rhythm+bgnbd"}

// rankExtras says which extra features a set has.
type rankExtras struct{ shape, recent, inter, rhythm, bg bool }

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
	case "base+inter+rhythm":
		return rankExtras{inter: true, rhythm: true}, true
	case "base+inter+rhythm+bgnbd":
		return rankExtras{inter: true, rhythm: true, bg: true}, true
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
	if x.rhythm {
		names = append(names, rankRhythmFeatures...)
	}
	if x.bg {
		names = append(names, rankBGFeatures...)
	}
	return names
}

// RankSpec is one way of training the ranking model.
type RankSpec struct {
	// Model is "logistic" (a logistic regression; also when empty),
	// "trees" (gradient-boosted trees) or "ensemble" (the mean of the
	// two's probabilities, both trained on the same rows).
	Model    string  `json:"model,omitempty"`
	Features string  `json:"features"`   // one of RankFeatureSets
	L2       float64 `json:"l2_penalty"` // ridge penalty per training row on the coefficients (not the intercept)
	// Cuts is the number of training cut-offs, 30 days apart, the latest
	// the inner split before the end, each with its own "no purchase in
	// the inner split's days after" target; 1 is a single cut.
	Cuts int `json:"cuts"`
	// Trees: depth of each tree, number of trees, and the shrinkage
	// (learning rate) each tree's leaves are multiplied by.
	Depth  int     `json:"depth,omitempty"`
	Rounds int     `json:"rounds,omitempty"`
	Shrink float64 `json:"shrinkage,omitempty"`
}

// Ranking model kinds (RankSpec.Model).
const (
	RankLogistic = "logistic"
	RankTrees    = "trees"
	RankEnsemble = "ensemble"
)

func (s RankSpec) kind() string {
	if s.Model == "" {
		return RankLogistic
	}
	return s.Model
}

func (s RankSpec) String() string {
	cuts := ""
	if s.Cuts != 1 {
		cuts = fmt.Sprintf(", %d cut-offs", s.Cuts)
	}
	trees := fmt.Sprintf("trees of depth %d, %d rounds, shrinkage %g", s.Depth, s.Rounds, s.Shrink)
	switch s.kind() {
	case RankTrees:
		return fmt.Sprintf("%s on %s%s", trees, s.Features, cuts)
	case RankEnsemble:
		return fmt.Sprintf("mean of logistic (ridge %g) and %s on %s%s", s.L2, trees, s.Features, cuts)
	}
	return fmt.Sprintf("logistic on %s, ridge %g%s", s.Features, s.L2, cuts)
}

// DefaultRankSpec is how contact lists' ranking model is trained: the
// candidate SelectRank chose on CDNOW's calibration period by rolling
// validation splits inside it (docs/retention-eval.md;
// TestDefaultRankSpecIsSelected).
var DefaultRankSpec = RankSpec{Model: RankLogistic, Features: "base+inter+rhythm+bgnbd", L2: 0.1, Cuts: 1}

// RankCandidates are the specs SelectRank compares, written down in
// docs/retention-eval.md before any of them was scored (on validation or
// the holdout): the spec chosen before (logistic, base+inter, ridge 0.1);
// logistic regressions on better features (own-rhythm and spend trend;
// with BG/NBD's view fitted at the same cut-off); gradient-boosted trees
// of depth 2 and 3; and the mean of logistic and trees.
func RankCandidates() []RankSpec {
	const rh, rhbg = "base+inter+rhythm", "base+inter+rhythm+bgnbd"
	return []RankSpec{
		{Model: RankLogistic, Features: "base+inter", L2: 0.1, Cuts: 1},
		{Model: RankLogistic, Features: rh, L2: 0.1, Cuts: 1},
		{Model: RankLogistic, Features: rh, L2: 1, Cuts: 1},
		{Model: RankLogistic, Features: rhbg, L2: 0.1, Cuts: 1},
		{Model: RankTrees, Features: rh, Cuts: 1, Depth: 2, Rounds: 200, Shrink: 0.05},
		{Model: RankTrees, Features: rh, Cuts: 1, Depth: 3, Rounds: 150, Shrink: 0.05},
		{Model: RankEnsemble, Features: rh, L2: 0.1, Cuts: 1, Depth: 2, Rounds: 200, Shrink: 0.05},
		{Model: RankEnsemble, Features: rh, L2: 0.1, Cuts: 1, Depth: 3, Rounds: 150, Shrink: 0.05},
	}
}

// PreviousRankSpec is the spec the single validation split chose before
// the rolling selection; the evaluation shows its holdout AUC for the
// record (it was read in an earlier round).
var PreviousRankSpec = RankSpec{Model: RankLogistic, Features: "base+inter", L2: 0.1, Cuts: 1}

// RankFolds and RankFoldStep: SelectRank validates each candidate on this
// many time splits inside the data, the latest ending at the end, each
// one RankFoldStep days before the next.
const (
	RankFolds    = 3
	RankFoldStep = 30
)

// DefaultRankInnerDays is the time split inside the data the ranking model
// is trained on: features as of this many days before its end, target "no
// purchase in those days".
const DefaultRankInnerDays = 91

// RankModel predicts "no purchase ahead" from a member's recency,
// frequency, age, own rhythm and spend, trained on one period only
// (TrainRank): a logistic regression (Intercept, Coef), gradient-boosted
// trees (TreeBase, Trees) or the mean of both. Higher scores mean more
// likely to stay away.
type RankModel struct {
	Cut       string    `json:"cut"`        // features as of this day (the latest cut-off)
	End       string    `json:"end"`        // target: no purchase after Cut up to End
	Members   int       `json:"members"`    // training rows
	Positives int       `json:"positives"`  // of them with no purchase
	Intercept float64   `json:"intercept"`  //
	Coef      []float64 `json:"coef"`       // one per Features (logistic and ensemble)
	L2        float64   `json:"l2_penalty"` // ridge penalty on Coef
	Spec      RankSpec  `json:"spec"`
	Features  []string  `json:"features"`
	// TreeBase is the trees' starting log-odds (the training base rate).
	TreeBase float64    `json:"tree_base,omitempty"`
	Trees    []RankTree `json:"trees,omitempty"`
	// Importance is each feature's share of the trees' total split gain.
	Importance []float64 `json:"importance,omitempty"`
	// Horizon is the inner split in days (BG/NBD's P(no purchase) feature).
	Horizon int `json:"horizon_days"`
}

// rankCtx is what a row's features need besides the history: the
// population's median interval (for members with one purchase day) and,
// for the "bgnbd" features, the BG/NBD model fitted as of the same day and
// the horizon in days.
type rankCtx struct {
	pop     float64
	bg      *bgnbd.Params
	horizon int
}

// rankRow computes a member's features from a cleaned history as of day
// into row (as many as the set has); false without a purchase.
func rankRow(row []float64, x rankExtras, h History, asOf Day, ctx rankCtx) bool {
	n := len(h.Days)
	if n == 0 {
		return false
	}
	first, last := h.Days[0], h.Days[n-1]
	iv := ctx.pop
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
		k += 3
	}
	if x.rhythm {
		med := ctx.pop
		if n > 1 {
			var buf [32]float64
			gaps := buf[:0]
			if n-1 > len(buf) {
				gaps = make([]float64, 0, n-1)
			}
			for i := 1; i < n; i++ {
				gaps = append(gaps, float64(h.Days[i]-h.Days[i-1]))
			}
			med = medianInPlace(gaps)
		}
		if med <= 0 {
			med = 1
		}
		var dayAges float64
		for _, d := range h.Days {
			dayAges += float64(asOf - d)
		}
		lastSpend := math.Max(float64(h.Spend[n-1])/100, 0)
		mean := math.Max(float64(spend)/float64(n)/100, 0)
		row[k] = math.Log1p(rec / med)
		row[k+1] = math.Log1p(math.Max(0, rec-iv))
		row[k+2] = math.Log1p(lastSpend) - math.Log1p(mean)
		row[k+3] = math.Log1p(dayAges / float64(n))
		k += 4
	}
	if x.bg {
		if ctx.bg == nil {
			return false
		}
		c := bgnbd.Customer{X: n - 1, Tx: float64(last-first) / 7, T: age / 7}
		row[k], row[k+1] = ctx.bg.PAlive(c), ctx.bg.PNoPurchase(c, float64(ctx.horizon)/7)
	}
	return true
}

// rankWidth is the number of features of a set.
func rankWidth(x rankExtras) int {
	k := len(RankFeatures)
	if x.shape {
		k += len(rankShapeFeatures)
	}
	if x.recent {
		k += len(rankRecentFeatures)
	}
	if x.inter {
		k += len(rankInterFeatures)
	}
	if x.rhythm {
		k += len(rankRhythmFeatures)
	}
	if x.bg {
		k += len(rankBGFeatures)
	}
	return k
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
	return trainRank(hs, DayOf(end, c.Location), innerDays, spec, nil)
}

// TrainRank trains the ranking model on the analysis's own histories, as
// TrainRank does with end = the analysis date.
func (a *Analysis) TrainRank(innerDays int) (*RankModel, error) {
	hs := make([]History, len(a.Profiles))
	for i := range a.Profiles {
		hs[i] = a.Profiles[i].history
	}
	return trainRank(hs, a.AsOf, innerDays, DefaultRankSpec, nil)
}

// bgFits fits BG/NBD on the histories as they stood on a day (each fit
// once): the "bgnbd" features of rows taken as of that day.
type bgFits map[Day]*bgnbd.Params

func (f bgFits) at(hs []History, day Day) (*bgnbd.Params, error) {
	if p, ok := f[day]; ok {
		return p, nil
	}
	cs := make([]bgnbd.Customer, 0, len(hs))
	for _, h := range hs {
		n := sort.Search(len(h.Days), func(j int) bool { return h.Days[j] > day })
		if n == 0 {
			continue
		}
		cs = append(cs, bgnbd.Customer{X: n - 1, Tx: float64(h.Days[n-1]-h.Days[0]) / 7, T: float64(day-h.Days[0]) / 7})
	}
	fit, err := bgnbd.FitParams(cs, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: BG/NBD as of %s for the ranking features: %v", ErrNoData, day, err)
	}
	f[day] = &fit.Params
	return &fit.Params, nil
}

// rankRows computes the rows (a leading 1, then the features) and targets
// of the members as of cut, target "no purchase after cut up to end", from
// histories that may go beyond end. It appends to X and y and returns
// them with the number of positives.
func rankRows(X, y []float64, hs []History, cut, end Day, x rankExtras, fits bgFits) ([]float64, []float64, int, error) {
	upTo := make([]int32, len(hs))
	var ivs []float64
	for i, h := range hs {
		n := sort.Search(len(h.Days), func(j int) bool { return h.Days[j] > cut })
		upTo[i] = int32(n)
		if n > 1 {
			ivs = append(ivs, float64(h.Days[n-1]-h.Days[0])/float64(n-1))
		}
	}
	ctx := rankCtx{pop: median(ivs), horizon: int(end - cut)}
	if x.bg {
		var err error
		if ctx.bg, err = fits.at(hs, cut); err != nil {
			return X, y, 0, err
		}
	}
	k := 1 + rankWidth(x)
	pos := 0
	X, y = slices.Grow(X, len(hs)*k), slices.Grow(y, len(hs))
	for i, h := range hs {
		n := int(upTo[i])
		X = append(X, 1)
		X = X[:len(X)+k-1]
		if !rankRow(X[len(X)-k+1:], x, History{Days: h.Days[:n], Spend: h.Spend[:n]}, cut, ctx) {
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
	return X, y, pos, nil
}

// trainRank trains on cleaned histories up to end. fits may be nil.
func trainRank(hs []History, end Day, innerDays int, spec RankSpec, fits bgFits) (*RankModel, error) {
	if innerDays < 1 {
		return nil, fmt.Errorf("%w: inner split of %d days", ErrInvalid, innerDays)
	}
	x, ok := rankSet(spec.Features)
	kind := spec.kind()
	trees := kind == RankTrees || kind == RankEnsemble
	if !ok || spec.Cuts < 1 || spec.L2 < 0 || kind != RankLogistic && !trees ||
		trees && (spec.Depth < 1 || spec.Depth > 6 || spec.Rounds < 1 || !(spec.Shrink > 0 && spec.Shrink <= 1)) {
		return nil, fmt.Errorf("%w: ranking spec %+v", ErrInvalid, spec)
	}
	if fits == nil {
		fits = bgFits{}
	}
	cut := end - Day(innerDays)
	names := rankFeatureNames(spec.Features)
	k := 1 + len(names)
	m := &RankModel{Cut: cut.String(), End: end.String(), L2: spec.L2, Spec: spec, Features: names, Horizon: innerDays}
	// The design matrix, computed once: one row of 1 (the intercept) and
	// the features per training member and cut-off, in one flat slice.
	X := make([]float64, 0, len(hs)*k*spec.Cuts)
	y := make([]float64, 0, len(hs)*spec.Cuts)
	for c := range spec.Cuts {
		var pos int
		var err error
		ci := cut - Day(30*c)
		if X, y, pos, err = rankRows(X, y, hs, ci, ci+Day(innerDays), x, fits); err != nil {
			return nil, err
		}
		m.Positives += pos
	}
	m.Members = len(y)
	if m.Members < 10 || m.Positives == 0 || m.Positives == m.Members {
		return nil, fmt.Errorf("%w: %d training members, %d without a purchase in the last %d days: nothing to learn", ErrNoData, m.Members, m.Positives, innerDays)
	}
	if kind != RankTrees {
		w, err := fitLogistic(X, k, y, m.L2)
		if err != nil {
			return nil, err
		}
		m.Intercept, m.Coef = w[0], w[1:]
	}
	if trees {
		m.TreeBase, m.Trees, m.Importance = fitTrees(X, k, y, spec.Depth, spec.Rounds, spec.Shrink)
	}
	return m, nil
}

// RankCandidate is one spec and how it ranked on the validation splits.
type RankCandidate struct {
	Spec          RankSpec  `json:"spec"`
	ValidationAUC float64   `json:"validation_auc"` // the mean of FoldAUC
	FoldAUC       []float64 `json:"fold_auc"`       // in RankSelection.Folds order
}

// RankFold is one validation split of SelectRank.
type RankFold struct {
	TrainCut  string `json:"train_cut"` // candidates trained with features as of this day, target to ValidCut ...
	ValidCut  string `json:"valid_cut"` // ... and validated on the members as of this day, target to End
	End       string `json:"end"`
	Members   int    `json:"members"`   // validation rows
	Positives int    `json:"positives"` // of them without a purchase
}

// RankSelection is SelectRank's result: every candidate's validation AUC
// on each split, their mean, and the one chosen.
type RankSelection struct {
	End        string          `json:"end"`        // the end of the data used
	Folds      []RankFold      `json:"folds"`      // latest first
	Candidates []RankCandidate `json:"candidates"` // in RankCandidates order
	Chosen     RankSpec        `json:"chosen"`     // the best mean validation AUC; the earlier candidate on a tie
	ChosenAUC  float64         `json:"chosen_auc"`
}

// SelectRank chooses how to train the ranking model using the members'
// purchases up to end only, by RankFolds rolling validation splits inside
// that period: for the split ending e' (end, end-30 days, end-60 days)
// each candidate is trained as TrainRank would be with e'-innerDays as
// its end, then scored on the members as of e'-innerDays, target "no
// purchase from then to e'". The chosen spec has the best mean AUC over
// the splits. Nothing after end is read.
func SelectRank(members []Member, end time.Time, innerDays int, cfg *Config) (*RankSelection, error) {
	return selectRank(members, end, innerDays, RankCandidates(), cfg)
}

func selectRank(members []Member, end time.Time, innerDays int, cands []RankSpec, cfg *Config) (*RankSelection, error) {
	if innerDays < 1 {
		return nil, fmt.Errorf("%w: inner split of %d days", ErrInvalid, innerDays)
	}
	c := cfg.withDefaults()
	hs := histories(members, end, &c)
	e := DayOf(end, c.Location)
	sel := &RankSelection{End: e.String()}
	fits := bgFits{}
	type fold struct {
		vcut, vend Day
		truth      []bool
	}
	folds := make([]fold, RankFolds)
	for i := range folds {
		f := &folds[i]
		f.vend = e - Day(RankFoldStep*i)
		f.vcut = f.vend - Day(innerDays)
		sel.Folds = append(sel.Folds, RankFold{TrainCut: (f.vcut - Day(innerDays)).String(), ValidCut: f.vcut.String(), End: f.vend.String()})
	}
	for _, spec := range cands {
		x, ok := rankSet(spec.Features)
		if !ok {
			return nil, fmt.Errorf("%w: ranking spec %+v", ErrInvalid, spec)
		}
		cand := RankCandidate{Spec: spec}
		for i := range folds {
			f := &folds[i]
			m, err := trainRank(hs, f.vcut, innerDays, spec, fits)
			if err != nil {
				return nil, fmt.Errorf("select ranking: %s, split to %s: %w", spec, f.vend, err)
			}
			X, y, pos, err := rankRows(nil, nil, hs, f.vcut, f.vend, x, fits)
			if err != nil {
				return nil, fmt.Errorf("select ranking: %s, split to %s: %w", spec, f.vend, err)
			}
			k := 1 + rankWidth(x)
			scores := make([]float64, len(y))
			truth := make([]bool, len(y))
			for r := range y {
				scores[r], truth[r] = m.scoreRow(X[r*k+1:r*k+k]), y[r] == 1
			}
			sel.Folds[i].Members, sel.Folds[i].Positives = len(y), pos
			auc := AUC(scores, truth)
			cand.FoldAUC = append(cand.FoldAUC, auc)
			cand.ValidationAUC += auc / float64(len(folds))
		}
		cand.ValidationAUC = math.Round(cand.ValidationAUC*1e12) / 1e12
		sel.Candidates = append(sel.Candidates, cand)
		if len(sel.Candidates) == 1 || cand.ValidationAUC > sel.ChosenAUC {
			sel.Chosen, sel.ChosenAUC = spec, cand.ValidationAUC
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

// scoreRow is the model's probability of no purchase ahead for a row of
// features (without the leading 1).
func (m *RankModel) scoreRow(row []float64) float64 {
	var p float64
	kind := m.Spec.kind()
	if kind != RankTrees {
		z := m.Intercept
		for j, v := range row {
			z += m.Coef[j] * v
		}
		p = 1 / (1 + math.Exp(-z))
	}
	if kind != RankLogistic {
		z := m.TreeBase
		for i := range m.Trees {
			z += m.Trees[i].predict(row)
		}
		pt := 1 / (1 + math.Exp(-z))
		if kind == RankTrees {
			return pt
		}
		p = (p + pt) / 2
	}
	return p
}

// Score is the model's probability that a member with history h makes no
// purchase ahead, as of asOf; popMedian is the population's median
// interval for members with one purchase day, fit the BG/NBD model fitted
// as of asOf (needed by the "bgnbd" features only; nil otherwise). False
// without a purchase, or without the fit the features need.
func (m *RankModel) Score(h History, asOf Day, popMedian float64, fit *bgnbd.Params) (float64, bool) {
	var buf [32]float64
	x, _ := rankSet(m.Spec.Features)
	row := buf[:len(m.Features)]
	if !rankRow(row, x, h, asOf, rankCtx{pop: popMedian, bg: fit, horizon: m.Horizon}) {
		return 0, false
	}
	return m.scoreRow(row), true
}

// ScoreProfile scores a profile of a (with a's BG/NBD fit).
func (m *RankModel) ScoreProfile(a *Analysis, p *Profile) (float64, bool) {
	var fit *bgnbd.Params
	if a.Model != nil {
		fit = &a.Model.Params
	}
	return m.Score(p.history, a.AsOf, a.PopulationMedianInterval, fit)
}
