// Package policy decides, event by event, whether head office applies what
// a register sent or holds it for review: a register's credentials are
// worth one register, so a stolen or misbehaving one must not mint points
// chain-wide or take another member's card.
//
// The checks (docs/hq.md "Policy"):
//   - earn and bonus points of a sale stay within what the sale's rule set
//     (the version the register reports) allows for its lines at the most
//     generous date, tier and bonuses (rules.Engine.MaxEarn); a rule set
//     version head office does not know holds them;
//   - an adjustment stays within a per-event cap and, with the others of
//     its register that day, a per-day cap (both configurable);
//   - an alias that belongs to one member is never moved to another;
//   - a member's profile, and consent given, change only from stores
//     where the member enrolled or bought (a register cannot rewrite the
//     profiles of the chain's other members);
//   - a reversal that gives points back undoes an applied redemption of
//     the same member at the same register, and all reversals of one
//     redemption give back at most what it took;
//   - a member gets one first-purchase bonus, and BirthdayPerYear
//     birthday bonuses per birthday, chain-wide, whichever registers pay
//     them (a register cannot know what another paid while offline);
//   - signs fit the kind (earn and bonus never negative, redeem and expire
//     never positive) and an unknown kind never adds points.
//
// The package is pure: the store that applies events (sync/hq/hqstore)
// gathers the facts for one event from its own transaction (the sale's
// allowance and what it earned so far, the register's adjustments today,
// who owns the aliases), calls Check at the moment it would apply the
// event, in sequence order, and records a held event in the stream (so
// the register's watermark moves on and its stream never stalls) without
// its effect, for review.
package policy
