package hq_test

import (
	"fmt"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

func TestIngestAcksAfterCommit(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	svc, st, _ := startHQ(t, b.URL(), "", hq.Options{})
	r := newRegister(t, b.URL(), "s1", "s1-r1")
	for i := 0; i < 20; i++ {
		r.points("m1", 10)
	}
	r.send(seqRange(1, 20)...)
	testkit.Eventually(t, wait, "ack of 20", func() bool { return r.ackedWM() == 20 })
	w, err := st.Watermark("s1-r1")
	if err != nil || w != 20 {
		t.Fatalf("store watermark %d %v", w, err)
	}
	// Every ack the register saw is covered by the store.
	r.mu.Lock()
	for _, a := range r.acks {
		if a.Watermark > w {
			t.Errorf("ack %d ahead of store %d", a.Watermark, w)
		}
	}
	r.mu.Unlock()
	// Duplicates (a resend of everything) change nothing.
	r.send(seqRange(1, 20)...)
	testkit.Eventually(t, wait, "duplicates counted", func() bool { return svc.Status().Duplicates == 20 })
	if bal, _ := st.Balance("m1"); bal != 200 {
		t.Fatalf("balance %d after duplicates, want 200", bal)
	}
}

func TestGapThenResend(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	svc, st, _ := startHQ(t, b.URL(), "", hq.Options{})
	r := newRegister(t, b.URL(), "s1", "s1-r1")
	for i := 0; i < 10; i++ {
		r.points("m1", ledger.Points(i+1))
	}
	// Events 1-3 are lost on the way, 4-10 arrive: HQ holds them and asks
	// for a resend from 1; the register resends and everything lands once.
	r.send(seqRange(4, 10)...)
	testkit.Eventually(t, wait, "all applied after the resend", func() bool { return r.ackedWM() == 10 })
	r.mu.Lock()
	resends := r.resends
	r.mu.Unlock()
	if resends == 0 || svc.Status().GapRequests == 0 {
		t.Fatalf("no gap request seen (resends %d, status %+v)", resends, svc.Status())
	}
	if bal, _ := st.Balance("m1"); bal != 55 {
		t.Fatalf("balance %d, want 55 (each event once)", bal)
	}
}

// TestSummariesOnlyWhereMembersShop: a member enrolled at store A is
// summarised to A only; store B learns it by a lookup, and once the
// member redeems at B both stores get its summaries.
func TestSummariesOnlyWhereMembersShop(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	_, st, _ := startHQ(t, b.URL(), "", hq.Options{})
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	bReg := newRegister(t, b.URL(), "storeB", "b-r1")
	bReg.add(ledger.OutMember, ledger.Member{ID: "m9", Aliases: []string{"card-9"}})
	bReg.send(1)
	testkit.Eventually(t, wait, "B's own member at B", func() bool { _, ok := bReg.memberSummary("m9"); return ok })

	a.add(ledger.OutMember, ledger.Member{ID: "m1", Name: "Ana", Aliases: []string{"card-1"}})
	a.points("m1", 120)
	a.send(1, 2)
	testkit.Eventually(t, wait, "summary of m1 at store A", func() bool {
		s, ok := a.memberSummary("m1")
		return ok && s.Balance == 120
	})
	// B has not seen m1: a marker change at B arrives, m1 does not.
	bReg.points("m9", 5)
	bReg.send(2)
	testkit.Eventually(t, wait, "marker at B", func() bool { s, _ := bReg.memberSummary("m9"); return s.Balance == 5 })
	if _, ok := bReg.memberSummary("m1"); ok {
		t.Fatal("m1's summary reached store B, where m1 never shopped")
	}
	if _, ok := a.memberSummary("m9"); ok {
		t.Fatal("m9's summary reached store A, where m9 never shopped")
	}
	// B meets m1's card: head office answers the lookup with the
	// chain-wide summary.
	bReg.lookup("q1", "card-1")
	testkit.Eventually(t, wait, "lookup answer", func() bool { _, ok := bReg.answer("q1"); return ok })
	f, _ := bReg.answer("q1")
	if f.Member == nil || f.Member.MemberID != "m1" || f.Member.Balance != 120 || f.Seq == 0 || f.Member.Included["a-r1"] != 2 {
		t.Fatalf("lookup answer %+v", f)
	}
	bReg.lookup("q2", "no-such-card")
	testkit.Eventually(t, wait, "lookup answer for an unknown card", func() bool { _, ok := bReg.answer("q2"); return ok })
	if f, _ := bReg.answer("q2"); f.Member != nil {
		t.Fatalf("unknown card answered with %+v", f.Member)
	}
	// B redeems 50 of them; both stores hear the new balance.
	bReg.points("m1", -50)
	bReg.send(3)
	for _, r := range []*register{a, bReg} {
		testkit.Eventually(t, wait, "summary of m1 after the redeem at B at "+r.store, func() bool {
			s, ok := r.memberSummary("m1")
			return ok && s.Balance == 70 && s.Included["b-r1"] == 3
		})
	}
	if bal, _ := st.Balance("m1"); bal != 70 {
		t.Fatalf("store balance %d", bal)
	}
	// These registers never asked for a catch-up (as the previous
	// release): their stores' messages come without "from", which that
	// release would refuse.
	for _, r := range []*register{a, bReg} {
		r.mu.Lock()
		for _, ms := range r.parts {
			if ms.From != nil {
				t.Errorf("%s got a members message with from %d", r.id, *ms.From)
			}
		}
		r.mu.Unlock()
	}
}

func TestMalformedMessagesDoNotStopIngest(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	svc, _, _ := startHQ(t, b.URL(), "", hq.Options{})
	r := newRegister(t, b.URL(), "s1", "s1-r1")
	for _, p := range [][]byte{nil, []byte("{"), []byte(`[]`), []byte(`{"specversion":"1.0"}`), make([]byte, 2<<20)} {
		tok := r.c.Publish("loyalty/v1/s1/s1-r1/events", 1, false, p)
		tok.WaitTimeout(wait)
	}
	r.points("m1", 1)
	r.send(1)
	testkit.Eventually(t, wait, "good event acked after garbage", func() bool { return r.ackedWM() == 1 })
	if st := svc.Status(); st.Malformed < 4 {
		t.Fatalf("malformed %d, want >= 4", st.Malformed)
	}
}

// FuzzDecodeMessage: nothing a broker delivers may crash head office.
func FuzzDecodeMessage(f *testing.F) {
	f.Add("loyalty/v1/s1/r1/events", []byte(`{"specversion":"1.0","id":"r1-1","source":"/loyalty/s1/r1","type":"org.loyalty.points.event","datacontenttype":"application/json","sequence":"1","clocktrusted":true,"data":{"member_id":"m1","points":5}}`))
	f.Add("loyalty/v1/s1/r1/events", []byte(`[{"specversion":"1.0","id":"r1-1","source":"/loyalty/s1/r1","type":"org.loyalty.sale.recorded","datacontenttype":"application/json","sequence":"1","data":{}}]`))
	f.Add("loyalty/v1/s1/r1/events", []byte(`[]`))
	f.Add("loyalty/v1/s1/r1/ack", []byte(`{}`))
	f.Add("$share/x/loyalty/v1/+/+/events", []byte(`null`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		evs, err := hq.DecodeMessage(topic, payload)
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.Register == "" || e.Seq == 0 || e.ID == "" {
				t.Fatalf("decoder passed an event without identity: %+v", e)
			}
		}
	})
}

// TestNewRegisterCatchesUp: a second register of a store, new to head
// office and never sent anything, asks for its store's stream from 0 and
// gets every member of the store (and none of another store), in parts
// that chain without a gap.
func TestNewRegisterCatchesUp(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	svc, _, _ := startHQ(t, b.URL(), "", hq.Options{})
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	a.catchUp(0) // a register of this release: it reads "from"
	// Answered (with nothing) before store A has members, so the catch-up
	// answers counted below are the new register's alone.
	testkit.Eventually(t, wait, "first catch-up answered", func() bool { return svc.Status().CatchUps == 1 })
	for i := range 7 {
		a.add(ledger.OutMember, ledger.Member{ID: fmt.Sprintf("m%d", i)})
		a.points(fmt.Sprintf("m%d", i), ledger.Points(10*(i+1)))
	}
	a.send(seqRange(1, 14)...)
	other := newRegister(t, b.URL(), "storeB", "b-r1")
	other.add(ledger.OutMember, ledger.Member{ID: "elsewhere"})
	other.send(1)
	testkit.Eventually(t, wait, "store A's stream", func() bool { s, _ := a.memberSummary("m6"); return s.Balance == 70 })
	testkit.Eventually(t, wait, "store B's stream", func() bool { _, ok := other.memberSummary("elsewhere"); return ok })

	late := newRegister(t, b.URL(), "storeA", "a-r2")
	late.catchUp(0)
	testkit.Eventually(t, wait, "every member of store A at the new register", func() bool {
		for i := range 7 {
			if s, ok := late.memberSummary(fmt.Sprintf("m%d", i)); !ok || s.Balance != ledger.Points(10*(i+1)) {
				return false
			}
		}
		return true
	})
	if p, q := late.position(), a.position(); p != q || p == 0 {
		t.Fatalf("new register's parts chain to %d, store A's stream to %d", p, q)
	}
	if _, ok := late.memberSummary("elsewhere"); ok {
		t.Fatal("a member of store B reached store A's new register")
	}
	// Asking from the head brings nothing.
	n := len(late.parts)
	late.catchUp(late.position())
	testkit.Eventually(t, wait, "catch-up from the head answered", func() bool { return svc.Status().CatchUps == 3 })
	// The new register's catch-up brought store A's 7 members on its own
	// topic; store A's and store B's streams went on the stores' topics
	// (7 and 1).
	if st := svc.Status(); st.CatchUpSummaries != 7 || st.SummariesSent-st.CatchUpSummaries < 7+1 {
		t.Fatalf("summaries sent %d, of them %d in catch-up answers; want 7 of them, and at least 8 others", st.SummariesSent, st.CatchUpSummaries)
	}
	late.mu.Lock()
	defer late.mu.Unlock()
	if len(late.parts) != n {
		t.Fatalf("a catch-up from the head sent %d more parts", len(late.parts)-n)
	}
}
