package device

import (
	"errors"
	"maps"
	"sync"
)

// HealthCounter keeps one device's Health while the device runs: the
// device's loop counts into it, Health reads a snapshot from any
// goroutine.
type HealthCounter struct {
	mu     sync.Mutex
	h      Health
	opened bool
}

// NewHealthCounter starts a device's health in StateStarting.
func NewHealthCounter(name, path string) *HealthCounter {
	return &HealthCounter{h: Health{Name: name, Path: path, State: StateStarting,
		Rejects: map[string]int64{}, Faults: map[string]int64{}}}
}

// Health returns a snapshot (its maps are copies).
func (c *HealthCounter) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.h
	h.Rejects = maps.Clone(c.h.Rejects)
	h.Faults = maps.Clone(c.h.Faults)
	return h
}

// SetState sets the state.
func (c *HealthCounter) SetState(s State) {
	c.mu.Lock()
	c.h.State = s
	c.mu.Unlock()
}

// Fault records a device-level failure: the state (StateBusy instead when
// err is ErrDeviceBusy: another process holds the port), err as LastError,
// and one more fault under err's ReasonLabel.
func (c *HealthCounter) Fault(s State, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(err, ErrDeviceBusy) {
		s = StateBusy
	}
	c.h.State = s
	c.h.LastError = err.Error()
	c.h.Faults[ReasonLabel(err)]++
}

// Opened records that the device was opened and is healthy: every open
// after the first counts as a reopen, and LastError is cleared (the fault
// stays counted in Faults).
func (c *HealthCounter) Opened() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opened {
		c.h.Reopens++
	}
	c.opened = true
	c.h.State = StateHealthy
	c.h.LastError = ""
}

// Count counts one input: a reject under its ReasonLabel, anything else as
// an accepted frame.
func (c *HealthCounter) Count(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Kind == KindReject {
		c.h.Rejects[ReasonLabel(ev.Reason)]++
	} else {
		c.h.Frames++
	}
}
