package bgnbd

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// Simulate draws n customers from the BG/NBD process with parameters p, for
// tests and benchmarks. Each customer's age T is uniform on (0, maxT];
// purchase times are truncated to multiples of step (e.g. 1/7 for days when
// the unit is weeks; 0 keeps them continuous), and purchases falling on the
// same step count once, as purchase days do.
func Simulate(src rand.Source, p Params, n int, maxT, step float64) []Customer {
	rng := rand.New(src)
	gam := distuv.Gamma{Alpha: p.R, Beta: p.Alpha, Src: src}
	beta := distuv.Beta{Alpha: p.A, Beta: p.B, Src: src}
	round := func(v float64) float64 {
		if step <= 0 {
			return v
		}
		return math.Floor(v/step) * step
	}
	out := make([]Customer, n)
	for i := range out {
		T := round(maxT * (1 - rng.Float64()))
		lambda := gam.Rand()
		drop := beta.Rand()
		var x int
		var tx, last float64
		now := 0.0
		for {
			now += rng.ExpFloat64() / lambda
			if now > T {
				break
			}
			d := round(now)
			if d > last {
				x++
				tx = d
				last = d
			}
			if rng.Float64() < drop {
				break
			}
		}
		out[i] = Customer{X: x, Tx: tx, T: T}
	}
	return out
}
