package rules

import (
	"errors"
	"time"
)

// Sentinel errors. Callers test with errors.Is.
var (
	// ErrInvalid reports a rule set that fails validation. The error is a
	// [ValidationErrors] listing every problem with its YAML path.
	ErrInvalid = errors.New("rules: invalid rule set")
	// ErrInput reports a sale the rules cannot score (a negative amount, a
	// duplicate line number, no sale time) or a malformed birthday given
	// to ParseBirthday.
	ErrInput = errors.New("rules: invalid sale input")
	// ErrOverflow reports an amount or a result too large to be real
	// (beyond MaxAmount or MaxPoints). It is never a wrapped number.
	ErrOverflow = errors.New("rules: amount out of range")
)

// Limits that keep every computation far from int64 overflow and reject
// amounts no register will ever see.
const (
	// MaxAmount is the largest line amount and the largest sale total, in
	// minor units (10^12: ten billion currency units at 100 minor units).
	MaxAmount int64 = 1_000_000_000_000
	// MaxPoints is the largest number of points one sale may earn.
	MaxPoints int64 = 1_000_000_000_000
	// MaxRuleMultiplier is the largest multiplier any rule may state, and
	// the largest MaxMultiplier cap.
	MaxRuleMultiplier = 100 * DecOne
)

// Rounding says how an exact fractional number of points becomes an integer.
type Rounding string

// Rounding modes. The default (empty) is RoundFloor: a customer earns a point
// only for a whole point's worth of spend.
const (
	RoundFloor    Rounding = "floor"     // towards zero (amounts are never negative)
	RoundHalfUp   Rounding = "half-up"   // .5 goes up
	RoundHalfEven Rounding = "half-even" // .5 goes to the even neighbour (banker's rounding)
)

// RoundScope says where rounding happens.
type RoundScope string

// Rounding scopes. The default (empty) is PerLine.
const (
	// PerLine rounds each line on its own; the sale earns the sum.
	PerLine RoundScope = "line"
	// PerSale rounds the sum of the lines' exact points once; the result is
	// then shared out to the lines by largest remainder (ties to the lower
	// line number) so the line points still sum to the sale's points and a
	// refund of a line reverses what that line was credited.
	PerSale RoundScope = "sale"
)

// Stacking says how the multipliers of several active campaigns combine.
type Stacking string

// Stacking policies. The default (empty) is StackHighest.
const (
	// StackHighest applies only the highest active campaign multiplier.
	StackHighest Stacking = "highest"
	// StackMultiply multiplies all active campaign multipliers together.
	StackMultiply Stacking = "multiply"
)

// Rate says what a line earns per amount spent. At most one of PointsPerUnit
// and PercentBack is set; Exclude makes the line earn nothing (not allowed on
// the default rate).
type Rate struct {
	// PointsPerUnit is points per currency unit (RuleSet.Unit minor units),
	// e.g. 1 or 0.1 (one point per ten units).
	PointsPerUnit *Dec `json:"points_per_unit,omitempty" yaml:"points_per_unit,omitempty"`
	// PercentBack is a percentage of the amount given back as points, each
	// point worth RuleSet.PointValue minor units, e.g. 5 for 5%.
	PercentBack *Dec `json:"percent_back,omitempty" yaml:"percent_back,omitempty"`
	// Exclude means the line earns no points and no campaign applies.
	Exclude bool `json:"exclude,omitempty" yaml:"exclude,omitempty"`
}

// CategoryRate overrides the default rate for a product category.
type CategoryRate struct {
	Category string `json:"category" yaml:"category"`
	Rate     `yaml:",inline"`
}

// SKURate overrides the category and default rates for one SKU.
type SKURate struct {
	SKU  string `json:"sku" yaml:"sku"`
	Rate `yaml:",inline"`
}

// Campaign is a time-boxed multiplier and/or flat bonus. It is active on a
// date (in the store's time zone) when the date is within From..To
// (inclusive, either may be empty for open-ended) and, if Weekdays is set,
// the date's weekday is one of them. At least one of From, To and Weekdays
// must be set. Campaigns apply only when the sale's clock is trusted.
type Campaign struct {
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Multiplier applies to the points of eligible lines; nil means 1.
	Multiplier *Dec `json:"multiplier,omitempty" yaml:"multiplier,omitempty"`
	// BonusPoints is a flat bonus credited once per member sale while the
	// campaign is active (Bonus kind "campaign:<id>").
	BonusPoints int64 `json:"bonus_points,omitempty" yaml:"bonus_points,omitempty"`
	// Weekdays are lower-case three-letter names: mon, tue, wed, thu, fri,
	// sat, sun.
	Weekdays []string `json:"weekdays,omitempty" yaml:"weekdays,omitempty"`
	// From and To are dates "YYYY-MM-DD" in the store's time zone, inclusive.
	From string `json:"from,omitempty" yaml:"from,omitempty"`
	To   string `json:"to,omitempty" yaml:"to,omitempty"`
	// Categories limits the multiplier to lines of these categories; empty
	// means every line that earns points.
	Categories []string `json:"categories,omitempty" yaml:"categories,omitempty"`
}

// Tier is a membership level. A member is in the highest tier (the last in
// RuleSet.Tiers that qualifies) whose MinSpend or MinVisits is reached by the
// rolling 12-month figures; a zero threshold is not a way in, except for the
// first tier which must have both zero and is everyone's base tier.
type Tier struct {
	Name      string `json:"name" yaml:"name"`
	MinSpend  int64  `json:"min_spend,omitempty" yaml:"min_spend,omitempty"`   // minor units
	MinVisits int    `json:"min_visits,omitempty" yaml:"min_visits,omitempty"` // visits
	// Multiplier applies to every line's points; nil means 1.
	Multiplier *Dec `json:"multiplier,omitempty" yaml:"multiplier,omitempty"`
}

// BirthdayBonus is credited once per birthday, on the first member sale
// within the window DaysBefore..DaysAfter around the birthday (0 and 0 means
// on the day only). A 29 February birthday falls on 28 February in other
// years.
type BirthdayBonus struct {
	Points     int64 `json:"points,omitempty" yaml:"points,omitempty"`
	DaysBefore int   `json:"days_before,omitempty" yaml:"days_before,omitempty"`
	DaysAfter  int   `json:"days_after,omitempty" yaml:"days_after,omitempty"`
}

// RuleSet is one versioned set of points rules. Head office sends rule sets
// as JSON documents ([Decode]); the register's YAML config embeds one. The
// zero value of every optional field is its documented default.
type RuleSet struct {
	// Version increases with every change; must be at least 1.
	Version int    `json:"version" yaml:"version"`
	Name    string `json:"name,omitempty" yaml:"name,omitempty"`
	// TimeZone is the store's IANA time zone, e.g. "Asia/Jerusalem";
	// default "UTC". Campaign dates, weekdays, birthdays and expiry dates
	// are read in it.
	TimeZone string `json:"timezone,omitempty" yaml:"timezone,omitempty"`
	// Unit is how many minor units make one currency unit; default 100.
	Unit int64 `json:"unit,omitempty" yaml:"unit,omitempty"`
	// PointValue is what one point is worth in minor units, used by
	// PercentBack; default 1.
	PointValue int64 `json:"point_value,omitempty" yaml:"point_value,omitempty"`
	// Earn is the default rate. It must set PointsPerUnit or PercentBack.
	Earn       Rate       `json:"earn" yaml:"earn"`
	Rounding   Rounding   `json:"rounding,omitempty" yaml:"rounding,omitempty"`
	RoundScope RoundScope `json:"round_per,omitempty" yaml:"round_per,omitempty"`

	CategoryRates []CategoryRate `json:"category_rates,omitempty" yaml:"category_rates,omitempty"`
	SKURates      []SKURate      `json:"sku_rates,omitempty" yaml:"sku_rates,omitempty"`

	Campaigns []Campaign `json:"campaigns,omitempty" yaml:"campaigns,omitempty"`
	Stacking  Stacking   `json:"stacking,omitempty" yaml:"stacking,omitempty"`
	// MaxMultiplier caps the combined tier × campaign multiplier; nil means
	// 10.
	MaxMultiplier *Dec `json:"max_multiplier,omitempty" yaml:"max_multiplier,omitempty"`

	Tiers []Tier `json:"tiers,omitempty" yaml:"tiers,omitempty"`

	// FirstPurchaseBonus is credited at the member's second visit: the
	// first sale only marks it pending (invest in first-time buyers by
	// giving them a reason to come back).
	FirstPurchaseBonus int64         `json:"first_purchase_bonus,omitempty" yaml:"first_purchase_bonus,omitempty"`
	Birthday           BirthdayBonus `json:"birthday,omitzero" yaml:"birthday,omitempty"`

	Rewards []Reward `json:"rewards,omitempty" yaml:"rewards,omitempty"`

	// ExpiryMonths is how long earned points live; 0 means they never
	// expire. The date is fixed when the points are earned.
	ExpiryMonths int `json:"expiry_months,omitempty" yaml:"expiry_months,omitempty"`
}

// LineInput is one sale line as the rules see it. Amount is the net line
// amount in minor units (quantity*unit price minus discount).
type LineInput struct {
	No       int
	SKU      string
	Category string
	Amount   int64
}

// MemberState is what the rules need to know about the member at sale time.
// An empty ID means an anonymous sale: lines are scored, no bonus applies.
type MemberState struct {
	ID                   string
	Birthday             string // "YYYY-MM-DD" or "--MM-DD"; empty = unknown
	Tier                 string // informational: Evaluate recomputes the tier
	Spend12m             int64  // rolling 12-month net spend before this sale, minor units
	Visits12m            int    // rolling 12-month visits before this sale
	Purchases            int    // all-time purchases before this sale
	FirstBonusPending    bool   // a first-purchase bonus waits to be credited at this visit
	BirthdayBonusGivenAt time.Time
	// BirthdayYears are the birthday occurrences (years) whose bonus was
	// credited; each occurrence earns the bonus once.
	BirthdayYears []int
	// TierFixed keeps Tier instead of recomputing it: the register cannot
	// date the sale (clock not trusted), and an untrusted clock never
	// changes a member's tier.
	TierFixed bool
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

// Bonus kinds.
const (
	BonusFirstPurchase = "first-purchase"
	BonusBirthday      = "birthday"
	BonusCampaign      = "campaign:" // followed by the campaign id
)

// Bonus is a points credit not tied to a line.
type Bonus struct {
	Kind   string // "first-purchase", "birthday", "campaign:<id>"
	Points int64
}

// Outcome is the result of scoring a sale.
type Outcome struct {
	Lines             []LinePoints // one per input line, in input order
	Bonuses           []Bonus
	Tier              string    // member's tier after this sale
	ExpiresAt         time.Time // expiry fixed at earn time; zero = never
	FirstBonusPending bool      // after this sale, a first-purchase bonus waits for the next visit
	// Multiplier is the combined tier × campaign multiplier applied to
	// eligible lines (after the cap).
	Multiplier Dec
	// Campaigns lists the ids of the campaigns that applied.
	Campaigns []string
	// BirthdayBonus reports that a birthday bonus was credited, so the
	// ledger can record BirthdayBonusGivenAt; BirthdayYear is the year of
	// the occurrence it was credited for (kept in
	// MemberState.BirthdayYears).
	BirthdayBonus bool
	BirthdayYear  int
}

// Total is the sale's points: every line plus every bonus. Evaluate
// guarantees it does not overflow.
func (o Outcome) Total() int64 {
	var t int64
	for _, l := range o.Lines {
		t += l.Points
	}
	for _, b := range o.Bonuses {
		t += b.Points
	}
	return t
}

// Reward is an entry of the rewards catalogue: Points buy Discount.
type Reward struct {
	ID       string `json:"id" yaml:"id"`
	Name     string `json:"name" yaml:"name"`
	Points   int64  `json:"points" yaml:"points"`
	Discount int64  `json:"discount" yaml:"discount"`
}

// Reward looks up a catalogue reward.
func (rs *RuleSet) Reward(id string) (Reward, bool) {
	for _, r := range rs.Rewards {
		if r.ID == id {
			return r, true
		}
	}
	return Reward{}, false
}
