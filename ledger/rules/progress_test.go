package rules_test

import (
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

func TestTierProgress(t *testing.T) {
	rs := tierRules(t)
	tests := []struct {
		name         string
		spend        int64
		visits       int
		current      string
		next         string
		spendNeeded  int64
		visitsNeeded int
	}{
		{"new member", 0, 0, "member", "silver", 100_000, 12},
		{"part way", 40_000, 5, "member", "silver", 60_000, 7},
		{"silver to gold", 150_000, 20, "silver", "gold", 350_000, 20},
		{"top", 900_000, 50, "gold", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := rs.TierProgress(tt.spend, tt.visits)
			if p.Current.Name != tt.current || p.Next.Name != tt.next || p.SpendNeeded != tt.spendNeeded || p.VisitsNeeded != tt.visitsNeeded {
				t.Errorf("TierProgress = %+v", p)
			}
		})
	}
	if p := basic(t).TierProgress(5, 5); p.Current.Name != "" || p.Next.Name != "" {
		t.Errorf("no tiers: %+v", p)
	}
}

func TestNextReward(t *testing.T) {
	rs := basic(t)
	rs.Rewards = []rules.Reward{{ID: "big", Name: "Big", Points: 1000, Discount: 1000}, {ID: "coffee", Name: "Coffee", Points: 150, Discount: 350}}
	tests := []struct {
		name    string
		balance int64
		id      string
		needed  int64
		ok      bool
	}{
		{"nothing yet", 0, "coffee", 150, true},
		{"close to coffee", 120, "coffee", 30, true},
		{"coffee affordable", 150, "big", 850, true},
		{"everything affordable", 1000, "", 0, false},
		{"negative balance", -10, "coffee", 150, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, needed, ok := rs.NextReward(tt.balance)
			if r.ID != tt.id || needed != tt.needed || ok != tt.ok {
				t.Errorf("NextReward(%d) = %s %d %v, want %s %d %v", tt.balance, r.ID, needed, ok, tt.id, tt.needed, tt.ok)
			}
		})
	}
}

func TestBirthdayDue(t *testing.T) {
	rs := basic(t)
	rs.TimeZone = "Asia/Jerusalem"
	rs.Birthday = rules.BirthdayBonus{Points: 100, DaysAfter: 6}
	e, err := rs.Compile()
	if err != nil {
		t.Fatal(err)
	}
	m := rules.MemberState{ID: "m", Birthday: "--03-15"}
	// 14 March 22:30 UTC is already 15 March in Jerusalem.
	at := time.Date(2026, 3, 14, 22, 30, 0, 0, time.UTC)
	if !e.BirthdayDue(m, at, true) {
		t.Error("not due on the local birthday")
	}
	if e.BirthdayDue(m, at, false) {
		t.Error("due with an untrusted clock")
	}
	if e.BirthdayDue(m, at.Add(-time.Hour), true) {
		t.Error("due the local day before")
	}
	m.BirthdayBonusGivenAt = at
	if e.BirthdayDue(m, at.Add(48*time.Hour), true) {
		t.Error("due again in the same window")
	}
	if e.BirthdayDue(rules.MemberState{ID: "m", Birthday: "garbage"}, at, true) {
		t.Error("due for a malformed birthday")
	}
}
