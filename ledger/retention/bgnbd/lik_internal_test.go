package bgnbd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGradientMatchesFiniteDifferences checks the analytic gradient the
// optimiser relies on.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	cs := Simulate(rand.NewPCG(3, 4), Params{R: 0.4, Alpha: 5, A: 0.9, B: 2}, 2000, 40, 1.0/7)
	gs, err := aggregate(cs)
	if err != nil {
		t.Fatal(err)
	}
	d := newData(gs)
	for _, p := range []Params{{R: 0.24, Alpha: 4.4, A: 0.79, B: 2.4}, {R: 1.5, Alpha: 0.3, A: 3, B: 0.4}} {
		g := make([]float64, 4)
		d.eval(p, g)
		for i := range 4 {
			h := 1e-6
			up, dn := p, p
			v := []*float64{&up.R, &up.Alpha, &up.A, &up.B}
			w := []*float64{&dn.R, &dn.Alpha, &dn.A, &dn.B}
			*v[i] += h
			*w[i] -= h
			num := (d.eval(up, nil) - d.eval(dn, nil)) / (2 * h)
			if math.Abs(num-g[i]) > 1e-4*math.Max(1, math.Abs(num)) {
				t.Errorf("%+v d/d%d: analytic %v, numeric %v", p, i, g[i], num)
			}
		}
	}
}
