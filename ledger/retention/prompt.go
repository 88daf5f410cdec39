package retention

import (
	"fmt"
	"time"
)

// MemberSummary is what head office knows about a member and sends to the
// registers: its chain-wide status (from every register's purchases).
type MemberSummary struct {
	Status       Status  `json:"status"`
	Segment      Segment `json:"segment"`
	PurchaseDays int     `json:"purchase_days"`
	LastPurchase string  `json:"last_purchase,omitempty"` // YYYY-MM-DD
	MeanInterval float64 `json:"mean_interval_days,omitempty"`
	Offer        string  `json:"offer,omitempty"` // what to offer when due or sleeping
}

// PromptInput is what the register knows when a member is scanned.
type PromptInput struct {
	Member Member // with the local purchase history (before this visit)
	// Summary is head office's view; nil when the register has none (then
	// the local history decides).
	Summary *MemberSummary
	// Balance and NextReward are the member's points and the points price
	// of the next reward (0 = no reward configured).
	Balance, NextReward int64
	AsOf                time.Time
}

// PromptOptions tunes Prompt. A nil *PromptOptions means defaults.
type PromptOptions struct {
	Location      *time.Location // default UTC
	SleepOffer    string         // default "offer the welcome-back reward"
	DueOffer      string         // default "remind them of their usual"
	NearRewardPct int            // within this % of the next reward; default 10
}

// Prompt chooses the one short prompt a cashier should see for this
// member now, or "" when nothing matters. Priority: birthday this week,
// first return visit, sleeping (with the offer), due, close to the next
// reward. Head office's summary decides status when present; otherwise the
// member's own local rhythm does (sleeping = absent more than three of
// their own intervals, the rule that needs no model).
func Prompt(in PromptInput, opts *PromptOptions) string {
	o := PromptOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.SleepOffer == "" {
		o.SleepOffer = "offer the welcome-back reward"
	}
	if o.DueOffer == "" {
		o.DueOffer = "remind them of their usual"
	}
	if o.NearRewardPct == 0 {
		o.NearRewardPct = 10
	}
	today := DayOf(in.AsOf, o.Location)
	if mo, dd, ok := birthdayMonthDay(in.Member.Birthday); ok {
		if next, ok := nextBirthday(today, mo, dd); ok && next-today <= 6 {
			if next == today {
				return "Birthday today: give the birthday reward"
			}
			return "Birthday this week: give the birthday reward"
		}
	}
	// Local history up to yesterday: today's purchase is the visit itself.
	h, _ := Clean(in.Member, (today - 1).Time(), &Config{Location: o.Location})
	r := RhythmOf(h.Days)
	status, days := Status(""), r.PurchaseDays
	var interval float64
	var last Day = r.Last
	if s := in.Summary; s != nil {
		status, interval = s.Status, s.MeanInterval
		days = max(days, s.PurchaseDays)
		if t, err := time.Parse("2006-01-02", s.LastPurchase); err == nil {
			last = max(last, DayOf(t, time.UTC))
		}
	}
	if days == 1 {
		return "First return visit: give the welcome-back reward"
	}
	if status == "" && r.HasInterval {
		interval = r.MeanInterval
		since := float64(today - last)
		switch {
		case since > 3*interval:
			status = StatusSleeping
		case since >= interval:
			status = StatusDue
		}
	}
	offer := func(def string) string {
		if in.Summary != nil && in.Summary.Offer != "" {
			return in.Summary.Offer
		}
		return def
	}
	switch status {
	case StatusSleeping, StatusLost:
		return fmt.Sprintf("Welcome back after %d days: %s", today-last, offer(o.SleepOffer))
	case StatusDue:
		return fmt.Sprintf("Due (usually every %.0f days): %s", interval, offer(o.DueOffer))
	}
	if in.NextReward > 0 && in.Balance < in.NextReward && (in.NextReward-in.Balance)*100 <= int64(o.NearRewardPct)*in.NextReward {
		return fmt.Sprintf("%d points to the next reward", in.NextReward-in.Balance)
	}
	return ""
}

// Summary is the member summary head office sends to registers for Prompt:
// the chain-wide status and rhythm from this analysis. Offer is left for
// head office's campaign settings to fill.
func (p *Profile) Summary() MemberSummary {
	return MemberSummary{Status: p.Status, Segment: p.Segment, PurchaseDays: p.Rhythm.PurchaseDays,
		LastPurchase: p.Rhythm.LastDate(), MeanInterval: p.Rhythm.MeanInterval}
}
