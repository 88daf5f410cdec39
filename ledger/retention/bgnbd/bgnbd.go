package bgnbd

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/optimize"
)

// Sentinel errors. Callers test with errors.Is.
var (
	// ErrNoConvergence reports an optimiser that stopped without reaching a
	// maximum of the likelihood, or landed on parameters that are not finite
	// and positive. The fit is not returned: a garbage fit is worse than none.
	ErrNoConvergence = errors.New("bgnbd: fit did not converge")
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
// only has to be evaluated once per triple.
func aggregate(cs []Customer) ([]group, error) {
	idx := make(map[Customer]int, len(cs)/4+1)
	var gs []group
	for i, c := range cs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("customer %d: %w", i, err)
		}
		if j, ok := idx[c]; ok {
			gs[j].n++
			continue
		}
		idx[c] = len(gs)
		gs = append(gs, group{x: c.X, tx: c.Tx, t: c.T, n: 1})
	}
	// Sorting by x lets the log-likelihood compute the gamma-function terms
	// once per distinct x.
	sort.Slice(gs, func(i, j int) bool { return gs[i].x < gs[j].x })
	return gs, nil
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

// FitParams fits the model to cs by maximum likelihood. The optimiser works
// on log-parameters (so they stay positive): Nelder-Mead finds the basin,
// then BFGS with a finite-difference gradient polishes to a stationary
// point. A fit that stops early, or lands on non-finite or absurd values, is
// ErrNoConvergence.
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
	repeaters, meanT := 0, 0.0
	for _, g := range gs {
		if g.x > 0 {
			repeaters += int(g.n)
		}
		meanT += g.t * g.n
	}
	meanT /= float64(len(cs))
	if repeaters == 0 {
		return Fit{}, fmt.Errorf("%w: nobody made a repeat purchase", ErrTooLittleData)
	}
	if !(meanT > 0) {
		return Fit{}, fmt.Errorf("%w: every customer has zero age", ErrTooLittleData)
	}
	init := Params{R: 1, Alpha: math.Max(meanT/4, 1e-3), A: 1, B: 1}
	if opts.Init != nil {
		if err := opts.Init.Validate(); err != nil {
			return Fit{}, fmt.Errorf("initial parameters: %w", err)
		}
		init = *opts.Init
	}
	maxIter := opts.MaxIterations
	if maxIter <= 0 {
		maxIter = 5000
	}
	d := newData(gs)
	n := d.total
	toParams := func(v []float64) (Params, bool) {
		for _, e := range v {
			if e > 30 || e < -30 || math.IsNaN(e) {
				return Params{}, false
			}
		}
		return Params{R: math.Exp(v[0]), Alpha: math.Exp(v[1]), A: math.Exp(v[2]), B: math.Exp(v[3])}, true
	}
	// Per-customer negative log-likelihood on log-parameters, so tolerances
	// mean the same whatever the data set size and parameters stay positive.
	// The optimiser asks for the value and the gradient at the same point
	// separately; one pass computes both, so keep the last one.
	var lastV [4]float64
	var lastF float64
	var lastG [4]float64
	haveLast := false
	evalAt := func(v []float64) bool {
		if haveLast && v[0] == lastV[0] && v[1] == lastV[1] && v[2] == lastV[2] && v[3] == lastV[3] {
			return true
		}
		p, ok := toParams(v)
		if !ok {
			return false
		}
		var g4 [4]float64
		ll := d.eval(p, g4[:])
		if math.IsNaN(ll) {
			return false
		}
		pv := [4]float64{p.R, p.Alpha, p.A, p.B}
		copy(lastV[:], v)
		lastF = -ll / n
		for i := range lastG {
			lastG[i] = -g4[i] * pv[i] / n // chain rule through exp
		}
		haveLast = true
		return true
	}
	// Per-customer negative log-likelihood on log-parameters, so tolerances
	// mean the same whatever the data set size and parameters stay positive.
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
	x0 := []float64{math.Log(init.R), math.Log(init.Alpha), math.Log(init.A), math.Log(init.B)}
	// BFGS with the analytic gradient converges in tens of iterations;
	// Nelder-Mead is the slower, derivative-free fallback for starts where
	// BFGS's line search fails.
	settings := &optimize.Settings{MajorIterations: maxIter, GradientThreshold: 1e-8}
	res, err := optimize.Minimize(optimize.Problem{Func: f, Grad: grad}, x0, settings, &optimize.BFGS{})
	if err != nil || res.Status.Early() || !flat(grad, res.X) {
		nm, err := optimize.Minimize(optimize.Problem{Func: f}, x0,
			&optimize.Settings{MajorIterations: maxIter, Converger: &optimize.FunctionConverge{Absolute: 1e-12, Iterations: 200}},
			&optimize.NelderMead{})
		if err != nil && (nm == nil || nm.Status.Early()) {
			return Fit{}, fmt.Errorf("%w: nelder-mead: %v", ErrNoConvergence, err)
		}
		res, err = optimize.Minimize(optimize.Problem{Func: f, Grad: grad}, nm.X, settings, &optimize.BFGS{})
		if err != nil || res.Status.Early() {
			res = nm
		}
		if !flat(grad, res.X) {
			return Fit{}, fmt.Errorf("%w: optimiser stopped (%v) where the likelihood is not flat", ErrNoConvergence, res.Status)
		}
		res.Stats.MajorIterations += nm.Stats.MajorIterations
	}
	p := Params{R: math.Exp(res.X[0]), Alpha: math.Exp(res.X[1]), A: math.Exp(res.X[2]), B: math.Exp(res.X[3])}
	ll := d.eval(p, nil)
	if err := p.Validate(); err != nil || math.IsNaN(ll) || math.IsInf(ll, 0) {
		return Fit{}, fmt.Errorf("%w: landed on %+v", ErrNoConvergence, p)
	}
	for _, v := range res.X {
		if math.Abs(v) > 25 {
			return Fit{}, fmt.Errorf("%w: a parameter ran off to %g (data do not identify the model)", ErrNoConvergence, math.Exp(v))
		}
	}
	return Fit{Params: p, LogLik: ll, Customers: len(cs), Distinct: len(gs), Iterations: res.Stats.MajorIterations}, nil
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
	x := float64(c.X)
	logRatio := math.Log(p.A) - math.Log(p.B+x-1) + (p.R+x)*(math.Log(p.Alpha+c.T)-math.Log(p.Alpha+c.Tx))
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
	if !(t >= 0) || math.IsInf(t, 0) {
		return 0, fmt.Errorf("%w: horizon %g", ErrInvalid, t)
	}
	if t == 0 {
		return 0, nil
	}
	if p.A == 1 {
		// The closed form divides by a-1; nudge off the removable point.
		p.A = 1 + 1e-9
	}
	x := float64(c.X)
	z := t / (p.Alpha + c.T + t)
	if !(z >= 0 && z < 1) {
		return 0, fmt.Errorf("%w: hypergeometric argument %g outside [0,1)", ErrNumeric, z)
	}
	h := mathext.Hypergeo(p.R+x, p.B+x, p.A+p.B+x-1, z)
	if math.IsNaN(h) || math.IsInf(h, 0) {
		return 0, fmt.Errorf("%w: 2F1(%g,%g;%g;%g) = %g", ErrNumeric, p.R+x, p.B+x, p.A+p.B+x-1, z, h)
	}
	num := (p.A + p.B + x - 1) / (p.A - 1) * (1 - math.Pow((p.Alpha+c.T)/(p.Alpha+c.T+t), p.R+x)*h)
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
	pa := p.PAlive(c)
	x := float64(c.X)
	stay := math.Exp((p.R + x) * (math.Log(p.Alpha+c.T) - math.Log(p.Alpha+c.T+t)))
	return (1 - pa) + pa*stay
}

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
