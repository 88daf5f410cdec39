package hqreport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqreport"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/retentiontest"
)

// TestHonestFigures (issue 19, item 7) on the generated chain: the typical
// customer's interval beside the pooled gaps, first vs later baskets
// within the same customers, the uplift on the last 12 months' actual
// revenue in currency units, and an --as-of in the past not called a
// clock fault.
func TestHonestFigures(t *testing.T) {
	d, purchases, members, _ := chain(t, false)
	asOf := retentiontest.Rounds[0]
	a, err := retention.Analyze(d.Members(), asOf, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := a.Metrics()
	if !(m.MemberIntervalDays > 2*m.MedianIntervalDays) || m.MemberIntervalDays < 25 || m.MemberIntervalDays > 35 {
		t.Errorf("typical customer %.1f days, pooled gaps %.1f: want the typical (monthly) customer well above the pooled gap", m.MemberIntervalDays, m.MedianIntervalDays)
	}
	// Weekly buyers' first basket is 0.6 of their usual: at least they
	// (40 of the repeat buyers) spent less on their first visit.
	var weeklyFirstSmaller int
	var rev12 retention.Money
	for _, p := range d.People {
		for _, q := range p.Member.Purchases {
			if qd := retention.DayOf(q.At, time.UTC); qd <= a.AsOf && qd > a.AsOf-365 {
				rev12 += q.Amount
			}
		}
		if p.Rhythm == retentiontest.Weekly {
			ps := p.Member.Purchases
			var later retention.Money
			for _, q := range ps[1:] {
				later += q.Amount
			}
			if float64(ps[0].Amount) < float64(later)/float64(len(ps)-1) {
				weeklyFirstSmaller++
			}
		}
	}
	if weeklyFirstSmaller != 40 || m.RepeatFirstSmaller*float64(m.Repeaters) < 40 || m.RepeatFirstBasket >= m.RepeatLaterBasket {
		t.Errorf("first smaller: weekly %d, all %.0f of %d; first %d later %d", weeklyFirstSmaller, m.RepeatFirstSmaller*float64(m.Repeaters), m.Repeaters, m.RepeatFirstBasket, m.RepeatLaterBasket)
	}
	if m.RevenueLast12Months != rev12 {
		t.Errorf("last 12 months' revenue %d, summed by hand %d", m.RevenueLast12Months, rev12)
	}
	u, err := retention.ComputeUplift(m.UpliftFromData(1500))
	if err != nil {
		t.Fatal(err)
	}
	extra := (int64(m.Repeaters)*1500*int64(m.AvgBasketReturning) + 5000) / 10000
	if int64(u.ExtraRevenue) != extra || u.BaseRevenue != rev12 || u.GrowthBP != (extra*20000+int64(rev12))/(2*int64(rev12)) {
		t.Errorf("uplift %+v, want extra %d on base %d", u, extra, rev12)
	}
	out, _, err := run(t, "report", "--csv", purchases, "--members", members, "--as-of", asOf.Format("2006-01-02"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("typical customer %.0f days", m.MemberIntervalDays),
		fmt.Sprintf("all gaps pooled %.0f days", m.MedianIntervalDays),
		"spent less on their first visit",
		fmt.Sprintf("of the last 12 months' revenue, %d.%02d)", rev12/100, rev12%100),
		"after the as-of date (later history, not analysed)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "register clock") {
		t.Errorf("an as-of in the past reads as a clock fault:\n%s", out)
	}
	// One-time buyers' sleeping reasons say what was used.
	list, err := a.ContactList(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, c := range list {
		p, _ := a.Profile(c.MemberID)
		if c.Kind == retention.ContactSleeping && !p.Rhythm.HasInterval {
			seen++
			if !strings.Contains(c.Reason, "one purchase, no own interval: ") {
				t.Errorf("%s: reason %q", c.MemberID, c.Reason)
			}
		}
	}
	if seen == 0 {
		t.Error("no one-time buyer got a sleeping offer to check")
	}
}

// storeFake is head office's store as the report reads it.
type storeFake map[string][]ledger.Purchase

func (s storeFake) EachPurchase(fn func(string, ledger.Purchase) error) error {
	for id, ps := range s {
		for _, p := range ps {
			if err := fn(id, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// membersFake is head office's member records as the report reads them.
type membersFake []ledger.Member

func (ms membersFake) EachMember(fn func(ledger.Member) error) error {
	for _, m := range ms {
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// TestHistoryImport: history with its original dates is added to head
// office's store (--history); a sale already in the store is refused.
func TestHistoryImport(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	store := storeFake{"m1": {{SaleID: "s9", WallTime: at, ClockTrusted: true, Amount: 1000}}}
	hist := writeFile(t, dir, "history.csv", "member_id,sale_id,at,amount\nm1,old1,2025-06-01,10.00\nm1,old2,2025-12-01,10.00\nm2,old3,2026-01-01,5.00\n")
	env := hqreport.Env{Source: store, Now: func() time.Time { return at }}
	var out, errb bytes.Buffer
	if err := hqreport.Run(context.Background(), env, []string{"report", "--history", hist, "--as-of", "2026-06-01"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "buyers 2, repeat buyers 1") {
		t.Errorf("history not merged:\n%s", out.String())
	}
	// A member enrolled at a register after their history in an older
	// system: the history counts (it is not "before enrolment").
	members := membersFake{{ID: "m1", EnrolledAt: at.Add(-time.Hour), EnrolledTrusted: true}}
	out.Reset()
	env.Members = members
	if err := hqreport.Run(context.Background(), env, []string{"report", "--history", hist, "--as-of", "2026-06-01"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "buyers 2, repeat buyers 1") || strings.Contains(out.String(), "before enrolment 2") {
		t.Errorf("history before the member enrolled at a register not counted:\n%s", out.String())
	}
	env.Members = nil
	dup := writeFile(t, dir, "dup.csv", "member_id,sale_id,at,amount\nm1,s9,2026-06-01,10.00\n")
	out.Reset()
	if err := hqreport.Run(context.Background(), env, []string{"report", "--history", dup}, &out, &errb); !errors.Is(err, retention.ErrInvalid) || out.Len() != 0 {
		t.Errorf("duplicate sale: %v %q", err, out.String())
	}
	if _, _, err := run(t, "report", "--csv", filepath.Join(dir, "history.csv"), "--history", hist); !errors.Is(err, hqreport.ErrUsage) {
		t.Errorf("--history with --csv: %v", err)
	}
}
