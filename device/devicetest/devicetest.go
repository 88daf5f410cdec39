package devicetest

import (
	"context"
	"sync"
	"time"

	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/device/display"
)

// Display records what was shown. Set Err to make every call fail (an
// unplugged display).
type Display struct {
	mu      sync.Mutex
	shown   [][2]string
	level   int
	cleared int
	Err     error
}

var _ display.Display = (*Display)(nil)

// Show records lines.
func (d *Display) Show(ctx context.Context, lines [2]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return d.Err
	}
	d.shown = append(d.shown, lines)
	return ctx.Err()
}

// Clear records a clear.
func (d *Display) Clear(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return d.Err
	}
	d.cleared++
	return nil
}

// Brightness records the level (checking the 1-4 range like real ones).
func (d *Display) Brightness(_ context.Context, level int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return d.Err
	}
	if level < 1 || level > 4 {
		return display.ErrBrightness
	}
	d.level = level
	return nil
}

// Shown returns every Show call's lines in order.
func (d *Display) Shown() [][2]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][2]string(nil), d.shown...)
}

// Last returns the lines currently shown (empty after Clear).
func (d *Display) Last() [2]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.shown) == 0 {
		return [2]string{}
	}
	return d.shown[len(d.shown)-1]
}

// Clock is a manual clock, always trusted.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

var _ clock.Clock = (*Clock)(nil)

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the current fake time, trusted.
func (c *Clock) Now() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t, true
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
