package hqstore

import (
	"encoding/json"
	"fmt"
)

// ReviewCounter checks a register's review bookkeeping against its review
// records, for every backend's Check: feed it each review record of the
// register (any incarnation, any order), then call Err.
type ReviewCounter struct {
	rs        RegisterState
	open      uint64 // records not dismissed
	lowReused uint64 // lowest reused record of the bound incarnation not dismissed
	bad       error
	heldMin   uint64 // lowest held beyond the gap (0: none; held numbers are above the watermark, so at least 1)
}

// NewReviewCounter starts a check of rs.
func NewReviewCounter(rs RegisterState) *ReviewCounter { return &ReviewCounter{rs: rs} }

// Add takes one review record of the register.
func (c *ReviewCounter) Add(inc string, seq uint64, rec []byte) {
	var r heldRec
	if err := json.Unmarshal(rec, &r); err != nil {
		if c.bad == nil {
			c.bad = fmt.Errorf("check: register %s: review record %s/%d: %w", c.rs.Register, inc, seq, err)
		}
		return
	}
	if r.Dismissed {
		return
	}
	c.open++
	if r.Reason == ReviewReused && inc == c.rs.Incarnation && (c.lowReused == 0 || seq < c.lowReused) {
		c.lowReused = seq
	}
}

// Held takes the register's lowest event held beyond the gap (call it
// only when one is held).
func (c *ReviewCounter) Held(lowest uint64) { c.heldMin = lowest }

// Err says what does not add up: Review must count the records not
// dismissed; ReusedFrom, when set, must be the lowest reused record of
// the incarnation head office follows that is not dismissed (the acks
// stay below it); HeldFrom, when set, the lowest held event. A store
// written before ReusedFrom or HeldFrom were kept may have 0 there.
func (c *ReviewCounter) Err() error {
	rs := c.rs
	switch {
	case c.bad != nil:
		return c.bad
	case c.open != rs.Review:
		return fmt.Errorf("check: register %s: %d events held for review, state says %d", rs.Register, c.open, rs.Review)
	case rs.ReusedFrom != 0 && rs.ReusedFrom != c.lowReused:
		return fmt.Errorf("check: register %s: acks held below %d (reused_from), the first reused event held for review is %d",
			rs.Register, rs.ReusedFrom, c.lowReused)
	case rs.HeldFrom != 0 && rs.HeldFrom != c.heldMin:
		return fmt.Errorf("check: register %s: held_from %d, the lowest event held beyond the gap is %d", rs.Register, rs.HeldFrom, c.heldMin)
	}
	return nil
}
