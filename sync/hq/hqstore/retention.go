package hqstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
)

// yearDays is the "12 months" of Spend12m and Visits12m: the purchase days
// in the 365 days up to and including today.
const yearDays = 365

// memberFigures computes a member's head-office figures as of now from
// the member's chain-wide purchases: net spend and purchase days over the
// last 365 days, and the retention view (nil when no purchase counts).
//
// The rule, per member and with calendar days in UTC: purchases are netted
// against their refunds and folded into purchase days (retention.Clean);
// the rhythm is retention.RhythmOf those days, and Status is
// retention.RhythmStatus of the days since the last purchase day and the
// mean interval (sleeping past three own intervals, due from one, else
// active). A member's own rhythm is cheap to compute for every changed
// member; the fitted BG/NBD model stays with the reports. Segment is "new",
// "second" or "regular" by purchase days; "vip" needs the whole population
// and is left to the reports. Offer is left empty for campaign settings.
func memberFigures(tx Txn, id string, now time.Time) (ledger.Money, int, *retention.MemberSummary, error) {
	recs, err := tx.MemberPurchases(id)
	if err != nil {
		return 0, 0, nil, err
	}
	var ps []retention.Purchase
	for _, v := range recs {
		var p ledger.Purchase
		if err := json.Unmarshal(v, &p); err != nil {
			return 0, 0, nil, fmt.Errorf("member %q purchase: %w", id, err)
		}
		ps = append(ps, source.Purchase(p))
	}
	if len(ps) == 0 {
		return 0, 0, nil, nil
	}
	// As in the reports (source.Collect): purchases of an uncorrected
	// untrusted clock, dated after now or before a trusted enrolment are
	// left out by Clean, corrected ones count at their corrected time.
	var enrolled time.Time
	if row, ok, err := tx.Member(id); err != nil {
		return 0, 0, nil, err
	} else if ok {
		p, err := recOf(row).profile()
		if err != nil {
			return 0, 0, nil, err
		}
		enrolled = source.Enrolled(*p)
	}
	h, _ := retention.Clean(retention.Member{ID: id, EnrolledAt: enrolled, Purchases: ps}, now, nil)
	if len(h.Days) == 0 {
		return 0, 0, nil, nil
	}
	today := retention.DayOf(now, time.UTC)
	var spend ledger.Money
	var visits int
	for i, d := range h.Days {
		if d > today-yearDays {
			spend += ledger.Money(h.Spend[i])
			visits++
		}
	}
	r := retention.RhythmOf(h.Days)
	sum := &retention.MemberSummary{Status: retention.StatusActive, PurchaseDays: r.PurchaseDays,
		LastPurchase: r.LastDate(), MeanInterval: r.MeanInterval}
	switch {
	case r.PurchaseDays == 1:
		sum.Segment = retention.SegNew
	case r.PurchaseDays == 2:
		sum.Segment = retention.SegSecond
	default:
		sum.Segment = retention.SegRegular
	}
	if r.HasInterval {
		sum.Status = retention.RhythmStatus(int(today-r.Last), r.MeanInterval)
	}
	return spend, visits, sum, nil
}
