package hqstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// TestUntrustedPurchases (issue 16, case 4): a purchase stamped by an
// untrusted register clock (1970) is left out of the member summary and of
// the report, counted as untrusted, until the register's clock.corrected
// event dates it; then both count it at the corrected time. Summary and
// report agree at every step, and an enrolment made on an untrusted clock
// is no 1970 cohort.
func TestUntrustedPurchases(t *testing.T) {
	now := time.Date(2026, 12, 9, 15, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return now.AddDate(0, 0, d) }
	epoch := time.Unix(60, 0).UTC()
	s, _ := open(t, &hqstore.Options{Clock: ledgertest.NewClock(now, true)})
	var evs []hqstore.Event
	seq := uint64(1)
	evs = append(evs, ev("a-r1", seq, ledger.OutMember, ledger.Member{ID: "m1", Aliases: []string{"m1"}, EnrolledAt: epoch, EnrolledTrusted: false}))
	for d := -63; d <= -7; d += 7 { // a weekly buyer
		seq++
		evs = append(evs, ev("a-r1", seq, ledger.OutSale, ledger.Sale{ID: fmt.Sprintf("w%d", d), Register: "a-r1", MemberID: "m1", Total: 1000, WallTime: day(d), ClockTrusted: true}))
	}
	seq++
	untrusted := seq
	evs = append(evs, ev("a-r1", seq, ledger.OutSale, ledger.Sale{ID: "boot", Register: "a-r1", MemberID: "m1", Total: 1000, WallTime: epoch, ClockTrusted: false}))
	seq++
	evs = append(evs, earn("a-r1", seq, "m1", 10))
	apply(t, s, evs...)

	check := func(step string, days int, last string, status retention.Status, untrustedN int) {
		t.Helper()
		sum, err := s.Summary("m1")
		if err != nil || sum.Retention == nil {
			t.Fatalf("%s: summary %+v %v", step, sum, err)
		}
		r := sum.Retention
		if r.PurchaseDays != days || r.LastPurchase != last || r.MeanInterval != 7 || r.Status != status {
			t.Fatalf("%s: summary %+v, want %d days, last %s, every 7 days, %s", step, *r, days, last, status)
		}
		ms, err := source.Collect(s, s)
		if err != nil {
			t.Fatal(err)
		}
		a, err := retention.Analyze(ms, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Excluded.Untrusted != untrustedN {
			t.Fatalf("%s: report excluded %+v, want %d untrusted", step, a.Excluded, untrustedN)
		}
		p := a.Profiles[0]
		if p.Rhythm.PurchaseDays != r.PurchaseDays || p.Rhythm.LastDate() != r.LastPurchase || p.Rhythm.MeanInterval != r.MeanInterval || a.Excluded.BeforeEnrolment != 0 {
			t.Fatalf("%s: report %+v and summary %+v disagree", step, p.Rhythm, *r)
		}
		m, _ := s.Member("m1")
		if m.EnrolledTrusted && m.EnrolledAt.Year() == 1970 {
			t.Fatalf("%s: enrolment %v", step, m.EnrolledAt)
		}
	}
	check("before correction", 9, day(-7).Format(time.DateOnly), retention.StatusDue, 1)

	// The register's clock is trusted: it corrects the sale (made this
	// morning by its monotonic clock) and the enrolment.
	seq++
	apply(t, s, ev("a-r1", seq, ledger.OutClock, ledger.TimeCorrection{Register: "a-r1", Seq: seq, At: day(0), Events: []ledger.CorrectedTime{
		{Seq: 1, ID: "a-r1-1", Type: ledger.OutMember, MemberID: "m1", WallTime: day(-70)},
		{Seq: untrusted, ID: fmt.Sprintf("a-r1-%d", untrusted), Type: ledger.OutSale, MemberID: "m1", WallTime: day(0).Add(-time.Hour)},
	}}))
	check("after correction", 10, day(0).Format(time.DateOnly), retention.StatusActive, 0)
	if m, _ := s.Member("m1"); !m.EnrolledTrusted || !m.EnrolledAt.Equal(day(-70)) {
		t.Fatalf("corrected enrolment %v %v", m.EnrolledAt, m.EnrolledTrusted)
	}
	ps := 0
	_ = s.EachPurchase(func(id string, p ledger.Purchase) error {
		if p.SaleID == "boot" && p.CorrectedTime.Equal(day(0).Add(-time.Hour)) && p.WallTime.Equal(epoch) {
			ps++
		}
		return nil
	})
	if ps != 1 {
		t.Fatal("the corrected purchase keeps its 1970 stamp and gets the corrected time")
	}
}
