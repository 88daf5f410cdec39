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

// TestFloatIndexLikeMap: floatIndex numbers values as a map[float64]int32
// in order of first appearance does (+0 and -0 one value, each NaN a new
// one), across its growth.
func TestFloatIndexLikeMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, distinct := range []int{1, 3, 200, 5000} {
		var fi floatIndex
		var vals, want []float64
		m := map[float64]int32{}
		for range 20_000 {
			var v float64
			switch r := rng.IntN(100); {
			case r == 0:
				v = math.NaN()
			case r == 1:
				v = math.Copysign(0, -1)
			case r == 2:
				v = 0
			default:
				v = float64(rng.IntN(distinct)) / 7
			}
			j, ok := m[v]
			if !ok {
				j = int32(len(want))
				m[v] = j
				want = append(want, v)
			}
			if got := fi.index(&vals, v); got != j {
				t.Fatalf("distinct %d: %v indexed %d, map %d", distinct, v, got, j)
			}
		}
		if len(vals) != len(want) {
			t.Fatalf("distinct %d: %d values, map %d", distinct, len(vals), len(want))
		}
		for i := range vals {
			if math.Float64bits(vals[i]) != math.Float64bits(want[i]) && !(math.IsNaN(vals[i]) && math.IsNaN(want[i])) {
				t.Fatalf("distinct %d: value %d is %v, map's %v", distinct, i, vals[i], want[i])
			}
		}
	}
}
