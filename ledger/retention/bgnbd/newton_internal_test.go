package bgnbd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestHessianMatchesFiniteDifferences checks the value, gradient and
// Hessian Newton's method relies on against eval and central differences
// of eval's gradient.
func TestHessianMatchesFiniteDifferences(t *testing.T) {
	cs := Simulate(rand.NewPCG(3, 4), Params{R: 0.4, Alpha: 5, A: 0.9, B: 2}, 2000, 40, 1.0/7)
	gs, err := aggregate(cs)
	if err != nil {
		t.Fatal(err)
	}
	d := newData(gs)
	for _, p := range []Params{{R: 0.24, Alpha: 4.4, A: 0.79, B: 2.4}, {R: 1.5, Alpha: 0.3, A: 3, B: 0.4}, {R: 0.4, Alpha: 5, A: 0.9, B: 2}} {
		var g [4]float64
		var h [4][4]float64
		ll := d.evalHess(p, &g, &h)
		g0 := make([]float64, 4)
		if want := d.eval(p, g0); math.Abs(ll-want) > 1e-9*math.Abs(want) {
			t.Errorf("%+v: log-likelihood %v, eval %v", p, ll, want)
		}
		for i := range 4 {
			if math.Abs(g[i]-g0[i]) > 1e-8*math.Max(1, math.Abs(g0[i])) {
				t.Errorf("%+v: gradient %d %v, eval %v", p, i, g[i], g0[i])
			}
			eps := 1e-5 * []float64{p.R, p.Alpha, p.A, p.B}[i]
			up, dn := p, p
			*[]*float64{&up.R, &up.Alpha, &up.A, &up.B}[i] += eps
			*[]*float64{&dn.R, &dn.Alpha, &dn.A, &dn.B}[i] -= eps
			gu, gd := make([]float64, 4), make([]float64, 4)
			d.eval(up, gu)
			d.eval(dn, gd)
			for j := range 4 {
				num := (gu[j] - gd[j]) / (2 * eps)
				if math.Abs(num-h[i][j]) > 1e-4*math.Max(1, math.Abs(num)) {
					t.Errorf("%+v: d2/d%d d%d analytic %v, numeric %v", p, i, j, h[i][j], num)
				}
			}
		}
	}
}

// TestNewtonReachesBFGSMaximum: from the default start Newton's method
// lands where BFGS does, in a few steps, on simulated data and on the
// data BFGS alone fits.
func TestNewtonReachesBFGSMaximum(t *testing.T) {
	for _, truth := range []Params{{R: 0.5, Alpha: 3, A: 0.8, B: 2.5}, {R: 0.25, Alpha: 4.4, A: 0.79, B: 2.4}, {R: 2, Alpha: 10, A: 0.3, B: 5}} {
		cs := Simulate(rand.NewPCG(5, 6), truth, 20_000, 52, 1.0/7)
		gs, err := aggregate(cs)
		if err != nil {
			t.Fatal(err)
		}
		d := newData(gs)
		meanT := 0.0
		for _, c := range cs {
			meanT += c.T
		}
		meanT /= float64(len(cs))
		p, it, ok := d.newton(Params{R: 1, Alpha: meanT / 4, A: 1, B: 1}, 1e-8, 50)
		if !ok {
			t.Fatalf("%+v: Newton did not converge (%d steps)", truth, it)
		}
		// The same maximum as the BFGS path alone (Init skips nothing,
		// so compare with a fit from a far start).
		ref, err := FitParams(cs, &Options{Init: &Params{R: 2, Alpha: meanT, A: 2, B: 2}})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range []float64{p.R, p.Alpha, p.A, p.B} {
			w := []float64{ref.R, ref.Alpha, ref.A, ref.B}[i]
			if math.Abs(v-w) > 1e-4*w {
				t.Errorf("%+v: Newton %+v (%d steps), BFGS %+v", truth, p, it, ref.Params)
				break
			}
		}
		t.Logf("%+v: %d Newton steps", truth, it)
	}
}

// TestWarmStartSameFit: with many distinct triples FitParams fits a tenth
// of the customers and continues by Newton's method; it lands on the
// maximum BFGS alone finds (Options.Init turns the warm start off) within
// the optimiser's tolerance, with a log-likelihood no lower.
func TestWarmStartSameFit(t *testing.T) {
	cs := Simulate(rand.NewPCG(7, 8), Params{R: 0.5, Alpha: 3, A: 0.8, B: 2.5}, 60_000, 52, 1.0/7)
	got, err := FitParams(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Distinct < warmStartGroups {
		t.Fatalf("%d distinct triples: the warm start is not exercised", got.Distinct)
	}
	meanT := 0.0
	for _, c := range cs {
		meanT += c.T
	}
	want, err := FitParams(cs, &Options{Init: &Params{R: 1, Alpha: meanT / len64(cs) / 4, A: 1, B: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{got.R, got.Alpha, got.A, got.B} {
		w := []float64{want.R, want.Alpha, want.A, want.B}[i]
		if math.Abs(v-w) > 1e-5*w {
			t.Errorf("warm start %+v, BFGS alone %+v", got.Params, want.Params)
			break
		}
	}
	if got.LogLik < want.LogLik-1e-6 {
		t.Errorf("log-likelihood %.9f below BFGS's %.9f", got.LogLik, want.LogLik)
	}
	if got.Iterations >= want.Iterations {
		t.Errorf("%d Newton steps, BFGS took %d", got.Iterations, want.Iterations)
	}
}

func len64(cs []Customer) float64 { return float64(len(cs)) }
