package rules

import (
	"errors"
	"time"
)

var errTODO = errors.New("rules: not implemented yet")

// Validate reports every problem with the rule set (wrapping ErrInvalid),
// naming the offending field by its YAML path, e.g. "campaigns[1].multiplier".
func (rs *RuleSet) Validate() error { return nil }

// Evaluate scores a sale.
func (rs *RuleSet) Evaluate(in SaleInput) (Outcome, error) { return Outcome{}, errTODO }

// TierFor returns the tier for the rolling 12-month spend and visits.
func (rs *RuleSet) TierFor(spend12m int64, visits12m int) Tier { return Tier{} }

// ExpiryFor returns when points earned at earnedAt expire; zero = never.
func (rs *RuleSet) ExpiryFor(earnedAt time.Time) time.Time { return time.Time{} }

// PartialReverse returns the points to reverse when refundingNow more units
// of a line that sold unitsSold units and earned earned points are refunded,
// after refundedBefore units were refunded earlier.
func PartialReverse(earned, unitsSold, refundedBefore, refundingNow int64) (int64, error) {
	return 0, errTODO
}

// Decode reads a JSON rule document strictly and validates it.
func Decode(data []byte) (*RuleSet, error) { return nil, errTODO }
