package hqreport

import (
	"bytes"
	"encoding/json"
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

// TestOneDayRhythmCache: a rhythm written through the cache is
// json.Marshal's, for rhythms of one day that repeat, share a slot (1,024
// days apart) or have long dates, and for rhythms that only look like
// one day's (minus zero intervals, an interval, two days, first and last
// apart).
func TestOneDayRhythmCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var rs []retention.Rhythm
	for _, d := range oddDays {
		rs = append(rs, retention.Rhythm{PurchaseDays: 1, First: d, Last: d})
	}
	negZero := math.Copysign(0, -1)
	for range 20000 {
		d := retention.Day(18000 + rng.IntN(3000))
		if rng.IntN(4) == 0 {
			d = retention.Day(18000 + 1024*rng.IntN(4))
		}
		r := retention.Rhythm{PurchaseDays: 1, First: d, Last: d}
		switch rng.IntN(8) {
		case 0:
			r.MeanInterval = negZero
		case 1:
			r.MedianInterval = negZero
		case 2:
			r.HasInterval, r.ExpectedNext = true, d+7
		case 3:
			r.PurchaseDays = 2
		case 4:
			r.Last = d + 1
		}
		rs = append(rs, r)
	}
	var fc floatCache
	for range 2 {
		for _, r := range rs {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := appendRhythm([]byte("x"), &r, &fc); !ok || !bytes.Equal(got[1:], want) || got[0] != 'x' {
				t.Fatalf("%+v: %s (%v), want %s", r, got, ok, want)
			}
		}
	}
}
