package bgnbd

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
)

// data is the likelihood's view of the customers: distinct (x, tx, T)
// triples with their counts, with tx and T replaced by indexes into the
// distinct values so each evaluation takes one logarithm per distinct age
// and recency rather than per customer.
type data struct {
	xs      []int     // per group
	jT, kTx []int32   // per group: index into ts, txs
	n       []float64 // per group: multiplicity
	ts, txs []float64 // distinct T and tx values
	total   float64
	// scratch, reused between evaluations
	logAT, invAT, logATx, invATx []float64
}

func newData(gs []group) *data {
	d := &data{}
	tIdx, txIdx := map[float64]int32{}, map[float64]int32{}
	idx := func(m map[float64]int32, vals *[]float64, v float64) int32 {
		if i, ok := m[v]; ok {
			return i
		}
		i := int32(len(*vals))
		m[v] = i
		*vals = append(*vals, v)
		return i
	}
	if byX := func(i, j int) bool { return gs[i].x < gs[j].x }; !sort.SliceIsSorted(gs, byX) {
		sort.SliceStable(gs, byX)
	}
	d.xs, d.jT, d.kTx, d.n = make([]int, 0, len(gs)), make([]int32, 0, len(gs)), make([]int32, 0, len(gs)), make([]float64, 0, len(gs))
	for _, g := range gs {
		d.xs = append(d.xs, g.x)
		d.jT = append(d.jT, idx(tIdx, &d.ts, g.t))
		d.kTx = append(d.kTx, idx(txIdx, &d.txs, g.tx))
		d.n = append(d.n, g.n)
		d.total += g.n
	}
	d.logAT, d.invAT = make([]float64, len(d.ts)), make([]float64, len(d.ts))
	d.logATx, d.invATx = make([]float64, len(d.txs)), make([]float64, len(d.txs))
	return d
}

// fillAlpha computes, for every distinct T and t_x, log(alpha+t) and
// 1/(alpha+t), which eval and evalHess share.
func (d *data) fillAlpha(alpha float64) {
	for j, t := range d.ts {
		d.logAT[j] = math.Log(alpha + t)
		d.invAT[j] = 1 / (alpha + t)
	}
	for k, t := range d.txs {
		d.logATx[k] = math.Log(alpha + t)
		d.invATx[k] = 1 / (alpha + t)
	}
}

// eval returns the log-likelihood at p and, when grad is not nil, fills it
// with the derivatives with respect to (r, alpha, a, b).
func (d *data) eval(p Params, grad []float64) float64 {
	r, alpha, a, b := p.R, p.Alpha, p.A, p.B
	d.fillAlpha(alpha)
	lgr, _ := math.Lgamma(r)
	lgab, _ := math.Lgamma(a + b)
	lgb, _ := math.Lgamma(b)
	logAlpha, logA := math.Log(alpha), math.Log(a)
	var psiR, psiAB, psiB float64
	if grad != nil {
		psiR, psiAB, psiB = mathext.Digamma(r), mathext.Digamma(a+b), mathext.Digamma(b)
	}
	var ll, gr, gal, ga, gb float64
	lastX := -1
	var common, cr, cal, ca, cb, logBX, invBX float64
	for i, x0 := range d.xs {
		x := float64(x0)
		if x0 != lastX {
			l1, _ := math.Lgamma(r + x)
			l2, _ := math.Lgamma(b + x)
			l3, _ := math.Lgamma(a + b + x)
			common = l1 - lgr + r*logAlpha + lgab + l2 - lgb - l3
			if grad != nil {
				psiABX := mathext.Digamma(a + b + x)
				cr = mathext.Digamma(r+x) - psiR + logAlpha
				cal = r / alpha
				ca = psiAB - psiABX
				cb = psiAB + mathext.Digamma(b+x) - psiB - psiABX
			}
			if x0 > 0 {
				logBX, invBX = math.Log(b+x-1), 1/(b+x-1)
			}
			lastX = x0
		}
		n := d.n[i]
		j, k := d.jT[i], d.kTx[i]
		a3 := -(r + x) * d.logAT[j]
		if x0 == 0 {
			ll += n * (common + a3)
			if grad != nil {
				gr += n * (cr - d.logAT[j])
				gal += n * (cal - (r+x)*d.invAT[j])
				ga += n * ca
				gb += n * cb
			}
			continue
		}
		a4 := logA - logBX - (r+x)*d.logATx[k]
		hi, lo := a3, a4
		if lo > hi {
			hi, lo = lo, hi
		}
		e := math.Exp(lo - hi)
		lse := hi + math.Log1p(e)
		ll += n * (common + lse)
		if grad != nil {
			// Weight of the "dropped out at tx" term, exp(a4 - lse),
			// from the exponential already taken.
			w4 := 1 / (1 + e)
			if a4 < a3 {
				w4 = e * w4
			}
			w3 := 1 - w4
			gr += n * (cr - w3*d.logAT[j] - w4*d.logATx[k])
			gal += n * (cal - (r+x)*(w3*d.invAT[j]+w4*d.invATx[k]))
			ga += n * (ca + w4/a)
			gb += n * (cb - w4*invBX)
		}
	}
	if grad != nil {
		grad[0], grad[1], grad[2], grad[3] = gr, gal, ga, gb
	}
	return ll
}
