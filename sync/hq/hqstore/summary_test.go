package hqstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// TestSummaryRetentionFigures checks the twelve-month figures and the
// rhythm-rule retention view head office puts in member summaries.
func TestSummaryRetentionFigures(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return now.AddDate(0, 0, d) }
	type buy struct {
		at     int          // day offset from now
		amount ledger.Money // the sale
		refund ledger.Money // refunded later (0: none)
	}
	tests := []struct {
		name      string
		buys      []buy
		spend     ledger.Money
		visits    int
		retention *retention.MemberSummary // nil: none
	}{
		{"due", []buy{{-130, 1000, 0}, {-100, 1000, 0}, {-70, 1000, 0}, {-40, 1000, 200}}, 3800, 4,
			&retention.MemberSummary{Status: retention.StatusDue, Segment: retention.SegRegular, PurchaseDays: 4, LastPurchase: day(-40).Format(time.DateOnly), MeanInterval: 30}},
		{"active within own interval", []buy{{-60, 500, 0}, {-30, 500, 0}, {-10, 500, 0}}, 1500, 3,
			&retention.MemberSummary{Status: retention.StatusActive, Segment: retention.SegRegular, PurchaseDays: 3, LastPurchase: day(-10).Format(time.DateOnly), MeanInterval: 25}},
		{"sleeping past three intervals", []buy{{-200, 700, 0}, {-190, 300, 0}}, 1000, 2,
			&retention.MemberSummary{Status: retention.StatusSleeping, Segment: retention.SegSecond, PurchaseDays: 2, LastPurchase: day(-190).Format(time.DateOnly), MeanInterval: 10}},
		{"one visit is new and active", []buy{{-5, 900, 0}}, 900, 1,
			&retention.MemberSummary{Status: retention.StatusActive, Segment: retention.SegNew, PurchaseDays: 1, LastPurchase: day(-5).Format(time.DateOnly)}},
		{"older than a year counts in the rhythm only", []buy{{-500, 100, 0}, {-400, 100, 0}}, 0, 0,
			&retention.MemberSummary{Status: retention.StatusSleeping, Segment: retention.SegSecond, PurchaseDays: 2, LastPurchase: day(-400).Format(time.DateOnly), MeanInterval: 100}},
		{"fully refunded is no purchase", []buy{{-10, 800, 800}}, 0, 0, nil},
		{"dated in the future is left out", []buy{{-20, 400, 0}, {3, 400, 0}}, 400, 1,
			&retention.MemberSummary{Status: retention.StatusActive, Segment: retention.SegNew, PurchaseDays: 1, LastPurchase: day(-20).Format(time.DateOnly)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t, &hqstore.Options{Clock: ledgertest.NewClock(now, true)})
			var evs []hqstore.Event
			seq := uint64(0)
			for i, b := range tc.buys {
				id := fmt.Sprintf("a-r1-s%d", i)
				seq++
				evs = append(evs, ev("a-r1", seq, ledger.OutSale, ledger.Sale{ID: id, Register: "a-r1", MemberID: "m1", Total: b.amount, WallTime: day(b.at), ClockTrusted: true}))
				if b.refund != 0 {
					seq++
					evs = append(evs, ev("a-r1", seq, ledger.OutRefund, map[string]any{"id": "rf" + id, "sale_id": id, "amount": b.refund}))
				}
			}
			seq++
			evs = append(evs, earn("a-r1", seq, "m1", 10)) // the member exists for head office
			apply(t, s, evs...)
			sum, err := s.Summary("m1")
			if err != nil {
				t.Fatal(err)
			}
			if sum.Spend12m != tc.spend || sum.Visits12m != tc.visits {
				t.Fatalf("spend %d visits %d, want %d and %d", sum.Spend12m, sum.Visits12m, tc.spend, tc.visits)
			}
			switch {
			case tc.retention == nil && sum.Retention != nil:
				t.Fatalf("retention %+v, want none", *sum.Retention)
			case tc.retention != nil && (sum.Retention == nil || *sum.Retention != *tc.retention):
				t.Fatalf("retention %+v, want %+v", sum.Retention, *tc.retention)
			}
			// Summaries and EachSummary give the same figures.
			all, err := s.Summaries([]string{"m1"})
			if err != nil || len(all) != 1 || all[0].Spend12m != sum.Spend12m || (all[0].Retention == nil) != (sum.Retention == nil) {
				t.Fatalf("Summaries %+v %v", all, err)
			}
			n := 0
			if err := s.EachSummary(func(e hqstore.MemberSummary) error {
				n++
				if e.Visits12m != sum.Visits12m {
					t.Errorf("EachSummary visits %d, want %d", e.Visits12m, sum.Visits12m)
				}
				return nil
			}); err != nil || n != 1 {
				t.Fatalf("EachSummary: %d members, %v", n, err)
			}
		})
	}
}

// TestSummaryStatusFollowsTheClock: the same purchases are "due" today and
// "sleeping" once the member has stayed away past three intervals.
func TestSummaryStatusFollowsTheClock(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	clock := ledgertest.NewClock(now, true)
	s, _ := open(t, &hqstore.Options{Clock: clock})
	apply(t, s,
		ev("a-r1", 1, ledger.OutSale, ledger.Sale{ID: "x1", MemberID: "m1", Total: 100, WallTime: now.AddDate(0, 0, -50), ClockTrusted: true}),
		ev("a-r1", 2, ledger.OutSale, ledger.Sale{ID: "x2", MemberID: "m1", Total: 100, WallTime: now.AddDate(0, 0, -30), ClockTrusted: true}),
		earn("a-r1", 3, "m1", 2),
	)
	for _, step := range []struct {
		at   time.Time
		want retention.Status
	}{
		{now.AddDate(0, 0, -25), retention.StatusActive},
		{now, retention.StatusDue},
		{now.AddDate(0, 0, 31), retention.StatusSleeping},
	} {
		clock.Set(step.at, true)
		sum, err := s.Summary("m1")
		if err != nil || sum.Retention == nil || sum.Retention.Status != step.want {
			t.Fatalf("at %s: %+v %v, want %s", step.at.Format(time.DateOnly), sum.Retention, err, step.want)
		}
	}
	// Member (the profile only) does not need the purchases.
	if m, err := s.Member("m1"); err != nil || m.ID != "m1" {
		t.Fatalf("member %+v %v", m, err)
	}
}
