package rules

import (
	"slices"
	"time"
)

// TierProgress says where a member stands on the tier ladder, for the
// customer display ("120.00 more to silver").
type TierProgress struct {
	Current Tier
	// Next is the tier above Current; zero when Current is the top tier
	// or there are no tiers.
	Next Tier
	// SpendNeeded is how much more rolling 12-month spend (minor units)
	// reaches Next by spend; 0 when Next has no spend threshold.
	SpendNeeded int64
	// VisitsNeeded is how many more visits reach Next by visits; 0 when
	// Next has no visit threshold.
	VisitsNeeded int
}

// TierProgress returns the member's current tier and what the next one
// takes. Either threshold is enough to move up.
func (rs *RuleSet) TierProgress(spend12m int64, visits12m int) TierProgress {
	p := TierProgress{Current: rs.TierFor(spend12m, visits12m)}
	for i, t := range rs.Tiers {
		if t.Name != p.Current.Name || i+1 >= len(rs.Tiers) {
			continue
		}
		p.Next = rs.Tiers[i+1]
		if p.Next.MinSpend > 0 {
			p.SpendNeeded = p.Next.MinSpend - max(spend12m, 0)
		}
		if p.Next.MinVisits > 0 {
			p.VisitsNeeded = p.Next.MinVisits - max(visits12m, 0)
		}
	}
	return p
}

// NextReward returns the cheapest reward the balance cannot buy yet and how
// many more points it needs ("30 points to a free coffee"); ok is false when
// every reward is affordable or there are none.
func (rs *RuleSet) NextReward(balance int64) (r Reward, needed int64, ok bool) {
	for _, c := range rs.Rewards {
		if c.Points > balance && (!ok || c.Points < r.Points) {
			r, ok = c, true
		}
	}
	if ok {
		needed = r.Points - max(balance, 0)
	}
	return r, needed, ok
}

// TierProgress is RuleSet.TierProgress.
func (e *Engine) TierProgress(spend12m int64, visits12m int) TierProgress {
	return e.rs.TierProgress(spend12m, visits12m)
}

// NextReward is RuleSet.NextReward.
func (e *Engine) NextReward(balance int64) (Reward, int64, bool) { return e.rs.NextReward(balance) }

// BirthdayDue reports whether a sale to this member at t would credit the
// birthday bonus, so the register can say "happy birthday" when the card
// is scanned. Like Evaluate it needs a trusted clock; a malformed birthday
// is not due.
func (e *Engine) BirthdayDue(m MemberState, t time.Time, trusted bool) bool {
	_, ok := e.BirthdayOccurrence(m, t, trusted)
	return ok
}

// BirthdayOccurrence returns the year of the birthday occurrence whose
// window contains t when its bonus is still due: the bonus is credited
// once per occurrence (member and year of the birthday), so a clock that
// went back a year and was corrected never credits one occurrence twice,
// and one that went ahead and came back still credits the real birthday.
// An occurrence counts as given when it is in m.BirthdayYears, or (members
// recorded before occurrences were kept) when m.BirthdayBonusGivenAt falls
// in the same window.
func (e *Engine) BirthdayOccurrence(m MemberState, t time.Time, trusted bool) (int, bool) {
	b := e.rs.Birthday
	if b.Points <= 0 || !trusted || t.IsZero() || m.Birthday == "" {
		return 0, false
	}
	mon, day, err := ParseBirthday(m.Birthday)
	if err != nil {
		return 0, false
	}
	start, year, ok := birthdayWindow(dateOf(t.In(e.loc)), mon, day, b.DaysBefore, b.DaysAfter)
	if !ok || slices.Contains(m.BirthdayYears, year) {
		return 0, false
	}
	if !m.BirthdayBonusGivenAt.IsZero() {
		given := dateOf(m.BirthdayBonusGivenAt.In(e.loc))
		if gs, gy, ok := birthdayWindow(given, mon, day, b.DaysBefore, b.DaysAfter); ok && gy == year && gs == start {
			return 0, false
		}
	}
	return year, true
}
