package retention

import (
	"fmt"
	"time"
)

// SleepKind names a way of deciding that a member is sleeping.
type SleepKind string

// Sleeping rules. The evaluation on CDNOW (docs/retention-eval.md) scores
// each; DefaultSleepRule is the one it supports.
const (
	// SleepIntervals: absent for more than Intervals times the member's
	// own mean interval (the source documents' "about three periods").
	// Members with one purchase day use the population's median interval.
	SleepIntervals SleepKind = "intervals"
	// SleepFixed: absent for more than FixedDays (Square uses 6 weeks).
	SleepFixed SleepKind = "fixed"
	// SleepPAlive: BG/NBD probability of being active below Threshold.
	SleepPAlive SleepKind = "palive"
	// SleepPNone: BG/NBD probability of no purchase in the next WindowDays
	// above Threshold; with Intervals set, also every member with an own
	// interval who is absent more than Intervals of them.
	SleepPNone SleepKind = "pnone"
)

// SleepRule configures the sleeping flag. Zero fields take the defaults of
// DefaultSleepRule for the same kind.
type SleepRule struct {
	Kind       SleepKind `json:"kind"`
	Intervals  float64   `json:"intervals,omitempty"`
	FixedDays  int       `json:"fixed_days,omitempty"`
	Threshold  float64   `json:"threshold,omitempty"`
	WindowDays int       `json:"window_days,omitempty"`
}

// DefaultSleepRule is the product default: BG/NBD's probability of no
// purchase in the next 39 weeks above one half (the CDNOW evaluation's
// best F1, docs/retention-eval.md), or, for a member with an own interval,
// absence of more than three of them (the source documents' rule). The
// model is poor at very regular buyers (a weekly shopper absent five
// weeks is still "probably active" under its Poisson purchases); the
// interval part catches them, and it is the same rule the register and
// the fallback apply, so the sleeping set does not jump when the model
// cannot be used. When no model can be fitted, or the fit is degenerate,
// Analyze falls back to FallbackSleepRule and says so.
var DefaultSleepRule = SleepRule{Kind: SleepPNone, Threshold: 0.5, WindowDays: 273, Intervals: 3}

// FallbackSleepRule is used when the default needs a model and none fits.
var FallbackSleepRule = SleepRule{Kind: SleepIntervals, Intervals: 3}

func (r SleepRule) withDefaults() SleepRule {
	if r.Kind == "" {
		return DefaultSleepRule
	}
	switch r.Kind {
	case SleepIntervals:
		if r.Intervals == 0 {
			r.Intervals = 3
		}
	case SleepFixed:
		if r.FixedDays == 0 {
			r.FixedDays = 42
		}
	case SleepPAlive:
		if r.Threshold == 0 {
			r.Threshold = 0.5
		}
	case SleepPNone:
		if r.Threshold == 0 {
			r.Threshold = 0.5
		}
		if r.WindowDays == 0 {
			r.WindowDays = 273
		}
	}
	return r
}

// Validate reports a rule that cannot be applied.
func (r SleepRule) Validate() error {
	r = r.withDefaults()
	switch r.Kind {
	case SleepIntervals:
		if !(r.Intervals > 0) {
			return fmt.Errorf("%w: sleeping intervals %g must be positive", ErrInvalid, r.Intervals)
		}
	case SleepFixed:
		if r.FixedDays < 1 {
			return fmt.Errorf("%w: sleeping fixed days %d must be positive", ErrInvalid, r.FixedDays)
		}
	case SleepPAlive, SleepPNone:
		if !(r.Threshold > 0 && r.Threshold < 1) {
			return fmt.Errorf("%w: sleeping threshold %g must be in (0,1)", ErrInvalid, r.Threshold)
		}
		if r.WindowDays < 0 {
			return fmt.Errorf("%w: sleeping window %d days", ErrInvalid, r.WindowDays)
		}
		if r.Intervals < 0 || r.Kind == SleepPAlive && r.Intervals != 0 {
			return fmt.Errorf("%w: sleeping intervals %g with %s", ErrInvalid, r.Intervals, r.Kind)
		}
	default:
		return fmt.Errorf("%w: unknown sleeping rule %q", ErrInvalid, r.Kind)
	}
	return nil
}

// String describes the rule for reports.
func (r SleepRule) String() string {
	r = r.withDefaults()
	switch r.Kind {
	case SleepIntervals:
		return fmt.Sprintf("absent > %g x own mean interval", r.Intervals)
	case SleepFixed:
		return fmt.Sprintf("absent > %d days", r.FixedDays)
	case SleepPAlive:
		return fmt.Sprintf("BG/NBD P(active) < %g", r.Threshold)
	case SleepPNone:
		if r.Intervals > 0 {
			return fmt.Sprintf("BG/NBD P(no purchase in %d days) > %g, or absent > %g x own mean interval", r.WindowDays, r.Threshold, r.Intervals)
		}
		return fmt.Sprintf("BG/NBD P(no purchase in %d days) > %g", r.WindowDays, r.Threshold)
	}
	return string(r.Kind)
}

// Config tunes an analysis. A nil *Config means defaults.
type Config struct {
	// Location is the store's time zone for calendar days; default UTC.
	Location *time.Location
	// KeepZeroAmount counts 0.00 sales as purchases (free orders, as in
	// CDNOW); by default they are excluded and counted.
	KeepZeroAmount bool
	// VIPShare is the share of buyers, by spend, that are high-value (VIPs
	// when they bought on two or more days); default 0.1.
	VIPShare float64
	// DueOffsetDays moves the "due" point relative to the member's own mean
	// interval: negative contacts before it, positive after; default 0.
	DueOffsetDays int
	// Sleeping is the sleeping rule; zero means DefaultSleepRule.
	Sleeping SleepRule
	// LostIntervals and LostMinDays: a member absent for more than
	// LostIntervals own mean intervals and at least LostMinDays is lost;
	// defaults 6 and 180.
	LostIntervals float64
	LostMinDays   int
	// TopShare is the share of buyers whose revenue share the metrics
	// report (concentration risk); default 0.2.
	TopShare float64
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Location == nil {
		out.Location = time.UTC
	}
	if out.VIPShare == 0 {
		out.VIPShare = 0.1
	}
	out.Sleeping = out.Sleeping.withDefaults()
	if out.LostIntervals == 0 {
		out.LostIntervals = 6
	}
	if out.LostMinDays == 0 {
		out.LostMinDays = 180
	}
	if out.TopShare == 0 {
		out.TopShare = 0.2
	}
	return out
}

// Validate reports every unusable setting.
func (c *Config) Validate() error {
	d := c.withDefaults()
	if !(d.VIPShare > 0 && d.VIPShare <= 1) {
		return fmt.Errorf("%w: vip share %g must be in (0,1]", ErrInvalid, d.VIPShare)
	}
	if !(d.TopShare > 0 && d.TopShare <= 1) {
		return fmt.Errorf("%w: top share %g must be in (0,1]", ErrInvalid, d.TopShare)
	}
	if d.LostIntervals < 0 || d.LostMinDays < 0 {
		return fmt.Errorf("%w: lost thresholds must not be negative", ErrInvalid)
	}
	return d.Sleeping.Validate()
}
