package rules

import (
	"fmt"
	"math/bits"
)

// PartialReverse returns how many points to take back when refundingNow
// more units are refunded of a sale line that sold unitsSold units and
// earned earned points, after refundedBefore units of it were refunded
// earlier.
//
// Rounding: after k units in total are refunded, floor(earned × k /
// unitsSold) points have been reversed; each refund reverses the difference
// between that figure after and before it. So a series of partial refunds
// telescopes: it never reverses more than earned, and once every unit is
// refunded it has reversed exactly earned, whatever the split. The customer
// keeps a fractional point until the unit that completes it is refunded.
//
// Bad input (negative figures, zero units sold, refunding more units than
// remain) is an error wrapping ErrInput.
func PartialReverse(earned, unitsSold, refundedBefore, refundingNow int64) (int64, error) {
	switch {
	case earned < 0:
		return 0, fmt.Errorf("%w: earned points %d are negative", ErrInput, earned)
	case unitsSold <= 0:
		return 0, fmt.Errorf("%w: units sold %d must be positive", ErrInput, unitsSold)
	case refundedBefore < 0 || refundingNow < 0:
		return 0, fmt.Errorf("%w: refunded units must not be negative", ErrInput)
	case refundedBefore > unitsSold || refundingNow > unitsSold-refundedBefore:
		return 0, fmt.Errorf("%w: refunding %d units after %d of %d sold", ErrInput, refundingNow, refundedBefore, unitsSold)
	}
	return share(earned, refundedBefore+refundingNow, unitsSold) - share(earned, refundedBefore, unitsSold), nil
}

// share returns floor(earned*k/n) for 0 <= k <= n, n > 0, earned >= 0,
// with a 128-bit intermediate product so it cannot overflow.
func share(earned, k, n int64) int64 {
	hi, lo := bits.Mul64(uint64(earned), uint64(k))
	q, _ := bits.Div64(hi, lo, uint64(n)) // hi < n because earned*k/n <= earned < 2^63
	return int64(q)
}
