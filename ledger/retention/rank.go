package retention

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
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
	// "spline" lets recency bend: a linear spline of log(1 + days since
	// the last purchase) with knots at 30, 90 and 180 days (a month, a
	// quarter, half a year; fixed in advance, not fitted).
	rankSplineFeatures = []string{
		"log(1 + days since last purchase) past 30 days",
		"log(1 + days since last purchase) past 90 days",
		"log(1 + days since last purchase) past 180 days",
	}
	// "ratio" measures the member against their own age, so members of
	// any age are on one scale: the share of their life since the last
	// purchase, the share their repeat purchases span (BG/NBD's t_x/T),
	// and repeat days times the first.
	rankRatioFeatures = []string{
		"days since last purchase / days since first purchase",
		"days from first to last purchase / days since first purchase",
		"log(1 + repeat purchase days) x days since last / days since first",
	}
)

// RankFeatureSets are the feature sets the ranking model has been trained
// on in the candidate rounds; any "base" followed by extra blocks in the
// order shape, recent, inter, rhythm, spline, ratio, bgnbd (each once,
// joined by "+") is a feature set.
var RankFeatureSets = []string{"base", "base+shape", "base+recent", "base+shape+recent", "base+inter", "base+shape+recent+inter", "base+inter+rhythm", "base+inter+rhythm+bgnbd"}

// rankExtras says which extra features a set has.
type rankExtras struct{ shape, recent, inter, rhythm, spline, ratio, bg bool }

// rankBlocks are the extra blocks in the order their features come.
var rankBlocks = []string{"shape", "recent", "inter", "rhythm", "spline", "ratio", "bgnbd"}

// rankSet says which extras a feature set has: "base", then blocks in
// rankBlocks order, each at most once.
func rankSet(name string) (rankExtras, bool) {
	parts := strings.Split(name, "+")
	if parts[0] != "base" {
		return rankExtras{}, false
	}
	var x rankExtras
	next := 0
	for _, part := range parts[1:] {
		i := slices.Index(rankBlocks, part)
		if i < next {
			return rankExtras{}, false
		}
		next = i + 1
		switch part {
		case "shape":
			x.shape = true
		case "recent":
			x.recent = true
		case "inter":
			x.inter = true
		case "rhythm":
			x.rhythm = true
		case "spline":
			x.spline = true
		case "ratio":
			x.ratio = true
		case "bgnbd":
			x.bg = true
		}
	}
	return x, true
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
	if x.spline {
		names = append(names, rankSplineFeatures...)
	}
	if x.ratio {
		names = append(names, rankRatioFeatures...)
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
var DefaultRankSpec = RankSpec{Model: RankLogistic, Features: "base+inter+rhythm+bgnbd", L2: 0.3, Cuts: 1}

// RankCandidates are the specs SelectRank compares: the fifth round's,
// drawn up on the calibration period's validation splits only and written,
// with every candidate's validation AUCs and the choice, into
// docs/retention-eval.md (commit 4d2e45b, "pre-registration, round 5";
// the section is replaced by the result since) before the holdout
// was read for any of them: the fourth round's choice, and with a stronger
// ridge; training rows pooled from three cut-offs 30 days apart (rolling
// origin; without BG/NBD, which cannot be fitted at the earliest cuts); a
// linear spline of recency ("spline"); recency and span as shares of the
// member's age ("ratio"); and everything together.
func RankCandidates() []RankSpec {
	const rhbg, all = "base+inter+rhythm+bgnbd", "base+inter+rhythm+spline+ratio+bgnbd"
	return []RankSpec{
		{Model: RankLogistic, Features: rhbg, L2: 0.1, Cuts: 1},
		{Model: RankLogistic, Features: rhbg, L2: 0.3, Cuts: 1},
		{Model: RankLogistic, Features: "base+inter+rhythm", L2: 0.1, Cuts: 3},
		{Model: RankLogistic, Features: "base+inter+spline", L2: 0.3, Cuts: 1},
		{Model: RankLogistic, Features: "base+inter+ratio", L2: 0.3, Cuts: 1},
		{Model: RankLogistic, Features: all, L2: 0.1, Cuts: 1},
		{Model: RankLogistic, Features: all, L2: 0.3, Cuts: 1},
		{Model: RankLogistic, Features: "base+recent+inter+rhythm+spline+ratio+bgnbd", L2: 0.3, Cuts: 1},
	}
}

// PreviousRankSpec is the fourth round's choice (eight candidates on the
// same rolling splits, gradient-boosted trees among them), and
// EarlierRankSpec the one a single validation split chose before; the
// evaluation shows their holdout AUCs for the record (both were read in
// their rounds).
var (
	PreviousRankSpec = RankSpec{Model: RankLogistic, Features: "base+inter+rhythm+bgnbd", L2: 0.1, Cuts: 1}
	EarlierRankSpec  = RankSpec{Model: RankLogistic, Features: "base+inter", L2: 0.1, Cuts: 1}
)

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
	log1p   []float64 // log1p of 0, 1, 2, ... (the same bits as math.Log1p), or nil
}

// l1p is math.Log1p of a whole number of days or purchases, from the
// table when it has it.
func (c *rankCtx) l1p(v int) float64 {
	if v >= 0 && v < len(c.log1p) {
		return c.log1p[v]
	}
	return math.Log1p(float64(v))
}

// rankLog1pTable is math.Log1p of 0 to n-1.
func rankLog1pTable(n int) []float64 {
	t := make([]float64, n)
	for i := range t {
		t[i] = math.Log1p(float64(i))
	}
	return t
}

// bgPair is BG/NBD's P(alive) and P(no purchase in t) of c, the latter
// as bgnbd.Params.PNoPurchase computes it without computing P(alive)
// twice (TestBGPairIsPNoPurchase).
func bgPair(p *bgnbd.Params, c bgnbd.Customer, t float64) (float64, float64) {
	pa := p.PAlive(c)
	x := float64(c.X)
	stay := math.Exp((p.R + x) * (math.Log(p.Alpha+c.T) - math.Log(p.Alpha+c.T+t)))
	return pa, (1 - pa) + pa*stay
}

// rankRow computes a member's features from a cleaned history as of day
// into row (as many as the set has); false without a purchase.
func rankRow(row []float64, x rankExtras, h History, asOf Day, ctx *rankCtx) bool {
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
	row[0] = ctx.l1p(int(asOf - last))
	row[1] = ctx.l1p(n - 1)
	row[2] = ctx.l1p(int(asOf - first))
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
	if x.spline {
		for j, knot := range rankSplineKnots {
			row[k+j] = math.Max(0, row[0]-knot)
		}
		k += len(rankSplineKnots)
	}
	if x.ratio {
		a := math.Max(age, 1)
		row[k] = rec / a
		row[k+1] = float64(last-first) / a
		row[k+2] = row[1] * row[k]
		k += 3
	}
	if x.bg && ctx.bg != nil { // else the caller fills them
		c := bgnbd.Customer{X: n - 1, Tx: float64(last-first) / 7, T: age / 7}
		row[k], row[k+1] = bgPair(ctx.bg, c, float64(ctx.horizon)/7)
	}
	return true
}

// rankSplineKnots are the "spline" block's knots: log(1 + 30, 90, 180 days).
var rankSplineKnots = [...]float64{3.4339872044851463, 4.5108595065168497, 5.1984970312658261}

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
	if x.spline {
		k += len(rankSplineFeatures)
	}
	if x.ratio {
		k += len(rankRatioFeatures)
	}
	if x.bg {
		k += len(rankBGFeatures)
	}
	return k
}

// histories cleans every member as of asOf.
// From rankChunkRows members it cleans rankChunks parts at once, each
// with its own cleaner (a member's history depends on that member only).
func histories(members []Member, asOf time.Time, c *Config) []History {
	hs := make([]History, len(members))
	parts := 1
	if len(members) >= rankChunkRows {
		parts = rankChunks
	}
	size := (len(members) + parts - 1) / parts
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*size, min(len(members), (p+1)*size)
		wg.Go(func() {
			cl := newPopulationCleaner(asOf, c)
			for i := lo; i < hi; i++ {
				hs[i], _ = cl.clean(&members[i])
			}
		})
	}
	wg.Wait()
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
// TrainRank does with end = the analysis date. When BG/NBD cannot be
// fitted as of the cut, or the analysis has no BG/NBD fit of its own
// (which scoring its profiles would need), it trains the same spec
// without the "bgnbd" features.
func (a *Analysis) TrainRank(innerDays int) (*RankModel, error) {
	hs := make([]History, len(a.Profiles))
	for i := range a.Profiles {
		hs[i] = a.Profiles[i].history()
	}
	spec := DefaultRankSpec
	withoutBG := spec
	withoutBG.Features = strings.TrimSuffix(spec.Features, "+bgnbd")
	if a.Model == nil {
		spec = withoutBG
	}
	m, err := trainRank(hs, a.AsOf, innerDays, spec, nil)
	if err != nil && errors.Is(err, ErrNoData) && spec != withoutBG {
		// BG/NBD cannot be fitted as of the cut (too few or too young
		// members): the same model without its features.
		m, err = trainRank(hs, a.AsOf, innerDays, withoutBG, nil)
	}
	return m, err
}

// bgFits holds BG/NBD fits on the histories as they stood on a day (each
// fitted once): the "bgnbd" features of rows taken as of that day.
type bgFits map[Day]*bgnbd.Params

// fitBG fits BG/NBD on customers summarised as of day.
func fitBG(cs []bgnbd.Customer, day Day) (*bgnbd.Params, error) {
	fit, err := bgnbd.FitParams(cs, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: BG/NBD as of %s for the ranking features: %v", ErrNoData, day, err)
	}
	return &fit.Params, nil
}

// rankRows computes the rows (a leading 1, then the features) and targets
// of the members as of cut, target "no purchase after cut up to end", from
// histories that may go beyond end. It appends to X and y and returns
// them with the number of positives. The "bgnbd" features need BG/NBD
// fitted as of cut on the same members: unless fits has it, the fit runs
// beside the other features' computation and its two columns are filled
// after.
func rankRows(X, y []float64, hs []History, cut, end Day, x rankExtras, fits bgFits) ([]float64, []float64, int, error) {
	upTo := make([]int32, len(hs))
	ivs := make([]float64, 0, len(hs))
	var cs []bgnbd.Customer
	if x.bg {
		cs = make([]bgnbd.Customer, 0, len(hs))
	}
	for i, h := range hs {
		n := sort.Search(len(h.Days), func(j int) bool { return h.Days[j] > cut })
		upTo[i] = int32(n)
		if n > 1 {
			ivs = append(ivs, float64(h.Days[n-1]-h.Days[0])/float64(n-1))
		}
		if x.bg && n > 0 {
			cs = append(cs, bgnbd.Customer{X: n - 1, Tx: float64(h.Days[n-1]-h.Days[0]) / 7, T: float64(cut-h.Days[0]) / 7})
		}
	}
	ctx := rankCtx{pop: medianInPlace(ivs), horizon: int(end - cut)}
	type fitted struct {
		p   *bgnbd.Params
		err error
	}
	var pending chan fitted
	if x.bg {
		if p, ok := fits[cut]; ok {
			ctx.bg = p
		} else {
			pending = make(chan fitted, 1)
			go func() {
				p, err := fitBG(cs, cut)
				pending <- fitted{p, err}
			}()
		}
	}
	ctx.log1p = rankLog1pTable(rankLog1pDays)
	k := 1 + rankWidth(x)
	from := len(y)
	// The members with a purchase by the cut are the rows, in order.
	idx := make([]int32, 0, len(hs))
	for i, n := range upTo {
		if n > 0 {
			idx = append(idx, int32(i))
		}
	}
	X, y = slices.Grow(X, len(idx)*k)[:len(X)+len(idx)*k], slices.Grow(y, len(idx))[:from+len(idx)]
	rows := func(lo, hi int) int {
		pos := 0
		for r := lo; r < hi; r++ {
			i := idx[r]
			h, n := hs[i], int(upTo[i])
			row := X[(from+r)*k : (from+r+1)*k]
			row[0] = 1
			rankRow(row[1:], x, History{Days: h.Days[:n], Spend: h.Spend[:n]}, cut, &ctx)
			stay := 1.0
			if n < len(h.Days) && h.Days[n] <= end {
				stay = 0
			}
			y[from+r] = stay
			pos += int(stay)
		}
		return pos
	}
	pos := 0
	if len(idx) < rankChunkRows {
		pos = rows(0, len(idx))
	} else {
		var wg sync.WaitGroup
		counts := make([]int, rankChunks)
		size := (len(idx) + rankChunks - 1) / rankChunks
		for c := range rankChunks {
			wg.Go(func() { counts[c] = rows(c*size, min(len(idx), (c+1)*size)) })
		}
		wg.Wait()
		for _, c := range counts {
			pos += c
		}
	}
	if pending != nil {
		f := <-pending
		if f.err != nil {
			return X, y, 0, f.err
		}
		fits[cut] = f.p
		t := float64(ctx.horizon) / 7
		for r, c := range cs { // the rows, in the same order
			row := X[(from+r)*k : (from+r+1)*k]
			row[k-2], row[k-1] = bgPair(f.p, c, t)
		}
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
	// LeftOut says why a candidate could not be trained or scored on
	// every split (e.g. no BG/NBD fit on the young members of the
	// earliest split); such a candidate is not chosen.
	LeftOut string `json:"left_out,omitempty"`
}

// RankFold is one validation split of SelectRank.
type RankFold struct {
	TrainCut  string `json:"train_cut"` // candidates trained with features as of this day, target to ValidCut ...
	ValidCut  string `json:"valid_cut"` // ... and validated on the members as of this day, target to End
	End       string `json:"end"`
	Members   int    `json:"members"`   // validation rows
	Positives int    `json:"positives"` // of them without a purchase

	vcut, vend Day
}

// RankSelection is SelectRank's result: every candidate's validation AUC
// on each split, their mean, and the one chosen.
type RankSelection struct {
	End        string          `json:"end"`        // the end of the data used
	Folds      []RankFold      `json:"folds"`      // latest first
	Candidates []RankCandidate `json:"candidates"` // in RankCandidates order
	Chosen     RankSpec        `json:"chosen"`     // the best mean validation AUC; the earlier candidate on a tie; never one left out
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
	for i := range RankFolds {
		vend := e - Day(RankFoldStep*i)
		vcut := vend - Day(innerDays)
		sel.Folds = append(sel.Folds, RankFold{TrainCut: (vcut - Day(innerDays)).String(), ValidCut: vcut.String(), End: vend.String(), vcut: vcut, vend: vend})
	}
	for _, spec := range cands {
		cand, err := validateRank(hs, spec, innerDays, sel.Folds, fits)
		if err != nil && !errors.Is(err, ErrNoData) {
			return nil, err
		}
		if err != nil {
			cand = RankCandidate{Spec: spec, LeftOut: err.Error()}
		}
		sel.Candidates = append(sel.Candidates, cand)
		if cand.LeftOut == "" && (sel.Chosen == RankSpec{} || cand.ValidationAUC > sel.ChosenAUC) {
			sel.Chosen, sel.ChosenAUC = spec, cand.ValidationAUC
		}
	}
	if sel.Chosen == (RankSpec{}) {
		return nil, fmt.Errorf("%w: select ranking: no candidate could be trained on every split (first: %s)", ErrNoData, sel.Candidates[0].LeftOut)
	}
	return sel, nil
}

// validateRank trains spec on each split and scores it there; it fills
// each fold's validation counts.
func validateRank(hs []History, spec RankSpec, innerDays int, folds []RankFold, fits bgFits) (RankCandidate, error) {
	cand := RankCandidate{Spec: spec}
	x, ok := rankSet(spec.Features)
	if !ok {
		return cand, fmt.Errorf("%w: ranking spec %+v", ErrInvalid, spec)
	}
	for i := range folds {
		f := &folds[i]
		m, err := trainRank(hs, f.vcut, innerDays, spec, fits)
		if err != nil {
			return cand, fmt.Errorf("select ranking: %s, split to %s: %w", spec, f.vend, err)
		}
		X, y, pos, err := rankRows(nil, nil, hs, f.vcut, f.vend, x, fits)
		if err != nil {
			return cand, fmt.Errorf("select ranking: %s, split to %s: %w", spec, f.vend, err)
		}
		k := 1 + rankWidth(x)
		scores := make([]float64, len(y))
		truth := make([]bool, len(y))
		for r := range y {
			scores[r], truth[r] = m.scoreRow(X[r*k+1:r*k+k]), y[r] == 1
		}
		f.Members, f.Positives = len(y), pos
		auc := AUC(scores, truth)
		cand.FoldAUC = append(cand.FoldAUC, auc)
		cand.ValidationAUC += auc / float64(len(folds))
	}
	cand.ValidationAUC = math.Round(cand.ValidationAUC*1e12) / 1e12
	return cand, nil
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
// tenth row ends, and uses the tenth's last Hessian, scaled by ten, in
// place of the whole's (a full Hessian pass is most of a fit's work): on
// the benchmark's 75,000 rows chord steps only, and the tenth's passes
// cost a tenth; the tenth (from rankWarmSubRows rows) starts the same
// way from its own tenth. The maximum is the same (the penalty is per
// row, so the tenth's problem is the whole's in small); a chord step that
// does not halve the last computes the Hessian;
// TestLogisticWarmStartSameFit.
func fitLogistic(X []float64, k int, y []float64, l2 float64) ([]float64, error) {
	return fitLogisticWarm(X, k, y, l2, rankWarmRows)
}

// fitLogisticWarm is fitLogistic starting from a tenth's fit from warm
// rows on; the tenth itself starts from its own tenth from
// rankWarmSubRows rows on.
func fitLogisticWarm(X []float64, k int, y []float64, l2 float64, warm int) ([]float64, error) {
	var w0 []float64
	if n := len(y); n >= warm {
		sx := make([]float64, 0, (n/10+1)*k)
		sy := make([]float64, 0, n/10+1)
		for i := 0; i < n; i += 10 {
			sx = append(sx, X[i*k:i*k+k]...)
			sy = append(sy, y[i])
		}
		var hint *mat.Cholesky
		var err error
		if len(sy) >= rankWarmSubRows {
			var w1 []float64
			if w1, err = fitLogisticWarm(sx, k, sy, l2, rankWarmSubRows); err == nil {
				w0, hint, err = newtonLogisticFrom(sx, k, sy, l2, w1, nil, 0)
			}
		} else {
			w0, hint, err = newtonLogisticFrom(sx, k, sy, l2, nil, nil, 0)
		}
		if err == nil {
			// The tenth's last Hessian, scaled to the whole, stands in
			// for the whole's first one (a full Hessian pass is most of
			// the work): chord steps from there reach the same maximum.
			w, _, err := newtonLogisticFrom(X, k, y, l2, w0, hint, float64(len(sy))/float64(n))
			return w, err
		}
	}
	return newtonLogistic(X, k, y, l2, w0)
}

// rankWarmRows is the number of training rows from which fitLogistic
// starts from a tenth's fit.
const rankWarmRows = 20_000

// rankWarmSubRows is the same for the tenth's own fit.
const rankWarmSubRows = 5_000

// newtonLogistic is fitLogistic's Newton's method from w0 (zero when nil).
func newtonLogistic(X []float64, k int, y []float64, l2 float64, w0 []float64) ([]float64, error) {
	w, _, err := newtonLogisticFrom(X, k, y, l2, w0, nil, 0)
	return w, err
}

// newtonLogisticFrom is newtonLogistic whose first steps, when start is
// not nil, use start (a factorised Hessian) with their steps multiplied by
// scale instead of computing the Hessian; a step that does not at least
// halve the last one computes it. It returns the last factorisation.
func newtonLogisticFrom(X []float64, k int, y []float64, l2 float64, w0 []float64, start *mat.Cholesky, scale float64) ([]float64, *mat.Cholesky, error) {
	w := make([]float64, k)
	copy(w, w0)
	H := mat.NewSymDense(k, nil)
	g := mat.NewVecDense(k, nil)
	var step mat.VecDense
	var chol mat.Cholesky
	pen := l2 * float64(len(y))
	frozen := false
	if start != nil {
		chol.Clone(start)
		frozen = true
	} else {
		scale = 1
	}
	last := math.Inf(1)
	var parts [][]float64 // per chunk: gradient, then Hessian
	for it := 0; it < 100; it++ {
		if !frozen {
			H.Zero()
		}
		g.Zero()
		hd := H.RawSymmetric().Data
		gd := g.RawVector().Data
		if len(y) < rankChunkRows {
			logisticPass(X, k, y, w, gd, hd, frozen)
		} else {
			// Fixed chunks, each on its own goroutine with its own sums,
			// added in chunk order: the same result on any number of
			// cores.
			if parts == nil {
				parts = make([][]float64, rankChunks)
				for c := range parts {
					parts[c] = make([]float64, k+k*k)
				}
			}
			var wg sync.WaitGroup
			size := (len(y) + rankChunks - 1) / rankChunks
			for c := range rankChunks {
				lo, hi := c*size, min(len(y), (c+1)*size)
				wg.Go(func() {
					pg, ph := parts[c][:k], parts[c][k:]
					clear(pg)
					if !frozen {
						clear(ph)
					}
					logisticPass(X[lo*k:hi*k], k, y[lo:hi], w, pg, ph, frozen)
				})
			}
			wg.Wait()
			for c := range rankChunks {
				for j, v := range parts[c][:k] {
					gd[j] += v
				}
				if !frozen {
					for j, v := range parts[c][k:] {
						hd[j] += v
					}
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
				return nil, nil, fmt.Errorf("%w: logistic regression: the Hessian is singular (the features do not separate)", ErrNoData)
			}
			scale = 1
		}
		if err := chol.SolveVecTo(&step, g); err != nil {
			return nil, nil, fmt.Errorf("%w: logistic regression: %v", ErrNoData, err)
		}
		if scale != 1 {
			step.ScaleVec(scale, &step)
		}
		for j := range w {
			w[j] += step.AtVec(j)
		}
		norm := mat.Norm(&step, math.Inf(1))
		if norm < 1e-10 {
			return w, &chol, nil
		}
		// From a warm start the first Hessian is already close to the
		// one at the maximum: keep it from the first step on, and as
		// long as chord steps shrink at least eightfold. A chord step
		// that does not at least halve the last one recomputes it.
		frozen = (norm < 1e-4 || w0 != nil && it == 0 || frozen && norm < last/8) && !(frozen && norm > last/2)
		last = norm
	}
	return w, &chol, nil
}

// rankLog1pDays is the size of rankRows' table of log1p of whole numbers
// (days up to about eleven years).
const rankLog1pDays = 4096

// rankChunkRows is the number of rows from which the logistic
// regression's passes (and the cleaning of histories) run in rankChunks
// fixed chunks at once.
const (
	rankChunkRows = 20_000
	rankChunks    = 4
)

// logisticPass adds the log-likelihood's gradient at w over the rows to
// gd and, unless frozen, the negative Hessian's upper triangle to hd.
func logisticPass(X []float64, k int, y, w, gd, hd []float64, frozen bool) {
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
			// The upper triangle's row j from column j, as slices of one
			// length so the loop has no bounds checks.
			xs := xi[j:]
			row := hd[j*k+j : j*k+k]
			row = row[:len(xs)]
			for l, v := range xs {
				row[l] += qv * v
			}
		}
	}
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
	if x.bg && fit == nil {
		return 0, false
	}
	row := buf[:len(m.Features)]
	if !rankRow(row, x, h, asOf, &rankCtx{pop: popMedian, bg: fit, horizon: m.Horizon}) {
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
	return m.Score(p.history(), a.AsOf, a.PopulationMedianInterval, fit)
}
