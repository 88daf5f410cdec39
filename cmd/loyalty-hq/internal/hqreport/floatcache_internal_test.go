package hqreport

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
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

// TestDayCache: a day's text from the cache is retention's, for days
// that repeat, days that share a slot (4,096 apart) and days whose text
// is longer than YYYY-MM-DD or has a sign.
func TestDayCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var fc floatCache
	days := append([]retention.Day(nil), oddDays...)
	for range 20000 {
		days = append(days, retention.Day(18000+rng.IntN(3000)), retention.Day(18000+4096*rng.IntN(3)), retention.Day(rng.Int64N(1<<40)-1<<39))
	}
	for range 2 {
		for _, d := range days {
			want := d.AppendDate([]byte("x"))
			if got := fc.appendDay([]byte("x"), d); !bytes.Equal(got, want) {
				t.Fatalf("day %d: %q, want %q", int(d), got, want)
			}
		}
	}
	var none *floatCache
	if got := none.appendDay(nil, 20000); string(got) != "2024-10-04" {
		t.Errorf("nil cache: %q", got)
	}
}
