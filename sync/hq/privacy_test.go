package hq_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// TestSummariesCarryOnlyWhatATillNeeds: a member enrolled at store A with
// contact details, a consent history with a note and a full birthday
// reaches the registers of store A (over a real broker) with id, aliases, name, language,
// tier, consent flag and birthday month-day, and none of the rest; head
// office keeps the full profile.
func TestSummariesCarryOnlyWhatATillNeeds(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	_, st, _ := startHQ(t, b.URL(), "", hq.Options{})
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	bReg := newRegister(t, b.URL(), "storeB", "b-r1")
	bReg.add(ledger.OutMember, ledger.Member{ID: "m9", Aliases: []string{"card-9"}})
	bReg.send(1)
	testkit.Eventually(t, wait, "store B known", func() bool { return bReg.ackedWM() == 1 })

	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	full := ledger.Member{ID: "m1", Name: "Ana Petrova", Aliases: []string{"card-1", "+359888123456"}, Language: "bg",
		Birthday: "1984-05-17", Contact: ledger.Contact{Email: "ana@example.org", Phone: "+359888123456"},
		Consent:        ledger.Consent{Given: true, Channel: "paper", At: at, Note: "signed form 4471"},
		ConsentHistory: []ledger.Consent{{Given: false, Channel: "web", At: at.Add(-time.Hour), Note: "withdrew by e-mail"}, {Given: true, Channel: "paper", At: at, Note: "signed form 4471"}},
		Tier:           "gold", HomeRegister: "a-r1", EnrolledAt: at}
	a.add(ledger.OutMember, full)
	a.send(1)
	testkit.Eventually(t, wait, "summary of m1 at store A", func() bool { _, ok := a.memberSummary("m1"); return ok })
	s, _ := a.memberSummary("m1")
	m := s.Member
	if m == nil || m.Name != "Ana Petrova" || m.Language != "bg" || m.Tier != "gold" || !m.Consent.Given || m.Birthday != "--05-17" ||
		strings.Join(m.Aliases, ",") != "card-1,+359888123456" {
		t.Fatalf("what a till needs is missing: %+v", m)
	}
	wire, _ := json.Marshal(s)
	for _, secret := range []string{"ana@example.org", "signed form", "withdrew", "1984", "paper", `"web"`} {
		if strings.Contains(string(wire), secret) {
			t.Errorf("summary sent to store A carries %q: %s", secret, wire)
		}
	}
	if got, err := st.Member("m1"); err != nil || got.Contact.Email != "ana@example.org" || len(got.ConsentHistory) != 2 || got.Birthday != "1984-05-17" {
		t.Fatalf("head office lost the full profile: %+v %v", got, err)
	}
}
