package hq_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// adjust records an adjustment of the member's points (within the
// policy's default caps) and returns its sequence number.
func (r *register) adjust(member string, pts ledger.Points) uint64 {
	r.mu.Lock()
	seq := uint64(len(r.recs) + 1)
	r.mu.Unlock()
	return r.add(ledger.OutPoints, ledger.PointEvent{ID: protocol.EventID(r.id, seq), Register: r.id, Seq: seq,
		Kind: ledger.KindAdjust, MemberID: member, Points: pts, Reason: "goodwill"})
}

// TestLookupOnlyByCard: what a register's credentials alone get from a
// card lookup (real mosquitto, head office with its policy). Head office
// answers a lookup only for an alias presented at a till (a card or a
// phone number), never for a bare member id; the answer carries the
// till's part of the profile; the asking store receives the member's
// later summaries (its till shows the member), but a lookup does not make
// it a store where the member shops: its register's rewrite of the
// member's profile is held by the policy and changes nothing.
func TestLookupOnlyByCard(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	svc, st, _ := startHQ(t, b.URL(), "", hq.Options{Policy: policy.New(policy.Limits{}, nil)})
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	a.add(ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann Example", Aliases: []string{"2900000000017"},
		Birthday: "1980-05-17", Contact: ledger.Contact{Phone: "+15550100"}})
	a.adjust("m1", 10)
	a.send(1, 2)
	testkit.Eventually(t, wait, "m1 applied", func() bool { s, _ := a.memberSummary("m1"); return s.Balance == 10 })

	other := newRegister(t, b.URL(), "storeB", "b-r1")
	other.lookup("q1", "m1") // a member id: no card presented
	other.lookup("q2", "2900000000017")
	testkit.Eventually(t, wait, "both answers", func() bool {
		_, ok1 := other.answer("q1")
		_, ok2 := other.answer("q2")
		return ok1 && ok2
	})
	if f, _ := other.answer("q1"); f.Member != nil {
		t.Errorf("a lookup by member id from store B was answered with %+v (name %q), want no member", f.Member, f.Member.Member.Name)
	}
	f, _ := other.answer("q2")
	if f.Member == nil || f.Member.MemberID != "m1" || f.Member.Balance != 10 || f.Member.Member == nil {
		t.Fatalf("lookup of m1's card: %+v", f.Member)
	}
	if m := f.Member.Member; m.Contact != (ledger.Contact{}) || m.Birthday != "--05-17" {
		t.Errorf("lookup answer carries more than a till needs: contact %+v, birthday %q", m.Contact, m.Birthday)
	}

	// m1 earns again at store A: store B, told about m1, hears of it.
	a.adjust("m1", 5)
	a.send(3)
	testkit.Eventually(t, wait, "m1's summary at store B", func() bool { s, ok := other.memberSummary("m1"); return ok && s.Balance == 15 })

	// Store B's register rewrites m1's profile: held, nothing changes.
	other.add(ledger.OutMember, ledger.Member{ID: "m1", Name: "Mallory", Aliases: []string{"2900000000017"},
		Contact: ledger.Contact{Email: "m@evil.example"}})
	other.send(1)
	testkit.Eventually(t, wait, "store B's rewrite decided", func() bool { return svc.Status().PolicyHeld+svc.Status().Applied >= 4 })
	if got := svc.Status().PolicyHeldBy[policy.CodeProfile]; got != 1 {
		t.Errorf("store B's profile rewrite of m1: %d held as %q, want 1 (status %+v)", got, policy.CodeProfile, svc.Status())
	}
	sum, err := st.Summary("m1")
	if err != nil {
		t.Fatal(err)
	}
	if m := sum.Member; m.Name != "Ann Example" || m.Contact.Email != "" || m.Contact.Phone != "+15550100" {
		t.Fatalf("m1's profile after store B's rewrite: %+v", m)
	}
}

// TestLookupsBoundedPerRegister: head office answers a register's card
// lookups only LookupBurst at once and then one per LookupEvery (real
// mosquitto). A register that floods it (a stolen credential reading
// members card by card) gets the burst answered and the rest refused
// unanswered and counted (lookups_refused in GET /status); another
// register of its store and a register of another store are still
// answered.
func TestLookupsBoundedPerRegister(t *testing.T) {
	const burst, flood = 5, 40
	b := mosquittotest.Start(t, nil)
	svc, _, _ := startHQ(t, b.URL(), "", hq.Options{LookupEvery: time.Hour, LookupBurst: burst})
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	a.add(ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"card-1"}})
	a.send(1)
	testkit.Eventually(t, wait, "m1 applied", func() bool { _, ok := a.memberSummary("m1"); return ok })

	thief := newRegister(t, b.URL(), "storeB", "b-r1")
	for i := range flood {
		thief.lookup(fmt.Sprintf("f%d", i), fmt.Sprintf("card-%d", i))
	}
	testkit.Eventually(t, wait, "the flood decided", func() bool {
		st := svc.Status()
		return st.Lookups+st.LookupsRefused == flood
	})
	if st := svc.Status(); st.Lookups != burst || st.LookupsRefused != flood-burst {
		t.Fatalf("flood of %d lookups: %d answered, %d refused; want %d and %d", flood, st.Lookups, st.LookupsRefused, burst, flood-burst)
	}
	for _, r := range []*register{newRegister(t, b.URL(), "storeB", "b-r2"), a} {
		r.lookup("honest", "card-1")
		testkit.Eventually(t, wait, "the answer to "+r.id, func() bool { _, ok := r.answer("honest"); return ok })
		if f, _ := r.answer("honest"); f.Member == nil || f.Member.MemberID != "m1" {
			t.Fatalf("%s's lookup of card-1: %+v", r.id, f.Member)
		}
	}
	if st := svc.Status(); st.Lookups != burst+2 || st.LookupsRefused != flood-burst {
		t.Fatalf("after the honest lookups: %d answered, %d refused", st.Lookups, st.LookupsRefused)
	}
	thief.mu.Lock()
	answered := len(thief.found)
	thief.mu.Unlock()
	if answered > burst {
		t.Fatalf("the flooding register got %d answers, want at most %d", answered, burst)
	}
}
