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
	var tIdx, txIdx floatIndex
	if byX := func(i, j int) bool { return gs[i].x < gs[j].x }; !sort.SliceIsSorted(gs, byX) {
		sort.SliceStable(gs, byX)
	}
	d.xs, d.jT, d.kTx, d.n = make([]int, 0, len(gs)), make([]int32, 0, len(gs)), make([]int32, 0, len(gs)), make([]float64, 0, len(gs))
	for _, g := range gs {
		d.xs = append(d.xs, g.x)
		d.jT = append(d.jT, tIdx.index(&d.ts, g.t))
		d.kTx = append(d.kTx, txIdx.index(&d.txs, g.tx))
		d.n = append(d.n, g.n)
		d.total += g.n
	}
	d.logAT, d.invAT = make([]float64, len(d.ts)), make([]float64, len(d.ts))
	d.logATx, d.invATx = make([]float64, len(d.txs)), make([]float64, len(d.txs))
	return d
}

// floatIndex numbers distinct floats in order of first appearance, as a
// map[float64]int32 would (+0 and -0 are one value, each NaN a new one),
// by open addressing over indexes into the values: a population's ages
// and recencies in weeks of whole days are a few hundred distinct values
// over tens of thousands of triples, and the map's hashing was a tenth of
// a fit.
type floatIndex struct {
	slots []int32 // index + 1; 0 is empty
}

// index returns the index of v in *vals, appending it when new.
func (fi *floatIndex) index(vals *[]float64, v float64) int32 {
	if v != v {
		*vals = append(*vals, v)
		return int32(len(*vals) - 1)
	}
	if 2*(len(*vals)+1) > len(fi.slots) {
		fi.rehash(*vals)
	}
	mask := uint64(len(fi.slots) - 1)
	for k := floatSlot(v) & mask; ; k = (k + 1) & mask {
		j := fi.slots[k]
		if j == 0 {
			*vals = append(*vals, v)
			fi.slots[k] = int32(len(*vals))
			return int32(len(*vals) - 1)
		}
		if (*vals)[j-1] == v {
			return j - 1
		}
	}
}

// rehash doubles the table (to at least 256 slots) and places vals again.
func (fi *floatIndex) rehash(vals []float64) {
	fi.slots = make([]int32, max(256, 2*len(fi.slots)))
	mask := uint64(len(fi.slots) - 1)
	for i, v := range vals {
		if v != v {
			continue
		}
		k := floatSlot(v) & mask
		for fi.slots[k] != 0 {
			k = (k + 1) & mask
		}
		fi.slots[k] = int32(i + 1)
	}
}

// floatSlot spreads v's bits (+0 for -0) over a table's slot index: all
// of them into the low ones (whole weeks leave the mantissa's low bits
// zero).
func floatSlot(v float64) uint64 {
	h := math.Float64bits(v + 0)
	h = (h ^ h>>33) * 0xff51afd7ed558ccd
	h = (h ^ h>>33) * 0xc4ceb9fe1a85ec53
	return h ^ h>>33
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
