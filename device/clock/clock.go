package clock

import "time"

// Clock gives the wall time and whether it is trusted (synchronised since
// boot). Implementations must be safe for concurrent use.
type Clock interface {
	Now() (time.Time, bool)
}

// System is the machine's clock, always reported as trusted. It is the
// default wherever a Clock is optional; the register daemon injects a clock
// that knows whether NTP has synchronised.
type System struct{}

// Now implements Clock.
func (System) Now() (time.Time, bool) { return time.Now(), true }

// Or returns c, or System when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return System{}
	}
	return c
}

// Wall returns c's time without the trust flag, for code that only measures
// durations (debounce, idle timeouts, pulse gaps), where an unsynchronised
// clock does no harm.
func Wall(c Clock) time.Time {
	t, _ := c.Now()
	return t
}

// BootClock is a Clock that also says which boot it is in and how long
// ago that boot started on a monotonic clock (CLOCK_BOOTTIME, which a
// wall-clock step never moves). The ledger stores both with every event so
// a time stamped by an untrusted clock can be corrected once the clock is
// trusted (trusted now minus the elapsed monotonic time), and judges a
// trusted clock against the time that really elapsed.
type BootClock interface {
	Clock
	Boot() (id string, sinceBoot time.Duration)
}
