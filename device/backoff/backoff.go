package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy says how long to wait before retry attempt n.
type Policy struct {
	// Min is the first delay; Max caps every delay. Max below Min means
	// Min.
	Min, Max time.Duration
	// Jitter draws each delay uniformly from [Min, the exponential bound]
	// instead of returning the bound.
	Jitter bool
	// Int64N returns a uniform number in [0, n) for the jitter; nil means
	// math/rand/v2's Int64N.
	Int64N func(n int64) int64
}

// Bound is the exponential bound for attempt n (1 is the first retry):
// Min doubled n-1 times, capped at Max, without overflow. Attempts below 1
// count as 1.
func (p Policy) Bound(attempt int) time.Duration {
	hi, ceiling := max(p.Min, 0), max(p.Max, p.Min, 0)
	for i := 1; i < attempt && hi < ceiling; i++ {
		if hi > ceiling/2 {
			return ceiling
		}
		hi *= 2
	}
	return min(hi, ceiling)
}

// Delay is the wait before attempt n: Bound(n), or with Jitter a uniform
// draw from [Min, Bound(n)].
func (p Policy) Delay(attempt int) time.Duration {
	hi := p.Bound(attempt)
	lo := max(p.Min, 0)
	span := hi - lo
	if !p.Jitter || span <= 0 {
		return hi
	}
	n := rand.Int64N
	if p.Int64N != nil {
		n = p.Int64N
	}
	return lo + time.Duration(n(int64(span)+1))
}
