package retention

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

// TestNthFuncSplitsAtK: after nthFunc the first k elements are the k
// smallest in the order, and v[k] the next, on inputs that defeat naive
// pivots as well as random ones.
func TestNthFuncSplitsAtK(t *testing.T) {
	type kv struct {
		spend int
		id    string
	}
	order := func(a, b kv) int {
		if a.spend != b.spend {
			return b.spend - a.spend
		}
		return strings.Compare(a.id, b.id)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 3, 17, 100, 1000, 5000} {
		for pat, spend := range []func(i int) int{
			func(i int) int { return rng.IntN(50) },
			func(i int) int { return i },
			func(i int) int { return n - i },
			func(i int) int { return min(i, n-i) },
			func(i int) int { return 1 },
		} {
			v := make([]kv, n)
			for i := range v {
				v[i] = kv{spend(i), fmt.Sprintf("m%06d", rng.IntN(1e6)*n+i)}
			}
			sorted := slices.Clone(v)
			slices.SortFunc(sorted, order)
			for _, k := range []int{0, n / 10, n / 2, n - 1} {
				w := slices.Clone(v)
				nthFunc(w, k, order)
				if w[k] != sorted[k] {
					t.Fatalf("n=%d pattern %d k=%d: %v, sorted %v", n, pat, k, w[k], sorted[k])
				}
				head := slices.Clone(w[:k])
				slices.SortFunc(head, order)
				if !slices.Equal(head, sorted[:k]) {
					t.Fatalf("n=%d pattern %d k=%d: the first k are not the k smallest", n, pat, k)
				}
			}
		}
	}
}

// TestMedianOfGapsIsMedian: on gaps between distinct days (whole,
// positive) of every length up to and past its insertion sort, medianOfGaps
// gives median's value, bit for bit.
func TestMedianOfGapsIsMedian(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for n := 1; n <= 20; n++ {
		for range 500 {
			gaps := make([]float64, n)
			for i := range gaps {
				gaps[i] = float64(1 + rng.IntN(1+rng.IntN(400)))
			}
			want := median(gaps)
			if got := medianOfGaps(slices.Clone(gaps)); got != want {
				t.Fatalf("%v: %v, want %v", gaps, got, want)
			}
		}
	}
}
