package daemon

import (
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// nextTierFunc tells how far a member is from the next tier, from their
// rolling 12-month spend and visits at this register. The window is a
// time-based decision, so nothing is said while the clock is untrusted or
// in a fault (the daemon passes the ledger's verdict, verdictClock).
func nextTierFunc(l *ledger.Ledger, clk clock.Clock, rs *rules.RuleSet) func(ledger.Member) (checkout.TierGoal, bool) {
	return func(m ledger.Member) (checkout.TierGoal, bool) {
		if rs == nil || len(rs.Tiers) < 2 {
			return checkout.TierGoal{}, false
		}
		now, trusted := clk.Now()
		if !trusted {
			return checkout.TierGoal{}, false
		}
		ps, err := l.Purchases(m.ID)
		if err != nil {
			return checkout.TierGoal{}, false
		}
		from := now.AddDate(-1, 0, 0)
		var spend int64
		visits := map[string]bool{}
		for _, p := range ps {
			// the ledger's window: corrected times; an uncorrected
			// untrusted purchase counts (it came after the trusted ones)
			if at, ok := p.When(); ok && (at.Before(from) || at.After(now)) {
				continue
			}
			spend += int64(p.Amount)
			if p.Amount > 0 {
				visits[p.SaleID] = true
			}
		}
		cur := rs.TierFor(spend, len(visits))
		for i, t := range rs.Tiers {
			if t.Name != cur.Name || i+1 >= len(rs.Tiers) {
				continue
			}
			next := rs.Tiers[i+1]
			g := checkout.TierGoal{Name: next.Name}
			if next.MinSpend > 0 {
				g.Spend = ledger.Money(max(next.MinSpend-spend, 0))
			}
			if next.MinVisits > 0 {
				g.Visits = max(next.MinVisits-len(visits), 0)
			}
			return g, true
		}
		return checkout.TierGoal{}, false
	}
}
