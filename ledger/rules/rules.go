package rules

// CONTRACT FILE (temporary): the rules implementer replaces this with the
// real implementation, keeping these names; additions are fine.

import (
	"errors"
	"time"
)

// ErrInvalid reports a rule set that fails validation.
var ErrInvalid = errors.New("rules: invalid rule set")

// RuleSet is one versioned set of points rules.
type RuleSet struct {
	Version int `json:"version" yaml:"version"`
}

// Validate reports every problem with the rule set (wrapping ErrInvalid),
// naming the offending field by its YAML path, e.g. "campaigns[1].multiplier".
func (rs *RuleSet) Validate() error { return nil }

// LineInput is one sale line as the rules see it. Amount is the net line
// amount in minor units (quantity*unit price minus discount).
type LineInput struct {
	No       int
	SKU      string
	Category string
	Amount   int64
}

// MemberState is what the rules need to know about the member at sale time.
type MemberState struct {
	ID                   string
	Birthday             string // "YYYY-MM-DD" or "--MM-DD"
	Tier                 string
	Spend12m             int64 // rolling 12-month net spend before this sale, minor units
	Visits12m            int   // rolling 12-month visits before this sale
	Purchases            int   // all-time purchases before this sale
	FirstBonusPending    bool  // a first-purchase bonus waits to be credited at this visit
	BirthdayBonusGivenAt time.Time
}

// SaleInput is a sale to score.
type SaleInput struct {
	Lines        []LineInput
	Member       MemberState
	At           time.Time
	ClockTrusted bool
}

// LinePoints is what one line earned.
type LinePoints struct {
	No     int
	Points int64
}

// Bonus is a points credit not tied to a line.
type Bonus struct {
	Kind   string // "first-purchase", "birthday", "campaign:<id>"
	Points int64
}

// Outcome is the result of scoring a sale.
type Outcome struct {
	Lines             []LinePoints
	Bonuses           []Bonus
	Tier              string    // member's tier after this sale
	ExpiresAt         time.Time // expiry fixed at earn time; zero = never
	FirstBonusPending bool      // after this sale, a first-purchase bonus waits for the next visit
}

// Evaluate scores a sale.
func (rs *RuleSet) Evaluate(in SaleInput) (Outcome, error) { return Outcome{}, nil }

// Reward is an entry of the rewards catalogue: Points buy Discount.
type Reward struct {
	ID       string `json:"id" yaml:"id"`
	Name     string `json:"name" yaml:"name"`
	Points   int64  `json:"points" yaml:"points"`
	Discount int64  `json:"discount" yaml:"discount"`
}

// Reward looks up a catalogue reward.
func (rs *RuleSet) Reward(id string) (Reward, bool) { return Reward{}, false }
