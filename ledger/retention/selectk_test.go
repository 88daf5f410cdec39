package retention

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMedianInPlaceIsMedian: on sorted, reversed, constant, few-valued and
// random inputs of every small length and some large ones, the selection
// gives median's value and leaves the k-th element where a sort puts it.
func TestMedianInPlaceIsMedian(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gens := map[string]func(i, n int) float64{
		"random":   func(i, n int) float64 { return rng.Float64() * 100 },
		"days":     func(i, n int) float64 { return float64(1 + rng.IntN(30)) },
		"constant": func(i, n int) float64 { return 7 },
		"sorted":   func(i, n int) float64 { return float64(i) },
		"reversed": func(i, n int) float64 { return float64(n - i) },
		"organ":    func(i, n int) float64 { return float64(min(i, n-i)) },
	}
	for name, gen := range gens {
		for _, n := range append([]int{0, 1, 2, 3, 4, 5, 15, 16, 17, 33, 100}, 1000, 4096, 10001) {
			v := make([]float64, n)
			for i := range v {
				v[i] = gen(i, n)
			}
			want := median(v)
			w := slices.Clone(v)
			if got := medianInPlace(w); got != want {
				t.Fatalf("%s n=%d: %v, median says %v", name, n, got, want)
			}
			if n > 0 {
				s := slices.Clone(v)
				slices.Sort(s)
				k := rng.IntN(n)
				nth(v, k)
				if v[k] != s[k] {
					t.Fatalf("%s n=%d: nth(%d) = %v, sorted %v", name, n, k, v[k], s[k])
				}
				for i := range v {
					if i < k && v[i] > v[k] || i > k && v[i] < v[k] {
						t.Fatalf("%s n=%d k=%d: v[%d]=%v on the wrong side of %v", name, n, k, i, v[i], v[k])
					}
				}
			}
		}
	}
}
