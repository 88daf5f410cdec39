package rules

import (
	"fmt"
	"math/big"
	"strings"
	"time"
)

// FieldError is one problem with a rule set: the YAML path of the field and
// what is wrong with it.
type FieldError struct {
	Path string // e.g. "campaigns[1].multiplier"
	Msg  string // e.g. "must be between 1 and 10"
}

func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// ValidationErrors lists every problem found in a rule set, in field order.
// It wraps ErrInvalid.
type ValidationErrors []FieldError

func (v ValidationErrors) Error() string {
	parts := make([]string, len(v))
	for i, e := range v {
		parts[i] = e.Error()
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (v ValidationErrors) Unwrap() error { return ErrInvalid }

// Limits on what a rule may state: generous for any real programme, and small
// enough that no product of them can overflow.
const (
	maxUnit          = 1_000_000
	maxPointsPerUnit = 1_000 * DecOne
	maxPercentBack   = 100 * DecOne
	maxBonus         = 1_000_000_000
	maxWindowDays    = 90
	maxExpiryMonths  = 1200
	defaultMaxMult   = 10 * DecOne
)

type checker struct{ errs ValidationErrors }

func (c *checker) addf(path, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// uniqueIDs checks the ids of one list (category rates, campaigns, tiers,
// rewards): each must be set and appear once.
type uniqueIDs struct {
	c                  *checker
	list, field, taken string // taken words a repeat: "is already in"
	seen               map[string]int
}

func (c *checker) unique(list, field, taken string) *uniqueIDs {
	return &uniqueIDs{c: c, list: list, field: field, taken: taken, seen: map[string]int{}}
}

// check checks the id of list[i].
func (u *uniqueIDs) check(i int, id string) {
	p := fmt.Sprintf("%s[%d].%s", u.list, i, u.field)
	if id == "" {
		u.c.addf(p, "must not be empty")
	} else if j, dup := u.seen[id]; dup {
		u.c.addf(p, "%q %s %s[%d]", id, u.taken, u.list, j)
	} else {
		u.seen[id] = i
	}
}

// Validate reports every problem with the rule set (a ValidationErrors,
// wrapping ErrInvalid), naming each offending field by its YAML path, e.g.
// "campaigns[1].multiplier: must be between 1 and 10". It does not change
// the rule set.
func (rs *RuleSet) Validate() error {
	_, err := rs.Compile()
	return err
}

// Engine is a validated rule set with its defaults applied and its time zone
// loaded, ready to score sales without reading any file. It is immutable and
// safe for concurrent use. Build one with [RuleSet.Compile] when scoring many
// sales with the same rules; the RuleSet methods compile on every call.
type Engine struct {
	rs       *RuleSet
	loc      *time.Location
	unit     int64
	ptValue  int64
	maxMult  Dec
	rounding Rounding
	scope    RoundScope
	stacking Stacking
	from, to []date // per campaign; zero date = open
	hasFrom  []bool
	hasTo    []bool
	days     []map[time.Weekday]bool
	// rates in points per minor unit; a nil rate means excluded
	defRate *big.Rat
	skuRate map[string]*big.Rat
	catRate map[string]*big.Rat
}

// Compile validates the rule set (see Validate) and returns an Engine for it.
// The Engine keeps a pointer to rs: do not change rs afterwards.
func (rs *RuleSet) Compile() (*Engine, error) {
	c := &checker{}
	k := &Engine{rs: rs, unit: 100, ptValue: 1, maxMult: defaultMaxMult,
		rounding: RoundFloor, scope: PerLine, stacking: StackHighest, loc: time.UTC}

	if rs.Version < 1 {
		c.addf("version", "must be at least 1 (got %d)", rs.Version)
	}
	switch tz := rs.TimeZone; tz {
	case "", "UTC":
	case "Local":
		c.addf("timezone", `"Local" depends on the machine; use an IANA name like "Europe/Sofia"`)
	default:
		loc, err := time.LoadLocation(tz)
		if err != nil {
			c.addf("timezone", "unknown time zone %q; use an IANA name like \"Asia/Jerusalem\"", tz)
		} else {
			k.loc = loc
		}
	}
	if rs.Unit != 0 {
		if rs.Unit < 1 || rs.Unit > maxUnit {
			c.addf("unit", "must be between 1 and %d minor units (got %d)", maxUnit, rs.Unit)
		} else {
			k.unit = rs.Unit
		}
	}
	if rs.PointValue != 0 {
		if rs.PointValue < 1 || rs.PointValue > maxUnit {
			c.addf("point_value", "must be between 1 and %d minor units (got %d)", maxUnit, rs.PointValue)
		} else {
			k.ptValue = rs.PointValue
		}
	}
	switch rs.Rounding {
	case "":
	case RoundFloor, RoundHalfUp, RoundHalfEven:
		k.rounding = rs.Rounding
	default:
		c.addf("rounding", "%q is not a rounding mode; use floor, half-up or half-even", rs.Rounding)
	}
	switch rs.RoundScope {
	case "":
	case PerLine, PerSale:
		k.scope = rs.RoundScope
	default:
		c.addf("round_per", "%q is not a rounding scope; use line or sale", rs.RoundScope)
	}
	switch rs.Stacking {
	case "":
	case StackHighest, StackMultiply:
		k.stacking = rs.Stacking
	default:
		c.addf("stacking", "%q is not a stacking policy; use highest or multiply", rs.Stacking)
	}
	if m := rs.MaxMultiplier; m != nil {
		if *m < DecOne || *m > MaxRuleMultiplier {
			c.addf("max_multiplier", "must be between 1 and %s (got %s)", MaxRuleMultiplier, *m)
		} else {
			k.maxMult = *m
		}
	}

	checkRate(c, "earn", rs.Earn, true)
	categories := c.unique("category_rates", "category", "is already in")
	for i, r := range rs.CategoryRates {
		p := fmt.Sprintf("category_rates[%d]", i)
		categories.check(i, r.Category)
		checkRate(c, p, r.Rate, false)
	}
	skus := c.unique("sku_rates", "sku", "is already in")
	for i, r := range rs.SKURates {
		p := fmt.Sprintf("sku_rates[%d]", i)
		skus.check(i, r.SKU)
		checkRate(c, p, r.Rate, false)
	}

	campaigns := c.unique("campaigns", "id", "is already used by")
	for i, cp := range rs.Campaigns {
		p := fmt.Sprintf("campaigns[%d]", i)
		campaigns.check(i, cp.ID)
		if cp.Multiplier != nil && (*cp.Multiplier < DecOne || *cp.Multiplier > k.maxMult) {
			c.addf(p+".multiplier", "must be between 1 and %s (got %s)", k.maxMult, *cp.Multiplier)
		}
		if cp.BonusPoints < 0 || cp.BonusPoints > maxBonus {
			c.addf(p+".bonus_points", "must be between 0 and %d (got %d)", maxBonus, cp.BonusPoints)
		}
		if cp.Multiplier == nil && cp.BonusPoints == 0 {
			c.addf(p, "does nothing: set multiplier or bonus_points")
		}
		days := map[time.Weekday]bool{}
		for j, w := range cp.Weekdays {
			wd, ok := weekdayNames[w]
			switch {
			case !ok:
				c.addf(fmt.Sprintf("%s.weekdays[%d]", p, j), "%q is not a weekday; use mon, tue, wed, thu, fri, sat or sun", w)
			case days[wd]:
				c.addf(fmt.Sprintf("%s.weekdays[%d]", p, j), "%q is listed twice", w)
			default:
				days[wd] = true
			}
		}
		var from, to date
		var okFrom, okTo bool
		if cp.From != "" {
			d, err := parseDate(cp.From)
			if err != nil {
				c.addf(p+".from", "%v", err)
			} else {
				from, okFrom = d, true
			}
		}
		if cp.To != "" {
			d, err := parseDate(cp.To)
			if err != nil {
				c.addf(p+".to", "%v", err)
			} else {
				to, okTo = d, true
			}
		}
		if okFrom && okTo && to.before(from) {
			c.addf(p+".to", "%s is before from (%s)", to, from)
		}
		if cp.From == "" && cp.To == "" && len(cp.Weekdays) == 0 {
			c.addf(p, "is not time-boxed: set from, to or weekdays")
		}
		for j, cat := range cp.Categories {
			if cat == "" {
				c.addf(fmt.Sprintf("%s.categories[%d]", p, j), "must not be empty")
			}
		}
		k.from = append(k.from, from)
		k.to = append(k.to, to)
		k.hasFrom = append(k.hasFrom, okFrom)
		k.hasTo = append(k.hasTo, okTo)
		k.days = append(k.days, days)
	}

	tiers := c.unique("tiers", "name", "is already")
	var lastSpend int64
	var lastVisits int
	for i, t := range rs.Tiers {
		p := fmt.Sprintf("tiers[%d]", i)
		tiers.check(i, t.Name)
		if t.Multiplier != nil && (*t.Multiplier < DecOne || *t.Multiplier > k.maxMult) {
			c.addf(p+".multiplier", "must be between 1 and %s (got %s)", k.maxMult, *t.Multiplier)
		}
		if t.MinSpend < 0 || t.MinSpend > MaxAmount {
			c.addf(p+".min_spend", "must be between 0 and %d minor units (got %d)", MaxAmount, t.MinSpend)
		}
		if t.MinVisits < 0 || t.MinVisits > 1_000_000 {
			c.addf(p+".min_visits", "must be between 0 and 1000000 (got %d)", t.MinVisits)
		}
		if i == 0 {
			if t.MinSpend != 0 || t.MinVisits != 0 {
				c.addf(p, "the first tier is the base tier: min_spend and min_visits must be 0")
			}
			continue
		}
		if t.MinSpend == 0 && t.MinVisits == 0 {
			c.addf(p, "set min_spend or min_visits (only the first tier has neither)")
		}
		if t.MinSpend != 0 {
			if t.MinSpend <= lastSpend {
				c.addf(p+".min_spend", "must be above the lower tiers' min_spend (%d)", lastSpend)
			}
			lastSpend = max(lastSpend, t.MinSpend)
		}
		if t.MinVisits != 0 {
			if t.MinVisits <= lastVisits {
				c.addf(p+".min_visits", "must be above the lower tiers' min_visits (%d)", lastVisits)
			}
			lastVisits = max(lastVisits, t.MinVisits)
		}
	}

	if rs.FirstPurchaseBonus < 0 || rs.FirstPurchaseBonus > maxBonus {
		c.addf("first_purchase_bonus", "must be between 0 and %d (got %d)", maxBonus, rs.FirstPurchaseBonus)
	}
	if b := rs.Birthday; b.Points < 0 || b.Points > maxBonus {
		c.addf("birthday.points", "must be between 0 and %d (got %d)", maxBonus, b.Points)
	}
	if d := rs.Birthday.DaysBefore; d < 0 || d > maxWindowDays {
		c.addf("birthday.days_before", "must be between 0 and %d (got %d)", maxWindowDays, d)
	}
	if d := rs.Birthday.DaysAfter; d < 0 || d > maxWindowDays {
		c.addf("birthday.days_after", "must be between 0 and %d (got %d)", maxWindowDays, d)
	}

	rewards := c.unique("rewards", "id", "is already")
	for i, r := range rs.Rewards {
		p := fmt.Sprintf("rewards[%d]", i)
		rewards.check(i, r.ID)
		if r.Name == "" {
			c.addf(p+".name", "must not be empty")
		}
		if r.Points < 1 || r.Points > MaxPoints {
			c.addf(p+".points", "must be between 1 and %d (got %d)", MaxPoints, r.Points)
		}
		if r.Discount < 1 || r.Discount > MaxAmount {
			c.addf(p+".discount", "must be between 1 and %d minor units (got %d)", MaxAmount, r.Discount)
		}
	}
	if rs.ExpiryMonths < 0 || rs.ExpiryMonths > maxExpiryMonths {
		c.addf("expiry_months", "must be between 0 (never) and %d (got %d)", maxExpiryMonths, rs.ExpiryMonths)
	}

	if len(c.errs) > 0 {
		return nil, c.errs
	}
	k.defRate = k.rateOf(rs.Earn)
	k.skuRate = make(map[string]*big.Rat, len(rs.SKURates))
	for _, r := range rs.SKURates {
		k.skuRate[r.SKU] = k.rateOf(r.Rate)
	}
	k.catRate = make(map[string]*big.Rat, len(rs.CategoryRates))
	for _, r := range rs.CategoryRates {
		k.catRate[r.Category] = k.rateOf(r.Rate)
	}
	return k, nil
}

// rateOf converts a validated rate to points per minor unit; nil when the
// rate excludes.
func (e *Engine) rateOf(r Rate) *big.Rat {
	switch {
	case r.Exclude:
		return nil
	case r.PointsPerUnit != nil:
		return big.NewRat(int64(*r.PointsPerUnit), int64(DecOne)*e.unit)
	case r.PercentBack != nil:
		return big.NewRat(int64(*r.PercentBack), int64(DecOne)*100*e.ptValue)
	}
	return new(big.Rat)
}

func checkRate(c *checker, p string, r Rate, isDefault bool) {
	set := 0
	if r.PointsPerUnit != nil {
		set++
		if v := *r.PointsPerUnit; v < 0 || v > maxPointsPerUnit {
			c.addf(p+".points_per_unit", "must be between 0 and %s (got %s)", maxPointsPerUnit, v)
		}
	}
	if r.PercentBack != nil {
		set++
		if v := *r.PercentBack; v < 0 || v > maxPercentBack {
			c.addf(p+".percent_back", "must be between 0 and %s (got %s)", maxPercentBack, v)
		}
	}
	if r.Exclude {
		if isDefault {
			c.addf(p+".exclude", "the default rate cannot exclude; set points_per_unit: 0 to earn nothing")
		}
		set++
	}
	switch {
	case set == 0 && isDefault:
		c.addf(p, "set points_per_unit or percent_back")
	case set == 0:
		c.addf(p, "set one of points_per_unit, percent_back or exclude")
	case set > 1:
		c.addf(p, "set only one of points_per_unit, percent_back and exclude")
	}
}
