package retention

import "time"

// RhythmSleepIntervals is the factor of the rhythm rule: a member absent for
// more than this many of their own mean intervals is sleeping.
const RhythmSleepIntervals = 3

// RhythmStatus is the rhythm rule head office applies when it computes a
// member summary, and a register applies to a summary's rhythm on a later
// day (a member who stays away sends no events, so head office sends no
// new summary): with a mean interval, "sleeping" past RhythmSleepIntervals
// intervals since the last purchase day, "due" from one interval, else
// "active"; without one (a single purchase day) always "active".
func RhythmStatus(daysSince int, meanInterval float64) Status {
	switch {
	case !(meanInterval > 0):
		return StatusActive
	case float64(daysSince) > RhythmSleepIntervals*meanInterval:
		return StatusSleeping
	case float64(daysSince) >= meanInterval:
		return StatusDue
	}
	return StatusActive
}

// RetentionAsOf returns head office's retention view re-judged on the
// calendar day of asOf (UTC, as head office computes it): Status by
// RhythmStatus from LastPurchase and MeanInterval, the rest unchanged. A
// view without a valid LastPurchase or interval is returned as sent.
func RetentionAsOf(r MemberSummary, asOf time.Time) MemberSummary {
	last, err := time.Parse(time.DateOnly, r.LastPurchase)
	if err != nil || !(r.MeanInterval > 0) {
		return r
	}
	since := DayOf(asOf, time.UTC) - DayOf(last, time.UTC)
	if since < 0 {
		return r
	}
	r.Status = RhythmStatus(int(since), r.MeanInterval)
	return r
}
