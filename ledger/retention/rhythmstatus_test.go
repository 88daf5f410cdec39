package retention_test

import (
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

func TestRhythmStatus(t *testing.T) {
	tests := []struct {
		name  string
		since int
		mean  float64
		want  retention.Status
	}{
		{"no interval", 400, 0, retention.StatusActive},
		{"within interval", 29, 30, retention.StatusActive},
		{"at interval", 30, 30, retention.StatusDue},
		{"three intervals is still due", 90, 30, retention.StatusDue},
		{"past three intervals", 91, 30, retention.StatusSleeping},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retention.RhythmStatus(tc.since, tc.mean); got != tc.want {
				t.Fatalf("RhythmStatus(%d, %g) = %s, want %s", tc.since, tc.mean, got, tc.want)
			}
		})
	}
	sent := retention.MemberSummary{Status: retention.StatusActive, Segment: retention.SegRegular, PurchaseDays: 3, LastPurchase: "2026-01-10", MeanInterval: 20}
	for _, tc := range []struct {
		name string
		in   retention.MemberSummary
		asOf time.Time
		want retention.Status
	}{
		{"same day as sent", sent, time.Date(2026, 1, 20, 9, 0, 0, 0, time.UTC), retention.StatusActive},
		{"later: due", sent, time.Date(2026, 1, 30, 9, 0, 0, 0, time.UTC), retention.StatusDue},
		{"much later: sleeping", sent, time.Date(2026, 3, 15, 9, 0, 0, 0, time.UTC), retention.StatusSleeping},
		{"clock before the last purchase: as sent", sent, time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC), retention.StatusActive},
		{"no interval: as sent", retention.MemberSummary{Status: retention.StatusActive, PurchaseDays: 1, LastPurchase: "2025-01-01"}, time.Date(2026, 3, 15, 9, 0, 0, 0, time.UTC), retention.StatusActive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := retention.RetentionAsOf(tc.in, tc.asOf)
			if got.Status != tc.want || got.MeanInterval != tc.in.MeanInterval || got.LastPurchase != tc.in.LastPurchase {
				t.Fatalf("RetentionAsOf = %+v, want status %s and the rest unchanged", got, tc.want)
			}
		})
	}
}

// TestCleanLeavesOutUntrusted: a sale stamped by an uncorrected untrusted
// register clock is left out with its refunds and counted (issue 16).
func TestCleanLeavesOutUntrusted(t *testing.T) {
	asOf := time.Date(2026, 12, 9, 12, 0, 0, 0, time.UTC)
	epoch := time.Unix(5, 0).UTC()
	for _, tc := range []struct {
		name      string
		ps        []retention.Purchase
		days      int
		untrusted int
	}{
		{"1970 sale", []retention.Purchase{{SaleID: "a", At: asOf.AddDate(0, 0, -7), Amount: 100}, {SaleID: "b", At: epoch, Amount: 100, Untrusted: true}}, 1, 1},
		{"1970 sale and its refund", []retention.Purchase{{SaleID: "b", At: epoch, Amount: 100, Untrusted: true}, {SaleID: "b", At: asOf, Amount: -50}}, 0, 2},
		{"corrected sale counts", []retention.Purchase{{SaleID: "a", At: asOf.AddDate(0, 0, -7), Amount: 100}, {SaleID: "b", At: asOf.AddDate(0, 0, -1), Amount: 100}}, 2, 0},
	} {
		h, ex := retention.Clean(retention.Member{ID: "m", Purchases: tc.ps}, asOf, nil)
		if len(h.Days) != tc.days || ex.Untrusted != tc.untrusted || ex.Total() != tc.untrusted {
			t.Errorf("%s: %d days, excluded %+v; want %d days, %d untrusted", tc.name, len(h.Days), ex, tc.days, tc.untrusted)
		}
	}
}
