package storetest

import (
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// consentEv is a consent change of member at register reg.
func consentEv(store, reg string, seq uint64, member string, c ledger.Consent) hqstore.Event {
	return inStore(store, Ev(reg, seq, ledger.OutConsent, map[string]any{"member_id": member, "consent": c}))
}

// testConsentLatestChoiceWins: a member's consent is the latest choice
// the member made, by trusted time, not the change that reached head
// office last. The member gives consent at store s1 (register r1
// offline), then withdraws it at store s2 an hour later; r1's grant
// arrives last and the withdrawal stands. A later grant undoes a
// withdrawal, and a member record sent late with the old consent does
// not. Every change stays in the history.
func testConsentLatestChoiceWins(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s,
		Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"C1"}}),
		sale("r1", 2, "s1", "m1", 1000, 1),
		inStore("s2", sale("r2", 1, "s2-1", "m1", 1000, 1)),
	)
	given := func(h int, ok bool) ledger.Consent {
		return ledger.Consent{Given: ok, Channel: "in-store", At: t0.Add(time.Duration(h) * time.Hour), ClockTrusted: true}
	}
	want := func(step string, given bool, history int) {
		t.Helper()
		m, err := s.Member("m1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Consent.Given != given || len(m.ConsentHistory) != history {
			t.Fatalf("%s: consent %+v, history %d entries, want given=%v and %d", step, m.Consent, len(m.ConsentHistory), given, history)
		}
		sum, err := s.Summary("m1")
		if err != nil {
			t.Fatal(err)
		}
		if sum.Member.Consent.Given != given {
			t.Fatalf("%s: summary's consent %+v, want given=%v", step, sum.Member.Consent, given)
		}
	}
	apply(t, s, consentEv("s2", "r2", 2, "m1", given(2, false)))
	apply(t, s, consentEv("s1", "r1", 3, "m1", given(1, true)))
	want("a grant made before the withdrawal, arriving after it", false, 2)

	apply(t, s, consentEv("s2", "r2", 3, "m1", given(3, true)))
	want("a grant after the withdrawal", true, 3)

	apply(t, s, inStore("s1", Ev("r1", 4, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann", Consent: given(1, false)})))
	want("a member record with a withdrawal older than the grant", true, 4)
}

// testConsentUntrustedClock: a change stamped by an untrusted clock
// cannot be ordered by its time, so the safe way holds: a withdrawal
// replaces any consent, and a grant that cannot be shown to be later
// does not undo it. Head office counts an untrusted withdrawal from when
// it applied it (it cannot have been made later), so the member's grant
// on a trusted clock after that undoes it; a grant stamped earlier, or
// by an untrusted clock, does not.
func testConsentUntrustedClock(t *testing.T, open Opener) {
	hqNow := t0.Add(24 * time.Hour)
	clk := ledgertest.NewClock(hqNow, true)
	s := open(t, hqstore.Options{Clock: clk})
	apply(t, s,
		Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"C1"}}),
		sale("r1", 2, "s1", "m1", 1000, 1),
		inStore("s2", sale("r2", 1, "s2-1", "m1", 1000, 1)),
	)
	member := func() ledger.Member {
		t.Helper()
		m, err := s.Member("m1")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	c := func(ok bool, at time.Time, trusted bool) ledger.Consent {
		return ledger.Consent{Given: ok, Channel: "in-store", At: at, ClockTrusted: trusted}
	}
	apply(t, s, consentEv("s1", "r1", 3, "m1", c(true, t0.Add(time.Hour), true)))
	// r2 booted without a clock: its withdrawal says 1970.
	boot := time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC)
	apply(t, s, consentEv("s2", "r2", 2, "m1", c(false, boot, false)))
	if m := member(); m.Consent.Given || !m.Consent.At.Equal(hqNow) {
		t.Fatalf("after an untrusted withdrawal: %+v, want withdrawn, counted from head office's %v", m.Consent, hqNow)
	}
	if h := member().ConsentHistory; len(h) != 2 || !h[1].At.Equal(boot) || h[1].ClockTrusted {
		t.Fatalf("the history changed what r2 sent: %+v", h)
	}
	clk.Set(hqNow.Add(time.Hour), true)
	for i, g := range []ledger.Consent{
		c(true, hqNow.Add(-time.Minute), true), // stamped before head office had the withdrawal
		c(true, hqNow.Add(time.Minute), false), // an untrusted clock
	} {
		apply(t, s, consentEv("s1", "r1", uint64(4+i), "m1", g))
		if m := member(); m.Consent.Given {
			t.Fatalf("grant %+v undid a withdrawal it cannot be shown to follow: %+v", g, m.Consent)
		}
	}
	apply(t, s, consentEv("s1", "r1", 6, "m1", c(true, hqNow.Add(30*time.Minute), true)))
	if m := member(); !m.Consent.Given || len(m.ConsentHistory) != 5 {
		t.Fatalf("a trusted grant after head office applied the withdrawal: %+v (history %d)", m.Consent, len(m.ConsentHistory))
	}
	// An untrusted withdrawal replaces a trusted grant whatever its time.
	apply(t, s, consentEv("s2", "r2", 3, "m1", c(false, boot, false)))
	if m := member(); m.Consent.Given {
		t.Fatalf("an untrusted withdrawal after a grant: %+v", m.Consent)
	}
}

// testConsentWeighedOnce: an untrusted withdrawal
// head office already weighed is not weighed again when the same
// register's member record carries it (a contact edit at r2 before r2
// learned of the member's later grant): the record counts as one change,
// and its consent is already in the history.
func testConsentWeighedOnce(t *testing.T, open Opener) {
	hqNow := t0.Add(24 * time.Hour)
	clk := ledgertest.NewClock(hqNow, true)
	s := open(t, hqstore.Options{Clock: clk})
	apply(t, s,
		Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"C1"}}),
		sale("r1", 2, "s1", "m1", 1000, 1),
		inStore("s2", sale("r2", 1, "s2-1", "m1", 1000, 1)),
	)
	boot := time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC)
	withdrawal := ledger.Consent{Given: false, Channel: "in-store", At: boot}
	apply(t, s, consentEv("s2", "r2", 2, "m1", withdrawal))
	clk.Set(hqNow.Add(time.Hour), true)
	apply(t, s, consentEv("s1", "r1", 3, "m1", ledger.Consent{Given: true, Channel: "in-store", At: hqNow.Add(30 * time.Minute), ClockTrusted: true}))
	m, err := s.Member("m1")
	if err != nil {
		t.Fatal(err)
	}
	if !m.Consent.Given {
		t.Fatalf("setup: the trusted grant after the withdrawal: %+v", m.Consent)
	}
	clk.Set(hqNow.Add(2*time.Hour), true)
	// r2, not yet told of the grant, edits the member's name: its record
	// carries the consent r2 knows, the withdrawal already counted.
	apply(t, s, inStore("s2", Ev("r2", 3, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann B", Aliases: []string{"C1"},
		Consent: withdrawal, ConsentHistory: []ledger.Consent{withdrawal}})))
	if m, err = s.Member("m1"); err != nil {
		t.Fatal(err)
	}
	if !m.Consent.Given {
		t.Fatalf("the withdrawal already weighed undid the member's later grant when r2's member record repeated it: %+v (history %d)", m.Consent, len(m.ConsentHistory))
	}
}
