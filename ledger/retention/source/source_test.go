package source_test

import (
	"errors"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// Head office's store is what hqreport reads in production.
var (
	_ source.PurchaseSource = (*hqstore.Store)(nil)
	_ source.MemberSource   = (*hqstore.Store)(nil)
)

type fake struct {
	purchases map[string][]ledger.Purchase
	members   []ledger.Member
	err       error
}

func (f fake) EachPurchase(fn func(string, ledger.Purchase) error) error {
	if f.err != nil {
		return f.err
	}
	for id, ps := range f.purchases {
		for _, p := range ps {
			if err := fn(id, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f fake) EachMember(fn func(ledger.Member) error) error {
	for _, m := range f.members {
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

func TestCollect(t *testing.T) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	f := fake{
		purchases: map[string][]ledger.Purchase{
			"b": {{SaleID: "r1-1", Seq: 1, WallTime: at, ClockTrusted: true, Amount: 1250, Categories: []string{"coffee"}}},
			"a": {{SaleID: "r1-2", Seq: 2, WallTime: at, Amount: 300}, {SaleID: "r1-2", Seq: 3, WallTime: at, Amount: -100}},
		},
		members: []ledger.Member{{ID: "a", Birthday: "--07-01", Consent: ledger.Consent{Given: true}}, {ID: "c"}},
	}
	ms, err := source.Collect(f, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].ID != "a" || ms[1].ID != "b" || ms[2].ID != "c" {
		t.Fatalf("members %+v", ms)
	}
	if !ms[0].Consent || ms[0].Birthday != "--07-01" || len(ms[0].Purchases) != 2 || ms[0].Purchases[1].Amount != -100 {
		t.Errorf("member a %+v", ms[0])
	}
	if p := ms[1].Purchases[0]; p.Amount != 1250 || !p.At.Equal(at) || !p.ClockTrusted || p.Categories[0] != "coffee" || ms[1].Consent {
		t.Errorf("member b %+v", ms[1])
	}
	boom := errors.New("disk gone")
	if _, err := source.Collect(fake{err: boom}, nil); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
}

func TestMember(t *testing.T) {
	m := source.Member(ledger.Member{ID: "x", EnrolledAt: time.Unix(100, 0), EnrolledTrusted: true}, []ledger.Purchase{{SaleID: "s", Amount: 5, ClockTrusted: true}})
	if m.ID != "x" || m.EnrolledAt.Unix() != 100 || len(m.Purchases) != 1 || m.Purchases[0].Amount != 5 || m.Purchases[0].Untrusted {
		t.Errorf("%+v", m)
	}
}

// TestUntrustedTimes: an enrolment or purchase stamped by an untrusted
// clock carries no date until corrected; a corrected one counts at its
// corrected time (issue 16).
func TestUntrustedTimes(t *testing.T) {
	fixed := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
	m := source.Member(ledger.Member{ID: "x", EnrolledAt: time.Unix(5, 0)}, []ledger.Purchase{
		{SaleID: "a", WallTime: time.Unix(10, 0), Amount: 5},
		{SaleID: "b", WallTime: time.Unix(20, 0), Amount: 5, CorrectedTime: fixed},
	})
	if !m.EnrolledAt.IsZero() {
		t.Errorf("untrusted enrolment dated %v", m.EnrolledAt)
	}
	if p := m.Purchases[0]; !p.Untrusted || p.ClockTrusted {
		t.Errorf("uncorrected purchase %+v", p)
	}
	if p := m.Purchases[1]; p.Untrusted || !p.At.Equal(fixed) {
		t.Errorf("corrected purchase %+v", p)
	}
}

// TestConsentIsTheMembersChoice: head office's member record holds every
// consent change in the order it arrived and the member's choice
// (ledger.Consent.Supersedes) as its consent; a change that lost to that
// choice does not win in the contact list by its date, so a member who
// withdrew on an untrusted clock, or whose later grant cannot be shown to
// follow the withdrawal, is not contacted.
func TestConsentIsTheMembersChoice(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	boot := time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC)
	cases := []struct {
		name string
		m    ledger.Member
		asOf time.Time
	}{
		{"untrusted withdrawal after a grant", ledger.Member{ID: "x",
			Consent: ledger.Consent{Channel: "in-store", At: t0.Add(24 * time.Hour), ClockTrusted: true}, // as head office applied it
			ConsentHistory: []ledger.Consent{
				{Given: true, Channel: "in-store", At: t0.Add(time.Hour), ClockTrusted: true},
				{Channel: "in-store", At: boot},
			}}, t0.Add(48 * time.Hour)},
		{"untrusted grant after a withdrawal", ledger.Member{ID: "x",
			Consent: ledger.Consent{Channel: "in-store", At: t0, ClockTrusted: true},
			ConsentHistory: []ledger.Consent{
				{Channel: "in-store", At: t0, ClockTrusted: true},
				{Given: true, Channel: "in-store", At: t0.Add(time.Hour)},
			}}, t0.Add(48 * time.Hour)},
	}
	for _, tc := range cases {
		m := source.Member(tc.m, nil)
		if chs := m.ChannelsAt(tc.asOf); len(chs) != 0 {
			t.Errorf("%s: contactable on %+v though the member's consent is %+v", tc.name, chs, tc.m.Consent)
		}
	}
	// A grant that follows the withdrawal counts from its own time.
	m := source.Member(ledger.Member{ID: "x",
		Consent: ledger.Consent{Given: true, Channel: "in-store", At: t0.Add(2 * time.Hour), ClockTrusted: true},
		ConsentHistory: []ledger.Consent{
			{Channel: "in-store", At: t0.Add(time.Hour), ClockTrusted: true},
			{Given: true, Channel: "in-store", At: t0.Add(2 * time.Hour), ClockTrusted: true},
		}}, nil)
	if chs := m.ChannelsAt(t0.Add(90 * time.Minute)); len(chs) != 0 {
		t.Errorf("contactable before the grant: %+v", chs)
	}
	if chs := m.ChannelsAt(t0.Add(3 * time.Hour)); len(chs) != 1 || !chs[0].Since.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("after the grant: %+v", chs)
	}
}
