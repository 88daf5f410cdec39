package hq

import "time"

// limiter bounds how often each register is served: burst at once, then
// one per every (a token bucket kept as the time its next token is due,
// the "generic cell rate algorithm"). Not safe for concurrent use. A
// register whose bucket is full again takes no memory once the map is
// pruned. Twenty lines did not warrant golang.org/x/time/rate as a new
// module; this one takes the time as an argument, so tests need no clock.
type limiter struct {
	every time.Duration
	burst int
	regs  map[regKey]*limitState
}

type limitState struct {
	due      time.Time // when the register's bucket is full again
	refusing bool      // the last request was refused
}

// limiterPrune: above this many registers tracked, the full buckets are
// dropped (they hold nothing a new entry would not).
const limiterPrune = 4096

func newLimiter(every time.Duration, burst int) *limiter {
	return &limiter{every: every, burst: max(burst, 1), regs: map[regKey]*limitState{}}
}

// allow reports whether k may be served at now, and, when not, whether
// this is the first refusal since k was last served (to log once per
// run of refusals).
func (l *limiter) allow(k regKey, now time.Time) (ok, first bool) {
	st := l.regs[k]
	if st == nil {
		if len(l.regs) >= limiterPrune {
			for key, s := range l.regs {
				if !s.due.After(now) {
					delete(l.regs, key)
				}
			}
		}
		st = &limitState{due: now}
		l.regs[k] = st
	}
	due := st.due
	if due.Before(now) {
		due = now
	}
	if due.Sub(now) > time.Duration(l.burst-1)*l.every {
		first = !st.refusing
		st.refusing = true
		return false, first
	}
	st.due, st.refusing = due.Add(l.every), false
	return true, false
}
