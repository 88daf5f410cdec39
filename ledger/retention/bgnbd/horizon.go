package bgnbd

import (
	"fmt"
	"math"
)

// Horizon is what the predictions over the next t time units share among
// customers with the same repeat purchases and age (X and T), whatever
// their recency: the hypergeometric part of ExpectedPurchases and the
// chance an active customer buys nothing. A population with day-granular
// summaries has several distinct recencies per (X, T), so Predict with a
// Horizon computed once per (X, T) saves most of the special functions.
type Horizon struct {
	x    int
	age  float64
	t    float64
	num  float64
	err  error
	stay float64
	// logAB and logAT: PAlive's logarithms of x and of T.
	logAB, logAT float64
}

// AtHorizon returns the Horizon of customers with x repeat purchases and
// age T over the next t time units.
func (p Params) AtHorizon(x int, T, t float64) Horizon {
	h := Horizon{x: x, age: T, t: t}
	h.stay = p.stay(x, T, t)
	h.logAB, h.logAT = p.logAOverBX(x), math.Log(p.Alpha+T)
	if t > 0 && checkHorizon(t) == nil {
		h.num, h.err = p.expectedNum(x, T, t)
	}
	return h
}

// Predict returns PAlive(c), PNoPurchase(c, t) and ExpectedPurchases(c, t)
// (with its error), where h is AtHorizon(c.X, c.T, t): the same values,
// bit for bit, as the three methods give. A Horizon of another X, T or t
// is ErrInvalid.
func (p Params) Predict(c Customer, h *Horizon) (pAlive, pNoPurchase, expected float64, err error) {
	if h.x != c.X || h.age != c.T {
		return 0, 0, 0, errHorizon(c, h)
	}
	pAlive = 1.0
	if c.X != 0 {
		pAlive = p.pAliveFrom(h.logAB, h.logAT, c)
	}
	pNoPurchase = pNone(pAlive, h.stay)
	switch {
	case c.Validate() != nil:
		err = c.Validate()
	case checkHorizon(h.t) != nil:
		err = checkHorizon(h.t)
	case h.t == 0:
	case h.err != nil:
		err = h.err
	default:
		expected, err = p.expectedFrom(h.num, c)
	}
	return pAlive, pNoPurchase, expected, err
}

func errHorizon(c Customer, h *Horizon) error {
	return fmt.Errorf("%w: horizon of x=%d T=%g used for x=%d T=%g", ErrInvalid, h.x, h.age, c.X, c.T)
}
