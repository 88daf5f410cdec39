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
