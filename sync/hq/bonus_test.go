package hq_test

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestBonusFieldsOnlyToRegistersThatReadThem: head office sends a
// member's bonus state (first_bonus, birthday_year) only to a register
// whose status lists them (protocol.MemberFields): a register of the
// previous release refuses a members message with a field it does not
// know, so it gets the summaries without them (and decides as before);
// once its status lists them, a catch-up and the store's topic carry
// them.
func TestBonusFieldsOnlyToRegistersThatReadThem(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	startHQ(t, b.URL(), "", hq.Options{})
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	status := func(fields []string) {
		t.Helper()
		doc, err := protocol.EncodeStatus(protocol.Status{Store: "storeA", Register: "a-r1", State: protocol.StateOnline, MemberFields: fields})
		if err != nil {
			t.Fatal(err)
		}
		if tok := a.c.Publish(protocol.StatusTopic("storeA", "a-r1"), 1, true, doc); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("status: %v", tok.Error())
		}
	}
	status(nil) // a register of the previous release
	a.add(ledger.OutMember, ledger.Member{ID: "m1"})
	sale := a.add(ledger.OutSale, ledger.Sale{ID: "s1", Register: "a-r1", MemberID: "m1", RuleVersion: 1,
		Lines: []ledger.Line{{No: 1, SKU: "x", Quantity: 1, UnitPrice: 1000}}, Total: 1000})
	a.add(ledger.OutPoints, ledger.PointEvent{Register: "a-r1", Seq: sale + 1, Kind: ledger.KindBonus, MemberID: "m1",
		Points: 50, SaleID: "s1", Reason: rules.BonusFirstPurchase})
	a.send(seqRange(1, 3)...)
	testkit.Eventually(t, wait, "m1's summary", func() bool { s, _ := a.memberSummary("m1"); return s.Balance == 50 })
	if s, _ := a.memberSummary("m1"); s.FirstBonus != "" || s.BirthdayYear != 0 {
		t.Fatalf("a register that does not read the bonus fields got %+v", s)
	}

	status(protocol.MemberFields)
	a.mu.Lock()
	seen := len(a.parts)
	a.mu.Unlock()
	a.catchUp(0) // after the status, on the same connection: head office has read it
	testkit.Eventually(t, wait, "the catch-up", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.parts) > seen
	})
	a.mu.Lock()
	for _, ms := range a.parts[seen:] {
		for _, s := range ms.Members {
			if s.MemberID == "m1" && s.FirstBonus != protocol.FirstBonusPaid {
				t.Errorf("catch-up for a register that reads them: m1 first_bonus %q, want paid", s.FirstBonus)
			}
		}
	}
	a.mu.Unlock()
	a.points("m1", 5)
	a.send(4)
	testkit.Eventually(t, wait, "m1's next summary on the store's topic", func() bool {
		s, _ := a.memberSummary("m1")
		return s.Balance == 55 && s.FirstBonus == protocol.FirstBonusPaid
	})
}
