package rules

import (
	"math/big"
)

// MaxEarn is the most points any member could earn for these lines under
// this rule set, whatever the date, the member's tier and history: every
// line at the highest tier multiplier with every campaign that applies to
// it (capped at MaxMultiplier, as Evaluate caps), rounded up, plus the
// first-purchase bonus, the birthday bonus and every campaign's flat
// bonus. Head office uses it to check the points a register reports for
// a sale (a register's credentials must not mint points). Negative line
// amounts count as zero; the result is at most MaxPoints.
func (e *Engine) MaxEarn(lines []LineInput) int64 {
	tier := big.NewRat(1, 1)
	for _, t := range e.rs.Tiers {
		if m := decRat(t.Multiplier); m.Cmp(tier) > 0 {
			tier = m
		}
	}
	limit := new(big.Rat).SetInt64(MaxPoints)
	sum := new(big.Rat)
	for _, l := range lines {
		r := e.rate(l)
		if r == nil || r.Sign() == 0 || l.Amount <= 0 {
			continue
		}
		var camps []int
		for ci, cp := range e.rs.Campaigns {
			// A multiplier below 1 never raises the points; leave it out
			// so that multiplying stacks give an upper bound too.
			if appliesTo(cp, l.Category) && decRat(cp.Multiplier).Cmp(big.NewRat(1, 1)) >= 0 {
				camps = append(camps, ci)
			}
		}
		x := new(big.Rat).SetInt64(min(l.Amount, MaxAmount))
		x.Mul(x, r)
		x.Mul(x, e.multiplier(tier, camps))
		// Rounded up: no rounding mode or scope gives a line more.
		q, rem := new(big.Int).QuoRem(x.Num(), x.Denom(), new(big.Int))
		if rem.Sign() != 0 {
			q.Add(q, big.NewInt(1))
		}
		sum.Add(sum, new(big.Rat).SetInt(q))
		if sum.Cmp(limit) > 0 {
			return MaxPoints
		}
	}
	n := sum.Num().Int64() // an integer at most MaxPoints
	n += max(e.rs.FirstPurchaseBonus, 0) + max(e.rs.Birthday.Points, 0)
	for _, cp := range e.rs.Campaigns {
		n += max(cp.BonusPoints, 0)
	}
	return min(n, MaxPoints)
}
