package ledgertest

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Clock is a clock.BootClock the test sets by hand. Set and Advance move
// the wall and the monotonic clock together (time passes); Step moves
// only the wall clock (a clock jumping or stepping back); Reboot starts a
// new boot.
type Clock struct {
	mu      sync.Mutex
	t       time.Time
	trusted bool
	boot    string
	mono    time.Duration
}

var _ clock.BootClock = (*Clock)(nil)

// NewClock returns a clock standing at t, in boot "boot-1".
func NewClock(t time.Time, trusted bool) *Clock {
	return &Clock{t: t, trusted: trusted, boot: "boot-1", mono: time.Minute}
}

// Now implements clock.Clock.
func (c *Clock) Now() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t, c.trusted
}

// Boot implements clock.BootClock.
func (c *Clock) Boot() (string, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.boot, c.mono
}

// Set moves the clock to t; time passes (the monotonic clock moves by
// as much, when t is later).
func (c *Clock) Set(t time.Time, trusted bool) {
	c.mu.Lock()
	if d := t.Sub(c.t); d > 0 {
		c.mono += d
	}
	c.t, c.trusted = t, trusted
	c.mu.Unlock()
}

// Step moves only the wall clock to t: no time passes.
func (c *Clock) Step(t time.Time, trusted bool) {
	c.mu.Lock()
	c.t, c.trusted = t, trusted
	c.mu.Unlock()
}

// Reboot starts boot id with the wall clock at t and the monotonic clock
// at zero.
func (c *Clock) Reboot(id string, t time.Time, trusted bool) {
	c.mu.Lock()
	c.boot, c.mono, c.t, c.trusted = id, 0, t, trusted
	c.mu.Unlock()
}

// Advance moves the clock forward by d (wall and monotonic).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	if d > 0 {
		c.mono += d
	}
	c.mu.Unlock()
}

// Engine is a small deterministic points engine: every line earns
// floor(amount/PerPoint) points, a member's first purchase adds
// FirstBonus, and points expire ExpiryMonths after they are earned
// (0: never).
type Engine struct {
	Version      int
	PerPoint     int64 // minor units per point; default 100
	FirstBonus   int64
	ExpiryMonths int
	Rewards      []rules.Reward
}

var _ ledger.Engine = (*Engine)(nil)

// RuleVersion implements ledger.Engine.
func (e *Engine) RuleVersion() int { return e.Version }

// Evaluate implements ledger.Engine.
func (e *Engine) Evaluate(in rules.SaleInput) (rules.Outcome, error) {
	per := e.PerPoint
	if per <= 0 {
		per = 100
	}
	out := rules.Outcome{Tier: in.Member.Tier, ExpiresAt: e.ExpiryFor(in.At)}
	for _, ln := range in.Lines {
		out.Lines = append(out.Lines, rules.LinePoints{No: ln.No, Points: ln.Amount / per})
	}
	if e.FirstBonus > 0 && in.Member.Purchases == 0 {
		out.Bonuses = append(out.Bonuses, rules.Bonus{Kind: "first-purchase", Points: e.FirstBonus})
	}
	return out, nil
}

// Reward implements ledger.Engine.
func (e *Engine) Reward(id string) (rules.Reward, bool) {
	for _, r := range e.Rewards {
		if r.ID == id {
			return r, true
		}
	}
	return rules.Reward{}, false
}

// ExpiryFor implements ledger.Engine.
func (e *Engine) ExpiryFor(at time.Time) time.Time {
	if e.ExpiryMonths == 0 {
		return time.Time{}
	}
	return at.AddDate(0, e.ExpiryMonths, 0)
}

// Open opens a ledger in a fresh temporary directory with opts (Register
// defaults to "r1") and, when the test ends, runs Check and closes it.
func Open(t testing.TB, opts *ledger.Options) *ledger.Ledger {
	t.Helper()
	return OpenAt(t, filepath.Join(t.TempDir(), "ledger.db"), opts)
}

// OpenAt is Open on a given path.
func OpenAt(t testing.TB, path string, opts *ledger.Options) *ledger.Ledger {
	t.Helper()
	var o ledger.Options
	if opts != nil {
		o = *opts
	}
	if o.Register == "" {
		o.Register = "r1"
	}
	l, err := ledger.Open(path, &o)
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Check(); err != nil && !errors.Is(err, ledger.ErrClosed) {
			t.Errorf("ledger check at test end: %v", err)
		}
		_ = l.Close()
	})
	return l
}
