// Package rules is the points rules engine of the loyalty terminal: a pure
// function from a versioned rule set and a sale to the points that sale earns.
//
// It does no I/O, reads no clock and keeps no package-level state: the sale
// carries its own time and whether that time is trusted, and the rule set
// carries the store's time zone. The ledger stores what Evaluate returns; it
// never recomputes old sales with newer rules, so a rule change never
// re-dates or re-scores points already earned.
//
// # Arithmetic
//
// Money is in integer minor units and points are integers. Rates and
// multipliers are fixed-point decimals ([Dec], four decimal places), so a
// line's exact points are a rational number that is rounded once, with the
// rule set's [Rounding] mode, either per line or per sale ([RoundScope]).
// All intermediate products are computed without overflow; an amount or a
// result beyond [MaxAmount] or [MaxPoints] is an error ([ErrOverflow]), never
// a wrapped number.
//
// # What a line earns
//
//	points = amount × rate × multiplier
//
// The rate is chosen SKU first, then category, then the default
// ([RuleSet.Earn]); an exclusion at the SKU or category level makes the line
// earn nothing (and no campaign applies to it). The multiplier is the tier
// multiplier times the campaign multiplier, where active campaigns combine by
// the rule set's [Stacking] policy, and the product is capped at
// MaxMultiplier.
//
// # Tiers and bonuses
//
// A member's tier is recomputed at every sale from the rolling 12-month
// spend and visits the ledger supplies, with this sale counted, so members
// move up and down at sale time ([RuleSet.TierFor]). Bonuses apply only to
// member sales: the first-purchase bonus is marked pending by the first
// purchase and credited by the next one; the birthday bonus is credited once
// per birthday window; an active campaign may add a flat bonus. Bonuses are
// not multiplied. Both are once per member chain-wide: the ledger passes
// the effective [MemberState] (Purchases, FirstBonusPending, BirthdayYears
// from head office's member summary overlaid with this register's own
// sales after it), so a member who bought elsewhere has it pending here
// and one credited elsewhere is not credited again; Evaluate itself only
// sees the state it is given.
//
// # Using it
//
// [RuleSet.Evaluate] validates and prepares the rule set on every call. A
// long-running caller should [RuleSet.Compile] once and call
// [Engine.Evaluate]: the Engine is immutable, safe for concurrent use, and
// reads no file (the time zone is loaded at Compile).
//
// # Time
//
// Campaigns and the birthday bonus depend on the calendar date in the store's
// time zone, so they apply only when the sale's clock is trusted (a Pi boots
// in 1970 until NTP answers). Expiry is fixed from the sale time when the
// points are earned ([RuleSet.ExpiryFor]).
package rules
