package bgnbd

import (
	"math"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/mathext"
)

// trigamma is the derivative of the digamma function: the Hurwitz zeta
// function at 2.
func trigamma(v float64) float64 { return mathext.Zeta(2, v) }

// evalHess returns the log-likelihood at p with its gradient and Hessian
// with respect to (r, alpha, a, b). It walks the triples as eval does;
// the second derivatives add multiplications but no further logarithm or
// exponential per triple.
//
// Per triple the log-likelihood is C(x) + log(exp(a3) + exp(a4)) (only
// C(x) + a3 without a repeat purchase), with C the gamma-function terms,
// a3 = -(r+x) log(alpha+T) and a4 = log a - log(b+x-1) - (r+x)
// log(alpha+tx). With w3, w4 the softmax weights of a3, a4, the Hessian of
// the log-sum is w3 H3 + w4 H4 + w3 w4 (g3-g4)(g3-g4)'.
func (d *data) evalHess(p Params, g *[4]float64, h *[4][4]float64) float64 {
	r, alpha, a, b := p.R, p.Alpha, p.A, p.B
	d.fillAlpha(alpha)
	lgr, _ := math.Lgamma(r)
	lgab, _ := math.Lgamma(a + b)
	lgb, _ := math.Lgamma(b)
	logAlpha, logA := math.Log(alpha), math.Log(a)
	psiR, psiAB, psiB := mathext.Digamma(r), mathext.Digamma(a+b), mathext.Digamma(b)
	triR, triAB, triB := trigamma(r), trigamma(a+b), trigamma(b)
	*g, *h = [4]float64{}, [4][4]float64{}
	var ll float64
	// The gamma-function part depends on x only: its value, gradient and
	// Hessian are added once per x, times the customers with that x.
	var nx, common, cr, ca, cb, hrr, haa, hbb, logBX, invBX float64
	flush := func() {
		ll += nx * common
		g[0] += nx * cr
		g[1] += nx * r / alpha
		g[2] += nx * ca
		g[3] += nx * cb
		h[0][0] += nx * hrr
		h[0][1] += nx / alpha
		h[1][1] -= nx * r / (alpha * alpha)
		h[2][2] += nx * haa
		h[2][3] += nx * haa // d2/da db of the gamma terms equals d2/da2
		h[3][3] += nx * hbb
	}
	lastX := -1
	// Sums over the triples of the log-sum part.
	var gr, gal, ga, gb float64
	var srr, sra, saa, sab, sbb, sralpha, sraa, srb, saalpha, sbalpha float64
	for i, x0 := range d.xs {
		x := float64(x0)
		if x0 != lastX {
			if lastX >= 0 {
				flush()
			}
			l1, _ := math.Lgamma(r + x)
			l2, _ := math.Lgamma(b + x)
			l3, _ := math.Lgamma(a + b + x)
			common = l1 - lgr + r*logAlpha + lgab + l2 - lgb - l3
			psiABX := mathext.Digamma(a + b + x)
			cr = mathext.Digamma(r+x) - psiR + logAlpha
			ca = psiAB - psiABX
			cb = psiAB + mathext.Digamma(b+x) - psiB - psiABX
			triABX := trigamma(a + b + x)
			hrr = trigamma(r+x) - triR
			haa = triAB - triABX
			hbb = triAB + trigamma(b+x) - triB - triABX
			if x0 > 0 {
				logBX, invBX = math.Log(b+x-1), 1/(b+x-1)
			}
			nx = 0
			lastX = x0
		}
		n := d.n[i]
		nx += n
		j, k := d.jT[i], d.kTx[i]
		rx := r + x
		a3 := -rx * d.logAT[j]
		if x0 == 0 {
			ll += n * a3
			gr -= n * d.logAT[j]
			gal -= n * rx * d.invAT[j]
			sralpha -= n * d.invAT[j]
			sraa += n * rx * d.invAT[j] * d.invAT[j]
			continue
		}
		a4 := logA - logBX - rx*d.logATx[k]
		hi, lo := a3, a4
		if lo > hi {
			hi, lo = lo, hi
		}
		e := math.Exp(lo - hi)
		ll += n * (hi + math.Log1p(e))
		w4 := 1 / (1 + e)
		if a4 < a3 {
			w4 = e * w4
		}
		w3 := 1 - w4
		iT, iTx := d.invAT[j], d.invATx[k]
		// Gradients of a3 and a4 (a3 has none in a and b).
		g3r, g3al := -d.logAT[j], -rx*iT
		g4r, g4al, g4a, g4b := -d.logATx[k], -rx*iTx, 1/a, -invBX
		gr += n * (w3*g3r + w4*g4r)
		gal += n * (w3*g3al + w4*g4al)
		ga += n * w4 * g4a
		gb += n * w4 * g4b
		// w3 H3 + w4 H4: r-alpha and alpha-alpha from both, a-a and b-b from a4.
		sralpha -= n * (w3*iT + w4*iTx)
		sraa += n * rx * (w3*iT*iT + w4*iTx*iTx)
		saa -= n * w4 / (a * a)
		sbb += n * w4 * invBX * invBX
		// w3 w4 (g3-g4)(g3-g4)'.
		c := n * w3 * w4
		dr, dal, da, db := g3r-g4r, g3al-g4al, -g4a, -g4b
		srr += c * dr * dr
		sra += c * dr * da
		srb += c * dr * db
		saalpha += c * dal * da
		sbalpha += c * dal * db
		sab += c * da * db
		h[0][1] += c * dr * dal
		h[1][1] += c * dal * dal
		h[2][2] += c * da * da
		h[3][3] += c * db * db
	}
	if lastX >= 0 {
		flush()
	}
	g[0] += gr
	g[1] += gal
	g[2] += ga
	g[3] += gb
	h[0][0] += srr
	h[0][1] += sralpha
	h[0][2] += sra
	h[0][3] += srb
	h[1][1] += sraa
	h[1][2] += saalpha
	h[1][3] += sbalpha
	h[2][2] += saa
	h[2][3] += sab
	h[3][3] += sbb
	for i := range 4 {
		for j := 0; j < i; j++ {
			h[i][j] = h[j][i]
		}
	}
	return ll
}

// newton maximises the log-likelihood over log-parameters by Newton's
// method with the analytic Hessian, from start: where the maximum is
// inside the parameter space and the start is in its basin, it needs a
// handful of passes over the triples where BFGS needs twenty or more. It
// stops when the per-customer gradient on the log scale is below tol (the
// criterion the BFGS path uses). Where the Hessian is not negative definite
// (far from the maximum) the step is shifted towards the gradient's. It
// reports false when a step cannot be made to increase the likelihood or
// maxIter steps do not reach tol; the caller then runs BFGS.
func (d *data) newton(start Params, tol float64, maxIter int) (Params, int, bool) {
	th := [4]float64{math.Log(start.R), math.Log(start.Alpha), math.Log(start.A), math.Log(start.B)}
	at := func(th [4]float64) (Params, bool) {
		for _, v := range th {
			if !(v > -30 && v < 30) {
				return Params{}, false
			}
		}
		return Params{R: math.Exp(th[0]), Alpha: math.Exp(th[1]), A: math.Exp(th[2]), B: math.Exp(th[3])}, true
	}
	p, _ := at(th)
	var g [4]float64
	var h [4][4]float64
	ll := d.evalHess(p, &g, &h)
	H := mat.NewSymDense(4, nil)
	var chol mat.Cholesky
	var step mat.VecDense
	for it := 1; it <= maxIter; it++ {
		if math.IsNaN(ll) || math.IsInf(ll, 0) {
			return Params{}, it, false
		}
		// On the log scale: g_i p_i, and p_i p_j H_ij + [i==j] p_i g_i.
		pv := [4]float64{p.R, p.Alpha, p.A, p.B}
		gt := mat.NewVecDense(4, nil)
		done := true
		for i := range 4 {
			gt.SetVec(i, g[i]*pv[i])
			if math.Abs(g[i]*pv[i])/d.total >= tol {
				done = false
			}
			for j := i; j < 4; j++ {
				v := pv[i] * pv[j] * h[i][j]
				if i == j {
					v += pv[i] * g[i]
				}
				// The negated Hessian, positive definite at a maximum.
				H.SetSym(i, j, -v)
			}
		}
		if done {
			return p, it, true
		}
		// Far from the maximum the Hessian need not be negative definite:
		// then shift it towards a gradient step (Levenberg-Marquardt)
		// until it is.
		if !chol.Factorize(H) {
			mu := 1e-6
			for i := range 4 {
				mu = math.Max(mu, 1e-3*math.Abs(H.At(i, i)))
			}
			shifted := mat.NewSymDense(4, nil)
			for ; ; mu *= 10 {
				if mu > 1e12 {
					return Params{}, it, false
				}
				shifted.CopySym(H)
				for i := range 4 {
					shifted.SetSym(i, i, H.At(i, i)+mu)
				}
				if chol.Factorize(shifted) {
					break
				}
			}
		}
		if err := chol.SolveVecTo(&step, gt); err != nil {
			return Params{}, it, false
		}
		// No coordinate moves by more than 1 (a factor e) at once, so a
		// step cannot leap to another basin; then halve it until the
		// likelihood does not fall.
		if m := mat.Norm(&step, math.Inf(1)); m > 1 {
			step.ScaleVec(1/m, &step)
		}
		// Halve the step until the likelihood does not fall.
		moved := false
		for scale := 1.0; scale > 1e-3; scale /= 2 {
			var nt [4]float64
			for i := range 4 {
				nt[i] = th[i] + scale*step.AtVec(i)
			}
			np, ok := at(nt)
			if !ok {
				continue
			}
			var ng [4]float64
			var nh [4][4]float64
			nll := d.evalHess(np, &ng, &nh)
			if nll >= ll-1e-12*math.Abs(ll) {
				th, p, ll, g, h, moved = nt, np, nll, ng, nh, true
				break
			}
		}
		if !moved {
			return Params{}, it, false
		}
	}
	return Params{}, maxIter, false
}
