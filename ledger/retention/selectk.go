package retention

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// nth reorders v so that v[k] is the element a sort would put there, with
// nothing greater before it and nothing smaller after it: a median or a
// top share needs one element of the order, not all of it. Three-way
// partitions keep runs of equal values (whole days) linear; a bad run of
// pivots ends in a sort of what is left.
func nth[T cmp.Ordered](v []T, k int) {
	lo, hi := 0, len(v)-1
	for budget := 2*bits.Len(uint(len(v))) + 8; hi > lo; budget-- {
		if budget == 0 || hi-lo < 16 {
			slices.Sort(v[lo : hi+1])
			return
		}
		// Median of three as the pivot.
		mid := lo + (hi-lo)/2
		a, b, c := v[lo], v[mid], v[hi]
		p := max(min(a, b), min(max(a, b), c))
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch {
			case v[i] < p:
				v[lt], v[i] = v[i], v[lt]
				lt++
				i++
			case v[i] > p:
				v[i], v[gt] = v[gt], v[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return
		}
	}
}

// nthFunc is nth in the order cmp gives, which must be total (no two
// elements compare equal), as the ranking by spend and id is.
func nthFunc[T any](v []T, k int, cmp func(a, b T) int) {
	lo, hi := 0, len(v)-1
	for budget := 2*bits.Len(uint(len(v))) + 8; hi > lo; budget-- {
		if budget == 0 || hi-lo < 16 {
			slices.SortFunc(v[lo:hi+1], cmp)
			return
		}
		// Median of three moved to hi as the pivot, then Lomuto's
		// partition (no equal elements: two ways suffice).
		mid := lo + (hi-lo)/2
		if cmp(v[mid], v[lo]) < 0 {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if cmp(v[hi], v[lo]) < 0 {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if cmp(v[mid], v[hi]) < 0 {
			v[mid], v[hi] = v[hi], v[mid]
		}
		p := v[hi]
		i := lo
		for j := lo; j < hi; j++ {
			if cmp(v[j], p) < 0 {
				v[i], v[j] = v[j], v[i]
				i++
			}
		}
		v[i], v[hi] = v[hi], v[i]
		switch {
		case k < i:
			hi = i - 1
		case k > i:
			lo = i + 1
		default:
			return
		}
	}
}

// medianInPlace is median without the copy: it may reorder v. The value is
// median's exactly (the same one or two elements of the order); a NaN,
// which has no place in an order, sends it to median.
func medianInPlace(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return 0
	}
	for _, x := range v {
		if math.IsNaN(x) {
			return median(v)
		}
	}
	switch n {
	case 1:
		return v[0]
	case 2:
		// What the selection below gives: the sum of the two in either
		// order is the same.
		return (v[0] + v[1]) / 2
	}
	k := n / 2
	nth(v, k)
	if n%2 == 1 {
		return v[k]
	}
	lo := v[0]
	for _, x := range v[1:k] {
		lo = max(lo, x)
	}
	return (lo + v[k]) / 2
}
