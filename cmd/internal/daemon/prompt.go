package daemon

import (
	"log/slog"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// promptFunc returns the cashier prompt for a scanned member, from the
// member's local purchase history (retention.Prompt). Birthday, first
// return visit, due and sleeping are time-based: while the clock is not
// trusted only "close to the next reward" can be said.
func promptFunc(l *ledger.Ledger, clock interface{ Now() (time.Time, bool) }, rewards []rules.Reward, loc *time.Location, log *slog.Logger) checkout.PromptFunc {
	return func(m ledger.Member, bal ledger.Points) string {
		var next int64
		for _, r := range rewards {
			if r.Points > int64(bal) && (next == 0 || r.Points < next) {
				next = r.Points
			}
		}
		now, trusted := clock.Now()
		in := retention.PromptInput{Member: retention.Member{ID: m.ID}, Balance: int64(bal), NextReward: next, AsOf: now}
		if trusted {
			ps, err := l.Purchases(m.ID)
			if err != nil {
				log.Warn("purchase history unavailable for the prompt", "member", m.ID, "err", err)
			}
			in.Member = retention.Member{ID: m.ID, Consent: m.Consent.Given, Birthday: m.Birthday, EnrolledAt: m.EnrolledAt}
			for _, p := range ps {
				in.Member.Purchases = append(in.Member.Purchases, retention.Purchase{SaleID: p.SaleID, Seq: p.Seq, At: p.WallTime,
					ClockTrusted: p.ClockTrusted, Amount: retention.Money(p.Amount), Categories: p.Categories})
			}
		}
		return retention.Prompt(in, &retention.PromptOptions{Location: loc})
	}
}
