package bgnbd

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/optimize"
)

// Sentinel errors. Callers test with errors.Is.
var (
	// ErrNoConvergence reports an optimiser that stopped without reaching a
	// maximum of the likelihood, or landed on parameters that are not finite
	// and positive. The fit is not returned: a garbage fit is worse than none.
	ErrNoConvergence = errors.New("bgnbd: fit did not converge")
	// ErrDegenerate reports a fit whose maximum lies on a bound of the
	// parameter space (e.g. nobody ever drops out): the data do not
	// identify the model. FitParams returns the fit beside it so reports
	// can show it.
	ErrDegenerate = errors.New("bgnbd: degenerate fit")
	// ErrTooLittleData reports a data set that cannot identify the model:
	// fewer than MinCustomers customers, or nobody who bought twice.
	ErrTooLittleData = errors.New("bgnbd: too little data to fit")
	// ErrInvalid reports a customer summary or parameter set that breaks
	// the model's assumptions (negative counts, recency beyond age, ...).
	ErrInvalid = errors.New("bgnbd: invalid input")
	// ErrNumeric reports a prediction the special functions cannot evaluate
	// (the hypergeometric series outside its domain).
	ErrNumeric = errors.New("bgnbd: numeric evaluation failed")
)

// MinCustomers is the smallest number of customers Fit accepts.
const MinCustomers = 10

// Customer is one customer's calibration summary: X repeat purchases (the
// first purchase is not counted), Tx the time from first to last purchase,
// and T the time from first purchase to the end of calibration. Tx and T use
// the same unit (weeks by convention), and 0 <= Tx <= T.
type Customer struct {
	X  int
	Tx float64
	T  float64
}

// Validate reports whether c fits the model's assumptions.
func (c Customer) Validate() error {
	switch {
	case c.X < 0:
		return fmt.Errorf("%w: negative repeat count %d", ErrInvalid, c.X)
	case math.IsNaN(c.Tx) || math.IsNaN(c.T) || math.IsInf(c.T, 0) || math.IsInf(c.Tx, 0):
		return fmt.Errorf("%w: non-finite recency or age", ErrInvalid)
	case c.Tx < 0 || c.T < 0:
		return fmt.Errorf("%w: negative recency %g or age %g", ErrInvalid, c.Tx, c.T)
	case c.Tx > c.T:
		return fmt.Errorf("%w: recency %g beyond age %g", ErrInvalid, c.Tx, c.T)
	case c.X == 0 && c.Tx != 0:
		return fmt.Errorf("%w: recency %g without repeat purchases", ErrInvalid, c.Tx)
	case c.X > 0 && c.Tx == 0:
		return fmt.Errorf("%w: %d repeat purchases with zero recency", ErrInvalid, c.X)
	}
	return nil
}

// Params are the four BG/NBD parameters: purchase rates are
// Gamma(R, Alpha) across customers, drop-out probabilities Beta(A, B).
type Params struct {
	R     float64 `json:"r"`
	Alpha float64 `json:"alpha"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
}

// Validate reports whether every parameter is finite and positive.
func (p Params) Validate() error {
	for _, v := range []float64{p.R, p.Alpha, p.A, p.B} {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: parameters must be finite and positive: %+v", ErrInvalid, p)
		}
	}
	return nil
}

// Fit is a maximum-likelihood fit.
type Fit struct {
	Params
	LogLik     float64 `json:"log_likelihood"`
	Customers  int     `json:"customers"`
	Distinct   int     `json:"distinct_summaries"` // distinct (x, tx, T) triples the likelihood was evaluated on
	Iterations int     `json:"iterations"`
	// AtBound names each parameter that ended on a bound of the fit
	// (see FitParams); empty for an inside maximum.
	AtBound []string `json:"at_bound,omitempty"`
}

// Options tunes Fit. A nil *Options means defaults.
type Options struct {
	// Init is the starting point; default r=alpha=a=b=1 with alpha scaled
	// to the mean age, which works for day, week and month units alike.
	Init *Params
	// MaxIterations bounds each optimiser stage; default 5000.
	MaxIterations int
}

// group is one distinct (x, tx, T) triple with its multiplicity.
type group struct {
	x     int
	tx, t float64
	n     float64
}

// aggregate folds identical triples: with day-granular data the number of
// distinct triples is far below the number of customers, and the likelihood
// only has to be evaluated once per triple. The groups come out ordered by
// x (first seen first within an x), which lets the log-likelihood compute
// the gamma-function terms once per distinct x. An open-addressing table
// keyed by a mix of the triple's bits does the folding: a Go map of the
// struct hashed 24 bytes per customer and was a third of a 100,000-customer
// fit.
func aggregate(cs []Customer) ([]group, error) {
	size := 16
	for size < 2*len(cs) {
		size <<= 1
	}
	mask := uint64(size - 1)
	slots := make([]int32, size) // group index + 1; 0 is empty
	// At most one group per customer: allocated once rather than grown.
	gs := make([]group, 0, len(cs))
	maxX := 0
	for i, c := range cs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("customer %d: %w", i, err)
		}
		// +0 folds -0 into 0, as == (and a map) does.
		tx, t := c.Tx+0, c.T+0
		h := uint64(c.X)*0x9e3779b97f4a7c15 ^ math.Float64bits(tx)*0xc2b2ae3d27d4eb4f ^ math.Float64bits(t)*0x165667b19e3779f9
		h ^= h >> 31
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 29
		for k := h & mask; ; k = (k + 1) & mask {
			j := slots[k]
			if j == 0 {
				gs = append(gs, group{x: c.X, tx: tx, t: t, n: 1})
				slots[k] = int32(len(gs))
				maxX = max(maxX, c.X)
				break
			}
			if g := &gs[j-1]; g.x == c.X && g.tx == tx && g.t == t {
				g.n++
				break
			}
		}
	}
	return byX(gs, maxX), nil
}

// byX orders gs by x, stably (x at most maxX): by a counting sort into
// a new slice, as x is a small count, unless x runs far beyond the number
// of groups.
func byX(gs []group, maxX int) []group {
	if maxX > 4*len(gs) {
		sort.SliceStable(gs, func(i, j int) bool { return gs[i].x < gs[j].x })
		return gs
	}
	start := make([]int, maxX+2)
	for _, g := range gs {
		start[g.x+1]++
	}
	for x := 1; x < len(start); x++ {
		start[x] += start[x-1]
	}
	out := make([]group, len(gs))
	for _, g := range gs {
		out[start[g.x]] = g
		start[g.x]++
	}
	return out
}

// Group is customers sharing one summary: the summary and how many.
type Group struct {
	Customer
	N int
}

// Grouped is a population's customers folded by identical summary, as
// a fit takes them: All holds each distinct summary once, in the order
// of its first customer, with the number of customers that have it;
// Tenth is the same of every tenth customer (the first, the eleventh,
// ...), from which a large fit starts (see warmStartGroups).
type Grouped struct {
	All, Tenth []Group
}

// FitGrouped is FitParams of the customers g folds, for a caller that
// has folded them already (package retention, whose summaries are whole
// days, keys them by integers): the same fit, to the bit, without
// folding the summaries again.
func FitGrouped(g Grouped, opts *Options) (Fit, error) {
	gs, n, err := fromGroups(g.All)
	if err != nil {
		return Fit{}, err
	}
	return fitGroups(gs, n, func() ([]group, error) {
		sub, _, err := fromGroups(g.Tenth)
		return sub, err
	}, opts)
}

// fromGroups is the groups of gs ordered by x as aggregate orders them
// (stably: a counting sort as it is written out, or byX when x runs
// far), and the number of customers they hold.
func fromGroups(gs []Group) ([]group, int, error) {
	n, maxX := 0, 0
	for i, g := range gs {
		if err := g.Validate(); err != nil {
			return nil, 0, fmt.Errorf("group %d: %w", i, err)
		}
		if g.N <= 0 {
			return nil, 0, fmt.Errorf("%w: group %d of %d customers", ErrInvalid, i, g.N)
		}
		n += g.N
		maxX = max(maxX, g.X)
	}
	// +0 folds -0 into 0, as aggregate does.
	out := make([]group, len(gs))
	if maxX > 4*len(gs) {
		for i, g := range gs {
			out[i] = group{x: g.X, tx: g.Tx + 0, t: g.T + 0, n: float64(g.N)}
		}
		return byX(out, maxX), n, nil
	}
	start := make([]int, maxX+2)
	for _, g := range gs {
		start[g.X+1]++
	}
	for x := 1; x < len(start); x++ {
		start[x] += start[x-1]
	}
	for _, g := range gs {
		out[start[g.X]] = group{x: g.X, tx: g.Tx + 0, t: g.T + 0, n: float64(g.N)}
		start[g.X]++
	}
	return out, n, nil
}

// logLik is the BG/NBD log-likelihood (Fader, Hardie and Lee 2005, eq. 6)
// summed over the groups.
func logLik(p Params, gs []group) float64 {
	return newData(gs).eval(p, nil)
}

// LogLikelihood returns the log-likelihood of p on cs.
func (p Params) LogLikelihood(cs []Customer) (float64, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	gs, err := aggregate(cs)
	if err != nil {
		return 0, err
	}
	return logLik(p, gs), nil
}

// Bounds of the fit, on the scale the optimiser works on: log r, log
// alpha, logit of the mean drop-out probability m = a/(a+b), and log of the
// Beta's concentration a+b. Inside them the likelihood is well defined; a
// maximum on one of them means the data do not pin that parameter down
// (Fit.AtBound says which).
var fitBounds = [4][2]float64{{-10, 10}, {-10, 12}, {-12, 12}, {-8, 10}}

// boundNames describes a fit on each bound (lower, upper).
var boundNames = [4][2]string{
	{"r at its lower bound (purchase rates all near zero)", "r at its upper bound (purchase rates all the same)"},
	{"alpha at its lower bound", "alpha at its upper bound"},
	{"a/(a+b) at its lower bound: nobody ever drops out", "a/(a+b) at its upper bound: everyone drops out after each purchase"},
	{"a+b at its lower bound", "a+b at its upper bound: every customer has the same drop-out probability (the Beta has collapsed to a point)"},
}

// box maps an unbounded optimiser coordinate into [lo, hi] and returns the
// derivative of the map.
func box(u float64, b [2]float64) (v, dv float64) {
	s := 1 / (1 + math.Exp(-u))
	return b[0] + (b[1]-b[0])*s, (b[1] - b[0]) * s * (1 - s)
}

func unbox(v float64, b [2]float64) float64 {
	s := (v - b[0]) / (b[1] - b[0])
	s = math.Min(math.Max(s, 1e-9), 1-1e-9)
	return math.Log(s / (1 - s))
}

// toParams maps optimiser coordinates to the model's parameters and the
// derivatives of (log r, log alpha, logit m, log(a+b)) with respect to them.
// Unboxed, the coordinates are those four themselves.
func toParams(u []float64, boxed bool) (Params, [4]float64, [4]float64, bool) {
	var th, dth [4]float64
	for i := range 4 {
		if math.IsNaN(u[i]) {
			return Params{}, th, dth, false
		}
		if !boxed {
			th[i], dth[i] = u[i], 1
			continue
		}
		th[i], dth[i] = box(u[i], fitBounds[i])
	}
	m := 1 / (1 + math.Exp(-th[2]))
	k := math.Exp(th[3])
	return Params{R: math.Exp(th[0]), Alpha: math.Exp(th[1]), A: m * k, B: (1 - m) * k}, th, dth, true
}

func fromParams(p Params, boxed bool) []float64 {
	m, k := p.A/(p.A+p.B), p.A+p.B
	th := [4]float64{math.Log(p.R), math.Log(p.Alpha), math.Log(m / (1 - m)), math.Log(k)}
	u := make([]float64, 4)
	for i := range 4 {
		u[i] = th[i]
		if boxed {
			u[i] = unbox(th[i], fitBounds[i])
		}
	}
	return u
}

// FitParams fits the model to cs by maximum likelihood. The optimiser works
// on bounded, reparametrised coordinates: log r and log alpha, and for the
// drop-out the mean probability a/(a+b) (as a logit) and the concentration
// a+b (as a log), each squeezed into the bounds of fitBounds. Data with very
// regular buyers push the Beta towards a point (a and b both large, their
// ratio finite); on the plain log scale that is a ridge the optimiser runs
// along without converging, here it is a bound the fit reaches and reports.
// BFGS with the analytic gradient starts from the default point; if it does
// not converge, or lands on a bound, further starts (and Nelder-Mead) are
// tried and the best stationary point wins.
//
// A fit with the mean drop-out probability on a bound (nobody ever drops
// out, or everyone does) or r on its lower bound does not identify the
// model: FitParams returns it (for the report) with an error wrapping
// ErrDegenerate. The other bounds are limiting models that still predict:
// a+b on its upper bound means every customer has the same drop-out
// probability, r and alpha large mean everyone buys at the same rate; the
// fit is returned without error and Fit.AtBound says so. No stationary
// point at all is ErrNoConvergence.
func FitParams(cs []Customer, opts *Options) (Fit, error) {
	if opts == nil {
		opts = &Options{}
	}
	if len(cs) < MinCustomers {
		return Fit{}, fmt.Errorf("%w: %d customers, need at least %d", ErrTooLittleData, len(cs), MinCustomers)
	}
	gs, err := aggregate(cs)
	if err != nil {
		return Fit{}, err
	}
	return fitGroups(gs, len(cs), func() ([]group, error) {
		sub := make([]Customer, 0, len(cs)/10+1)
		for i := 0; i < len(cs); i += 10 {
			sub = append(sub, cs[i])
		}
		return aggregate(sub)
	}, opts)
}

// fitGroups is FitParams of the n customers gs folds (ordered by x);
// tenth folds every tenth of them, for the warm start.
func fitGroups(gs []group, n int, tenth func() ([]group, error), opts *Options) (Fit, error) {
	if opts == nil {
		opts = &Options{}
	}
	if n < MinCustomers {
		return Fit{}, fmt.Errorf("%w: %d customers, need at least %d", ErrTooLittleData, n, MinCustomers)
	}
	repeaters, meanT, meanX := 0, 0.0, 0.0
	for _, g := range gs {
		if g.x > 0 {
			repeaters += int(g.n)
		}
		meanT += g.t * g.n
		meanX += float64(g.x) * g.n
	}
	meanT /= float64(n)
	meanX /= float64(n)
	if repeaters == 0 {
		return Fit{}, fmt.Errorf("%w: nobody made a repeat purchase", ErrTooLittleData)
	}
	if !(meanT > 0) {
		return Fit{}, fmt.Errorf("%w: every customer has zero age", ErrTooLittleData)
	}
	starts := []Params{{R: 1, Alpha: math.Max(meanT/4, 1e-3), A: 1, B: 1}}
	warm := false
	if opts.Init != nil {
		if err := opts.Init.Validate(); err != nil {
			return Fit{}, fmt.Errorf("initial parameters: %w", err)
		}
		starts[0] = *opts.Init
	}
	// Further starts: rates matched to the mean repeat rate, drop-out
	// rare and concentrated, and rare but spread.
	rate := math.Max(meanX/meanT, 1e-3)
	starts = append(starts,
		Params{R: 1, Alpha: 1 / rate, A: 0.1, B: 10},
		Params{R: 0.5, Alpha: 0.5 / rate, A: 1, B: 100},
		Params{R: 2, Alpha: 2 / rate, A: 0.5, B: 2})
	maxIter := opts.MaxIterations
	if maxIter <= 0 {
		maxIter = 5000
	}
	const gradTol = 1e-8
	if opts.Init == nil {
		if p, ok := warmStart(tenth, len(gs), starts[0], gradTol); ok {
			starts[0], warm = p, true
		}
	}
	d := newData(gs)
	total := d.total
	// Per-customer negative log-likelihood on the optimiser's coordinates,
	// so tolerances mean the same whatever the data set size. The
	// optimiser asks for the value and the gradient at the same point
	// separately; one pass computes both, so keep the last one.
	var lastV [4]float64
	var lastF float64
	var lastG [4]float64
	haveLast, boxed := false, false
	evalAt := func(v []float64) bool {
		if haveLast && v[0] == lastV[0] && v[1] == lastV[1] && v[2] == lastV[2] && v[3] == lastV[3] {
			return true
		}
		var p Params
		var dth [4]float64
		if boxed {
			var ok bool
			if p, _, dth, ok = toParams(v, true); !ok {
				return false
			}
		} else {
			// The quick path: plain log-parameters.
			for _, e := range v {
				if e > 30 || e < -30 || math.IsNaN(e) {
					return false
				}
			}
			p = Params{R: math.Exp(v[0]), Alpha: math.Exp(v[1]), A: math.Exp(v[2]), B: math.Exp(v[3])}
		}
		var g4 [4]float64
		ll := d.eval(p, g4[:])
		if math.IsNaN(ll) || math.IsInf(ll, 0) {
			return false
		}
		if !boxed {
			copy(lastV[:], v)
			lastF = -ll / total
			pv := [4]float64{p.R, p.Alpha, p.A, p.B}
			for i := range lastG {
				lastG[i] = -g4[i] * pv[i] / total
			}
			haveLast = true
			return true
		}
		// Chain rule: (r, alpha, a, b) -> (log r, log alpha, logit m,
		// log k) -> optimiser coordinates.
		m := p.A / (p.A + p.B)
		gth := [4]float64{
			g4[0] * p.R,
			g4[1] * p.Alpha,
			(g4[2] - g4[3]) * (p.A + p.B) * m * (1 - m),
			g4[2]*p.A + g4[3]*p.B,
		}
		copy(lastV[:], v)
		lastF = -ll / total
		for i := range lastG {
			lastG[i] = -gth[i] * dth[i] / total
		}
		haveLast = true
		return true
	}
	f := func(v []float64) float64 {
		if !evalAt(v) {
			return math.Inf(1)
		}
		return lastF
	}
	grad := func(g, v []float64) {
		if !evalAt(v) {
			for i := range g {
				g[i] = math.NaN()
			}
			return
		}
		copy(g, lastG[:])
	}
	settings := &optimize.Settings{MajorIterations: maxIter, GradientThreshold: gradTol}
	type cand struct {
		x     []float64
		f     float64
		iters int
	}
	var best *cand
	var lastStatus optimize.Status
	iters := 0
	tryFrom := func(x0 []float64) {
		res, _ := optimize.Minimize(optimize.Problem{Func: f, Grad: grad}, x0, settings, &optimize.BFGS{})
		if res != nil {
			iters += res.Stats.MajorIterations
			lastStatus = res.Status
		}
		// A line search that fails where the gradient is already flat
		// (rounding at the maximum) is a maximum all the same.
		if res == nil || !flat(grad, res.X) {
			nm, err := optimize.Minimize(optimize.Problem{Func: f}, x0,
				&optimize.Settings{MajorIterations: maxIter, Converger: &optimize.FunctionConverge{Absolute: 1e-12, Iterations: 200}},
				&optimize.NelderMead{})
			if nm == nil || err != nil && nm.Status.Early() {
				return
			}
			iters += nm.Stats.MajorIterations
			res, err = optimize.Minimize(optimize.Problem{Func: f, Grad: grad}, nm.X, settings, &optimize.BFGS{})
			if res != nil {
				iters += res.Stats.MajorIterations
			}
			if res == nil || err != nil || res.Status.Early() {
				res = nm
			}
			lastStatus = res.Status
			if !flat(grad, res.X) {
				return
			}
		}
		if v := f(res.X); best == nil || v < best.f {
			best = &cand{x: append([]float64(nil), res.X...), f: v}
		}
	}
	// First plain log-parameters from the default start: where the
	// maximum is well inside the bounds (CDNOW, most real data) this is
	// the quick path. Otherwise the boxed coordinates from every start.
	s0 := starts[0]
	if warm {
		// Newton's method from a tenth's maximum: a few passes.
		if p, it, ok := d.newton(s0, gradTol, 20); ok && inside(p) {
			iters += it
			// Its value is not needed: a candidate's value only ranks it
			// against other starts', and this one is taken as it is or,
			// near a bound, dropped for the boxed starts below.
			x := []float64{math.Log(p.R), math.Log(p.Alpha), math.Log(p.A), math.Log(p.B)}
			best = &cand{x: x}
		}
	}
	if best == nil {
		tryFrom([]float64{math.Log(s0.R), math.Log(s0.Alpha), math.Log(s0.A), math.Log(s0.B)})
	}
	if best != nil {
		th := fromParams(Params{R: math.Exp(best.x[0]), Alpha: math.Exp(best.x[1]), A: math.Exp(best.x[2]), B: math.Exp(best.x[3])}, false)
		for i, v := range th {
			lo, hi := fitBounds[i][0], fitBounds[i][1]
			if v < lo+0.005*(hi-lo) || v > hi-0.005*(hi-lo) {
				best = nil
				break
			}
		}
		if best != nil {
			best.x = th
		}
	}
	if best == nil {
		boxed, haveLast = true, false
		for i, s := range starts {
			tryFrom(fromParams(s, true))
			// The default start is enough when it reaches a maximum that
			// identifies the model.
			if i == 0 && best != nil && !degenerate(onBounds(best.x)) {
				break
			}
		}
	} else {
		best.x = fromParams(mustParams(best.x), true)
		boxed = true
	}
	if best == nil {
		return Fit{}, fmt.Errorf("%w: optimiser stopped (%v) where the likelihood is not flat, from %d starts", ErrNoConvergence, lastStatus, len(starts))
	}
	p, _, _, _ := toParams(best.x, true)
	ll := d.eval(p, nil)
	if err := p.Validate(); err != nil || math.IsNaN(ll) || math.IsInf(ll, 0) {
		return Fit{}, fmt.Errorf("%w: landed on %+v", ErrNoConvergence, p)
	}
	fit := Fit{Params: p, LogLik: ll, Customers: n, Distinct: len(gs), Iterations: iters}
	var bad []string
	for _, b := range onBounds(best.x) {
		fit.AtBound = append(fit.AtBound, boundNames[b.param][b.side])
		if degenerate([]bound{b}) {
			bad = append(bad, boundNames[b.param][b.side])
		}
	}
	if len(bad) > 0 {
		return fit, fmt.Errorf("%w: %s", ErrDegenerate, strings.Join(bad, "; "))
	}
	return fit, nil
}

// warmStartGroups is the number of distinct triples from which a fit
// first fits every tenth customer by Newton's method and continues from
// that maximum by Newton's method on all of them: each optimiser step costs
// a pass over the triples, BFGS takes about twenty passes (and its line
// searches more), Newton from the tenth's maximum three or four, and the
// tenth's own steps cost about a tenth each. Below it (CDNOW's 2,357
// customers) the fit is BFGS alone.
const warmStartGroups = 20_000

// warmStart fits every tenth customer (folded by tenth) by Newton's
// method from start when there are many distinct triples, and returns
// that maximum when it is well inside the bounds.
func warmStart(tenth func() ([]group, error), groups int, start Params, tol float64) (Params, bool) {
	if groups < warmStartGroups {
		return Params{}, false
	}
	gs, err := tenth()
	if err != nil {
		return Params{}, false
	}
	p, _, ok := newData(gs).newton(start, tol, 50)
	if !ok || !inside(p) {
		return Params{}, false
	}
	return p, true
}

// inside reports whether p is well inside fitBounds (not within half a
// percent of the range of any bound).
func inside(p Params) bool {
	for i, v := range fromParams(p, false) {
		lo, hi := fitBounds[i][0], fitBounds[i][1]
		if v < lo+0.005*(hi-lo) || v > hi-0.005*(hi-lo) {
			return false
		}
	}
	return true
}

func mustParams(th []float64) Params {
	p, _, _, _ := toParams(th, false)
	return p
}

type bound struct{ param, side int }

// degenerate reports whether any of bs leaves the model unidentified: the
// mean drop-out probability on either bound, or r on its lower bound.
func degenerate(bs []bound) bool {
	for _, b := range bs {
		if b.param == 2 || b.param == 0 && b.side == 0 {
			return true
		}
	}
	return false
}

// onBounds lists the coordinates of u that sit on a bound (within 0.5% of
// the range from it).
func onBounds(u []float64) []bound {
	var out []bound
	for i := range 4 {
		s := 1 / (1 + math.Exp(-u[i]))
		switch {
		case s < 0.005:
			out = append(out, bound{i, 0})
		case s > 0.995:
			out = append(out, bound{i, 1})
		}
	}
	return out
}

// flat reports whether the gradient at v is zero to optimiser precision:
// the test that separates a maximum from an optimiser that gave up.
func flat(grad func(g, v []float64), v []float64) bool {
	if v == nil {
		return false
	}
	g := make([]float64, 4)
	grad(g, v)
	m := maxAbs(g)
	return m < 1e-5 && !math.IsNaN(m)
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, e := range v {
		m = math.Max(m, math.Abs(e))
	}
	return m
}

// PAlive is the probability that customer c is still active at the end of
// calibration (eq. 13). A customer with no repeat purchase has probability 1:
// in the BG/NBD drop-out only happens right after a purchase.
func (p Params) PAlive(c Customer) float64 {
	if c.X == 0 {
		return 1
	}
	return p.pAliveFrom(p.logAOverBX(c.X), math.Log(p.Alpha+c.T), c)
}

// logAOverBX is log a - log(b+x-1), the part of PAlive that depends on x
// only.
func (p Params) logAOverBX(x int) float64 { return math.Log(p.A) - math.Log(p.B+float64(x)-1) }

// pAliveFrom is PAlive of c (X > 0) from logAOverBX(c.X) and
// log(alpha+T).
func (p Params) pAliveFrom(logAB, logAT float64, c Customer) float64 {
	x := float64(c.X)
	logRatio := logAB + (p.R+x)*(logAT-math.Log(p.Alpha+c.Tx))
	return 1 / (1 + math.Exp(logRatio))
}

// ExpectedPurchases is the expected number of purchases in the next t time
// units for customer c (eq. 10). It needs the Gauss hypergeometric function
// 2F1(r+x, b+x; a+b+x-1; z) with z = t/(alpha+T+t), which lies in [0, 1) for
// every valid input, inside the series' domain; gonum's Hypergeo applies the
// usual transformations near z=1. Anything else is ErrNumeric.
func (p Params) ExpectedPurchases(c Customer, t float64) (float64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	if err := checkHorizon(t); err != nil {
		return 0, err
	}
	if t == 0 {
		return 0, nil
	}
	num, err := p.expectedNum(c.X, c.T, t)
	if err != nil {
		return 0, err
	}
	return p.expectedFrom(num, c)
}

// checkHorizon refuses a horizon that is negative, NaN or infinite.
func checkHorizon(t float64) error {
	if !(t >= 0) || math.IsInf(t, 0) {
		return fmt.Errorf("%w: horizon %g", ErrInvalid, t)
	}
	return nil
}

// nudged is p with A moved off 1, where the closed form of the expectation
// divides by a-1 (a removable point).
func (p Params) nudged() Params {
	if p.A == 1 {
		p.A = 1 + 1e-9
	}
	return p
}

// expectedNum is the numerator of eq. 10 for x repeat purchases, age T
// and horizon t > 0: the part that does not depend on the recency.
func (p Params) expectedNum(x0 int, T, t float64) (float64, error) {
	p = p.nudged()
	x := float64(x0)
	z := t / (p.Alpha + T + t)
	if !(z >= 0 && z < 1) {
		return 0, fmt.Errorf("%w: hypergeometric argument %g outside [0,1)", ErrNumeric, z)
	}
	h := mathext.Hypergeo(p.R+x, p.B+x, p.A+p.B+x-1, z)
	if math.IsNaN(h) || math.IsInf(h, 0) {
		return 0, fmt.Errorf("%w: 2F1(%g,%g;%g;%g) = %g", ErrNumeric, p.R+x, p.B+x, p.A+p.B+x-1, z, h)
	}
	return (p.A + p.B + x - 1) / (p.A - 1) * (1 - math.Pow((p.Alpha+T)/(p.Alpha+T+t), p.R+x)*h), nil
}

// expectedFrom is eq. 10 for customer c from its numerator num
// (expectedNum of c's X and T).
func (p Params) expectedFrom(num float64, c Customer) (float64, error) {
	p = p.nudged()
	x := float64(c.X)
	den := 1.0
	if c.X > 0 {
		den += p.A / (p.B + x - 1) * math.Pow((p.Alpha+c.T)/(p.Alpha+c.Tx), p.R+x)
	}
	e := num / den
	if math.IsNaN(e) || math.IsInf(e, 0) || e < -1e-9 {
		return 0, fmt.Errorf("%w: expectation %g", ErrNumeric, e)
	}
	return math.Max(e, 0), nil
}

// PNoPurchase is the probability that customer c makes no purchase in the
// next t time units. A customer who has dropped out makes none; one who is
// still active has rate lambda ~ Gamma(r+x, alpha+T) given the history and
// buys nothing with probability ((alpha+T)/(alpha+T+t))^(r+x). Unlike PAlive
// this separates one-purchase customers by their age.
func (p Params) PNoPurchase(c Customer, t float64) float64 {
	return pNone(p.PAlive(c), p.stay(c.X, c.T, t))
}

// stay is the probability that a customer still active, with x repeat
// purchases and age T, buys nothing in the next t time units.
func (p Params) stay(x0 int, T, t float64) float64 {
	x := float64(x0)
	return math.Exp((p.R + x) * (math.Log(p.Alpha+T) - math.Log(p.Alpha+T+t)))
}

// pNone is P(no purchase) from P(alive) pa and stay.
func pNone(pa, stay float64) float64 { return (1 - pa) + pa*stay }

// ExpectedPopulation is the expected number of purchases a random new
// customer makes in their first t time units, E[X(t)] (eq. 9). Useful to
// check the fit against tracking plots.
func (p Params) ExpectedPopulation(t float64) (float64, error) {
	if !(t >= 0) {
		return 0, fmt.Errorf("%w: horizon %g", ErrInvalid, t)
	}
	if p.A == 1 {
		p.A = 1 + 1e-9
	}
	z := t / (p.Alpha + t)
	h := mathext.Hypergeo(p.R, p.B, p.A+p.B-1, z)
	if math.IsNaN(h) || math.IsInf(h, 0) {
		return 0, fmt.Errorf("%w: 2F1 at %g", ErrNumeric, z)
	}
	return (p.A + p.B - 1) / (p.A - 1) * (1 - math.Pow(p.Alpha/(p.Alpha+t), p.R)*h), nil
}
