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

// TestRankSetNames: a feature set is "base" and extra blocks in their
// fixed order, each once; the names and the width agree, and a row fills
// exactly that many features.
func TestRankSetNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ok    bool
		width int
	}{
		{"base", true, 6},
		{"base+inter+rhythm+bgnbd", true, 15},
		{"base+inter+spline", true, 12},
		{"base+inter+ratio", true, 12},
		{"base+recent+inter+rhythm+spline+ratio+bgnbd", true, 23},
		{"base+shape+recent+inter+rhythm+spline+ratio+bgnbd", true, 26},
		{"inter", false, 0},
		{"base+spline+inter", false, 0},
		{"base+ratio+ratio", false, 0},
		{"base+bgnbd+ratio", false, 0},
		{"base+nothing", false, 0},
		{"", false, 0},
	} {
		x, ok := rankSet(tc.name)
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if w, n := rankWidth(x), len(rankFeatureNames(tc.name)); w != tc.width || n != tc.width {
			t.Errorf("%q: width %d, %d names, want %d", tc.name, w, n, tc.width)
		}
	}
	for i, d := range []float64{30, 90, 180} {
		if rankSplineKnots[i] != math.Log1p(d) {
			t.Errorf("knot %d is %v, want log1p(%v)", i, rankSplineKnots[i], d)
		}
	}
	// A member with purchases on days 0, 10 and 40, as of day 140: the
	// spline's hinges and the ratios.
	x, _ := rankSet("base+spline+ratio")
	row := make([]float64, rankWidth(x))
	h := History{Days: []Day{0, 10, 40}, Spend: []Money{1000, 2000, 3000}}
	if !rankRow(row, x, h, 140, &rankCtx{pop: 20}) {
		t.Fatal("no row")
	}
	r := math.Log1p(100)
	want := []float64{r - math.Log1p(30), r - math.Log1p(90), 0, 100.0 / 140, 40.0 / 140, math.Log1p(2) * 100 / 140}
	for j, w := range want {
		if got := row[6+j]; math.Abs(got-w) > 1e-12 {
			t.Errorf("feature %s = %v, want %v", rankFeatureNames("base+spline+ratio")[6+j], got, w)
		}
	}
}
