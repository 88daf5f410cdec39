package daemon

import (
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// tierSource is what the tier goal reads from the ledger: the rule set in
// force (head office's latest, or the local config's) and the same rolling
// 12-month window earning uses.
type tierSource interface {
	Rules() *rules.RuleSet
	TierWindow(memberID string) (spend ledger.Money, visits int, ok bool, err error)
}

// nextTierFunc tells how far a member is from the next tier. It follows
// the rule set in force, so a head-office update changes the goal shown at
// once, and says nothing while the ledger cannot place the window (the
// clock is untrusted).
func nextTierFunc(l tierSource) func(ledger.Member) (checkout.TierGoal, bool) {
	return func(m ledger.Member) (checkout.TierGoal, bool) {
		rs := l.Rules()
		if rs == nil || len(rs.Tiers) < 2 {
			return checkout.TierGoal{}, false
		}
		spend, visits, ok, err := l.TierWindow(m.ID)
		if err != nil || !ok {
			return checkout.TierGoal{}, false
		}
		cur := rs.TierFor(int64(spend), visits)
		for i, t := range rs.Tiers {
			if t.Name != cur.Name || i+1 >= len(rs.Tiers) {
				continue
			}
			next := rs.Tiers[i+1]
			g := checkout.TierGoal{Name: next.Name}
			if next.MinSpend > 0 {
				g.Spend = ledger.Money(max(next.MinSpend-int64(spend), 0))
			}
			if next.MinVisits > 0 {
				g.Visits = max(next.MinVisits-visits, 0)
			}
			return g, true
		}
		return checkout.TierGoal{}, false
	}
}
