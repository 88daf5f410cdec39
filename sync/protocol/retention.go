package protocol

import (
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// SleepIntervals is the factor of the rhythm rule: a member absent for
// more than this many of their own mean intervals is sleeping.
const SleepIntervals = 3

// RhythmStatus is the rhythm rule head office applies when it computes a
// member summary, and a register applies to a summary's rhythm on a later
// day (a member who stays away sends no events, so head office sends no
// new summary): with a mean interval, "sleeping" past SleepIntervals
// intervals since the last purchase day, "due" from one interval, else
// "active"; without one (a single purchase day) always "active".
func RhythmStatus(daysSince int, meanInterval float64) retention.Status {
	switch {
	case !(meanInterval > 0):
		return retention.StatusActive
	case float64(daysSince) > SleepIntervals*meanInterval:
		return retention.StatusSleeping
	case float64(daysSince) >= meanInterval:
		return retention.StatusDue
	}
	return retention.StatusActive
}

// RetentionAsOf returns head office's retention view re-judged on the
// calendar day of asOf (UTC, as head office computes it): Status by
// RhythmStatus from LastPurchase and MeanInterval, the rest unchanged. A
// view without a valid LastPurchase or interval is returned as sent.
func RetentionAsOf(r retention.MemberSummary, asOf time.Time) retention.MemberSummary {
	last, err := time.Parse(time.DateOnly, r.LastPurchase)
	if err != nil || !(r.MeanInterval > 0) {
		return r
	}
	since := retention.DayOf(asOf, time.UTC) - retention.DayOf(last, time.UTC)
	if since < 0 {
		return r
	}
	r.Status = RhythmStatus(int(since), r.MeanInterval)
	return r
}
