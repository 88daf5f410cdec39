package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/device/clock"
)

// Clock faults, as ClockStatus.Fault and PointEvent.ClockFault say them.
const (
	// FaultBehind: the trusted clock reads earlier than the highest
	// trusted time the ledger has seen.
	FaultBehind = "behind"
	// FaultAhead: the trusted clock reads later than the high-water mark
	// plus the monotonic time elapsed since it was seen (and the
	// tolerance), or, in a new boot, later than the mark plus the restart
	// step (Options.ClockRestartStep) and the time since the boot started.
	FaultAhead = "ahead"
)

// DefaultClockTolerance is how far a trusted clock may disagree with the
// high-water mark and the elapsed monotonic time before it is a fault.
const DefaultClockTolerance = 5 * time.Minute

// DefaultClockRestartStep is how far ahead of the high-water mark a
// synchronised clock may read after a restart (a new boot) and still be
// trusted. A register has no real-time clock, so across a restart nothing
// measures the time it was off: the step is bounded by how long a till is
// plausibly switched off, a night, a weekend, a public holiday's closure,
// which is under a week. A store closed longer confirms the clock once
// (ConfirmClock). It is half the default keep window of confirmed events
// (DefaultKeepConfirmedFor), so a clock wrong by less than the step still
// keeps at least a week of them, and brings expiry forward by at most a
// week. The time since the new boot started is measured (the monotonic
// clock) and allowed on top: a register that ran for days before NTP
// answered is not a fault.
const DefaultClockRestartStep = 7 * 24 * time.Hour

// clockAnchor is the trusted-time high-water mark, kept in the meta
// bucket: the highest trusted wall time seen, the boot and monotonic time
// at which it was seen.
type clockAnchor struct {
	HWM  time.Time     `json:"hwm,omitzero"`
	Boot string        `json:"boot,omitempty"`
	Mono time.Duration `json:"mono"`
}

var kClock = []byte("clock")

// stamp is one reading of the clock, judged against the anchor.
type stamp struct {
	wall    time.Time
	flag    bool // the clock says it is synchronised
	boot    string
	mono    time.Duration
	fault   string
	trusted bool      // flag and no fault: the wall time can date things
	decide  time.Time // the time tier windows use: wall, or the anchor's estimate
}

// clockKeeper holds the anchor in memory (the committer moves it; status
// readers copy it).
type clockKeeper struct {
	mu      sync.Mutex
	a       clockAnchor
	tol     time.Duration // Options.ClockTolerance; set at Open
	restart time.Duration // Options.ClockRestartStep; set at Open
}

func (k *clockKeeper) anchor() clockAnchor {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.a
}

// readClock takes one reading of c. A clock.BootClock also gives the boot
// and monotonic time; without it only "behind" can be judged.
func readClock(c clock.Clock) stamp {
	var s stamp
	s.wall, s.flag = c.Now()
	if bc, ok := c.(clock.BootClock); ok {
		s.boot, s.mono = bc.Boot()
	}
	return s
}

// judge decides whether s is trustworthy against a: a wall clock behind
// the high-water mark, or (in the same boot) ahead of it by more than the
// monotonic time elapsed plus the tolerance, or (in a new boot, where
// nothing measured the time the register was off) ahead of it by more
// than the restart step plus the time since this boot started, is a fault. A clock that gives no boot cannot be
// judged ahead at all. It returns the anchor to keep when the reading is
// trusted.
func (k *clockKeeper) judge(a clockAnchor, s stamp) (stamp, clockAnchor) {
	tol := k.tol
	next := a
	sameBoot := a.Boot != "" && s.boot == a.Boot && s.mono >= a.Mono
	est := a.HWM
	if sameBoot {
		est = a.HWM.Add(s.mono - a.Mono)
	}
	switch {
	case !s.flag:
		s.decide = est
	case a.HWM.IsZero():
		s.trusted = true
	case s.wall.Before(a.HWM.Add(-tol)):
		s.fault, s.decide = FaultBehind, est
	case sameBoot && s.wall.After(est.Add(tol)):
		s.fault, s.decide = FaultAhead, est
	case !sameBoot && s.boot != "" && s.wall.After(a.HWM.Add(k.restart+max(s.mono, 0))):
		// a new boot: the time off is bounded by the restart step, the
		// time since this boot started is measured
		s.fault, s.decide = FaultAhead, est
	default:
		s.trusted = true
	}
	if s.trusted {
		s.decide = s.wall
		if s.wall.After(a.HWM) || s.boot != a.Boot {
			next = clockAnchor{HWM: maxTime(s.wall, a.HWM), Boot: s.boot, Mono: s.mono}
			if s.wall.Before(a.HWM) {
				// a new boot slightly behind the mark: anchor the
				// mark in this boot's monotonic time
				next.Mono = s.mono - a.HWM.Sub(s.wall)
			}
		}
	}
	return s, next
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ClockStatus is the ledger's view of the wall clock (status pages, the
// customer display).
type ClockStatus struct {
	// Trusted: the clock is synchronised and agrees with the high-water
	// mark; time-based decisions (expiry, tiers, bonuses) are made.
	Trusted bool `json:"trusted"`
	// Synced is what the clock itself says (NTP synchronised).
	Synced bool `json:"synced"`
	// Fault is FaultBehind or FaultAhead when a synchronised clock
	// disagrees with the high-water mark; expiry waits until a person
	// confirms the clock (ConfirmClock) or it agrees again.
	Fault string `json:"fault,omitempty"`
	// Wall is the clock's reading; HighWater the highest trusted time
	// seen; Estimate the time decisions use (Wall when trusted).
	Wall      time.Time `json:"wall"`
	HighWater time.Time `json:"high_water,omitzero"`
	Estimate  time.Time `json:"estimate,omitzero"`
	// Uncorrected counts events stamped by an untrusted clock whose time
	// has not been corrected yet (CorrectTimes).
	Uncorrected int `json:"uncorrected"`
}

// ClockStatus reads the clock and judges it against the high-water mark.
// It writes nothing.
func (l *Ledger) ClockStatus() (ClockStatus, error) {
	s, _ := l.ck.judge(l.ck.anchor(), readClock(l.clock))
	cs := ClockStatus{Trusted: s.trusted, Synced: s.flag, Fault: s.fault, Wall: s.wall, HighWater: l.ck.anchor().HWM, Estimate: s.decide}
	// Counted once at Open and kept by the committer as batches land:
	// a status page asks every second, and a register that ran offline
	// on a 1970 clock holds one row per event (walking them held the
	// committer up while sales were pending).
	if l.closed.Load() {
		return cs, fmt.Errorf("ledger clock status: %w", ErrClosed)
	}
	cs.Uncorrected = int(l.untimed.Load())
	return cs, nil
}

// ConfirmClock is a person confirming that the synchronised clock is
// right although it disagrees with the high-water mark (a technician set
// it, the store was closed longer than the register ran): the mark moves to
// the clock's reading, the fault ends and expiry runs again. It returns
// ErrClockUntrusted when the clock is not synchronised at all.
func (l *Ledger) ConfirmClock(ctx context.Context) (ClockStatus, error) {
	_, err := l.submit(ctx, func(w *wtx) (any, error) {
		if !w.st.flag {
			return nil, fmt.Errorf("ledger confirm clock: %w", ErrClockUntrusted)
		}
		w.anchor = clockAnchor{HWM: w.st.wall, Boot: w.st.boot, Mono: w.st.mono}
		w.anchorSet = true // written at commit
		return nil, nil
	})
	if err != nil {
		return ClockStatus{}, err
	}
	return l.ClockStatus()
}

// loadAnchor reads the stored high-water mark.
func loadAnchor(tx *bolt.Tx) (clockAnchor, error) {
	var a clockAnchor
	if v := tx.Bucket(bState).Get(kClock); v != nil {
		if err := json.Unmarshal(v, &a); err != nil {
			return a, fmt.Errorf("decode clock anchor: %w", err)
		}
	}
	return a, nil
}
