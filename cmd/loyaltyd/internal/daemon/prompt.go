package daemon

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// promptFunc returns the cashier prompt for a scanned member
// (retention.Prompt): from head office's retention view in the member's
// summary when the register holds one, and from the member's local
// purchase history when it does not. Birthday, first return visit, due
// and sleeping are time-based: while the clock is not trusted only "close
// to the next reward" can be said. clk is the ledger's verdict
// (verdictClock, as the daemon wires it): a synchronised clock in a fault
// is not trusted (TestPromptDuringClockFault). The rewards are those of the rule set
// in force in the ledger at the moment of the prompt, so a head-office
// update is followed at once.
func promptFunc(l *ledger.Ledger, clk clock.Clock, loc *time.Location, log *slog.Logger) checkout.PromptFunc {
	return func(m ledger.Member, bal ledger.Points) string {
		var next int64
		var rewards []rules.Reward
		if rs := l.Rules(); rs != nil {
			rewards = rs.Rewards
		}
		for _, r := range rewards {
			if r.Points > int64(bal) && (next == 0 || r.Points < next) {
				next = r.Points
			}
		}
		now, trusted := clk.Now()
		in := retention.PromptInput{Member: retention.Member{ID: m.ID}, Balance: int64(bal), NextReward: next, AsOf: now}
		if trusted {
			ps, err := l.Purchases(m.ID)
			if err != nil {
				log.Warn("purchase history unavailable for the prompt", "member", m.ID, "err", err)
			}
			in.Member = retention.Member{ID: m.ID, Consent: m.Consent.Given, Birthday: m.Birthday, EnrolledAt: source.Enrolled(m)}
			for _, p := range ps {
				// dated by the corrected time; an uncorrected untrusted
				// one is left out (source.Purchase)
				in.Member.Purchases = append(in.Member.Purchases, source.Purchase(p))
			}
			in.Summary = headOfficeView(l, in.Member, now, loc, log)
		}
		return retention.Prompt(in, &retention.PromptOptions{Location: loc})
	}
}

// headOfficeView is head office's retention view of the member from the
// summary the register holds, re-judged today, or nil. Head office sends
// a new summary only when the member's events change it, so a member who
// stays away keeps the status of the day it was computed: the status is
// recomputed from head office's rhythm (retention.RetentionAsOf), with the
// last purchase day moved to a later local one not yet in head office's
// view (a register offline since).
func headOfficeView(l *ledger.Ledger, local retention.Member, now time.Time, loc *time.Location, log *slog.Logger) *retention.MemberSummary {
	sum, ok, err := l.MemberSummary(local.ID)
	if err != nil {
		log.Warn("head office summary unavailable for the prompt; local history decides", "member", local.ID, "err", err)
		return nil
	}
	if !ok || len(sum.Retention) == 0 {
		return nil
	}
	var r retention.MemberSummary
	if err := json.Unmarshal(sum.Retention, &r); err != nil {
		log.Warn("head office retention view unreadable; local history decides", "member", local.ID, "err", err)
		return nil
	}
	// As retention.Prompt: local history up to yesterday (today's purchase
	// is the visit itself).
	yesterday := retention.DayOf(now, loc) - 1
	h, _ := retention.Clean(local, yesterday.Time(), &retention.Config{Location: loc})
	if lr := retention.RhythmOf(h.Days); lr.PurchaseDays > 0 && lr.LastDate() > r.LastPurchase {
		r.LastPurchase = lr.LastDate()
	}
	r = retention.RetentionAsOf(r, now)
	return &r
}
