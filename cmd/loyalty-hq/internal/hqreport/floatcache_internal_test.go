package hqreport

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFloatCache: text from the cache is the text formatted afresh, for
// values that repeat, values that share a slot, zero and minus zero,
// and texts too long to keep.
func TestFloatCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var fc floatCache
	vals := []float64{0, math.Copysign(0, -1), 1e-7, 123456789.123456789, 1e300}
	for range 20000 {
		vals = append(vals, float64(rng.IntN(700))/float64(1+rng.IntN(60)), rng.Float64(), math.Float64frombits(rng.Uint64()))
	}
	for _, format := range []func([]byte, float64) []byte{appendFixed4, appendFiniteFloat} {
		for range 3 {
			for _, v := range vals {
				if format == nil || math.IsNaN(v) || math.IsInf(v, 0) {
					continue
				}
				want := format([]byte("x"), v)
				if got := fc.appendFloat([]byte("x"), v, format); !bytes.Equal(got, want) {
					t.Fatalf("%v: %q, want %q", v, got, want)
				}
			}
		}
		fc = floatCache{}
	}
	var none *floatCache
	if got := none.appendFloat(nil, 2.5, appendFixed4); string(got) != "2.5000" {
		t.Errorf("nil cache: %q", got)
	}
}
