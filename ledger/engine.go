package ledger

import (
	"encoding/json"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Engine is what the ledger needs from a points engine. *rules.RuleSet is
// the production engine (wrap it with RuleSetEngine); tests and simulations
// may pass their own through Options.Engine.
type Engine interface {
	// RuleVersion is stored with every sale and point event.
	RuleVersion() int
	Evaluate(in rules.SaleInput) (rules.Outcome, error)
	Reward(id string) (rules.Reward, bool)
	// ExpiryFor is the expiry of points credited at earnedAt outside a
	// sale (adjustments); zero means never.
	ExpiryFor(earnedAt time.Time) time.Time
}

// RuleSetEngine adapts a rule set to Engine.
func RuleSetEngine(rs *rules.RuleSet) Engine { return ruleSetEngine{rs} }

type ruleSetEngine struct{ rs *rules.RuleSet }

func (e ruleSetEngine) RuleVersion() int { return e.rs.Version }
func (e ruleSetEngine) Evaluate(in rules.SaleInput) (rules.Outcome, error) {
	return e.rs.Evaluate(in)
}
func (e ruleSetEngine) Reward(id string) (rules.Reward, bool) { return e.rs.Reward(id) }

// TierFor lets the ledger recompute a member's tier outside a sale (after
// a time correction).
func (e ruleSetEngine) TierFor(spend12m int64, visits12m int) rules.Tier {
	return e.rs.TierFor(spend12m, visits12m)
}

// ExpiryFor uses the rule set's ExpiryFor when it has one (the rules
// package grows it); otherwise points credited outside a sale never expire.
func (e ruleSetEngine) ExpiryFor(at time.Time) time.Time {
	if x, ok := any(e.rs).(interface{ ExpiryFor(time.Time) time.Time }); ok {
		return x.ExpiryFor(at)
	}
	return time.Time{}
}

// noRules is the engine of a ledger without any rule set: sales earn
// nothing and no reward exists.
type noRules struct{}

func (noRules) RuleVersion() int { return 0 }
func (noRules) Evaluate(in rules.SaleInput) (rules.Outcome, error) {
	return rules.Outcome{Tier: in.Member.Tier}, nil
}
func (noRules) Reward(string) (rules.Reward, bool) { return rules.Reward{}, false }
func (noRules) ExpiryFor(time.Time) time.Time      { return time.Time{} }

func jsonMarshal(v any) ([]byte, error)   { return json.Marshal(v) }
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
