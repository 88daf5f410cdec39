package retention

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLogisticWarmStartSameFit: with enough rows for the warm start (the
// tenth's fit, its Hessian standing in for the whole's first one),
// fitLogistic lands where Newton's method from zero does (to 1e-8), for
// a penalty small and large.
func TestLogisticWarmStartSameFit(t *testing.T) {
	for _, n := range []int{rankWarmRows + 5_000, 10*rankWarmSubRows + 5_000} {
		logisticWarmSameFit(t, n)
	}
}

// logisticWarmSameFit checks n rows: from 10*rankWarmSubRows rows the
// tenth starts from its own tenth.
func logisticWarmSameFit(t *testing.T, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	k := 6
	X := make([]float64, 0, n*k)
	y := make([]float64, n)
	for i := range n {
		X = append(X, 1)
		z := -0.4
		for j := 1; j < k; j++ {
			v := rng.NormFloat64() * float64(j)
			X = append(X, v)
			z += 0.3 * float64(j%3-1) * v
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			y[i] = 1
		}
	}
	for _, l2 := range []float64{1e-4, 0.1, 1} {
		got, err := fitLogistic(X, k, y, l2)
		if err != nil {
			t.Fatal(err)
		}
		want, err := newtonLogistic(X, k, y, l2, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := range want {
			if math.Abs(got[j]-want[j]) > 1e-8 {
				t.Errorf("ridge %g: coefficient %d %.12f, from zero %.12f", l2, j, got[j], want[j])
			}
		}
	}
}
