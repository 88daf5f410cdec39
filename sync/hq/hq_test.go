package hq_test

import (
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

func TestSummaryReachesOtherStore(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	_, st, _ := startHQ(t, b.URL(), "", hq.Options{})
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	bReg := newRegister(t, b.URL(), "storeB", "b-r1")
	// Store B must be known to head office to get summaries: its register
	// has sent something already (e.g. an enrolment of another member).
	bReg.add(ledger.OutMember, ledger.Member{ID: "m9", Aliases: []string{"card-9"}})
	bReg.send(1)
	testkit.Eventually(t, wait, "store B known", func() bool { return bReg.ackedWM() == 1 })

	a.add(ledger.OutMember, ledger.Member{ID: "m1", Name: "Ana", Aliases: []string{"card-1"}})
	a.points("m1", 120)
	a.send(1, 2)
	testkit.Eventually(t, wait, "summary of m1 at store B", func() bool {
		s, ok := bReg.memberSummary("m1")
		return ok && s.Balance == 120
	})
	s, _ := bReg.memberSummary("m1")
	if s.Included["a-r1"] != 2 || s.Member == nil || s.Member.Name != "Ana" {
		t.Fatalf("summary at B: %+v", s)
	}
	// B redeems 50 of them; A hears the new balance.
	bReg.points("m1", -50)
	bReg.send(2)
	testkit.Eventually(t, wait, "summary of m1 at store A after redeem at B", func() bool {
		s, ok := a.memberSummary("m1")
		return ok && s.Balance == 70 && s.Included["b-r1"] == 2
	})
	if bal, _ := st.Balance("m1"); bal != 70 {
		t.Fatalf("store balance %d", bal)
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

// A store head office hears from for the first time gets every member,
// including those whose summaries went out before the store was known.
func TestNewStoreGetsEveryMember(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	startHQ(t, b.URL(), "", hq.Options{})
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	a.add(ledger.OutMember, ledger.Member{ID: "m1", Name: "Ana"})
	a.points("m1", 40)
	a.send(1, 2)
	testkit.Eventually(t, wait, "store A acked", func() bool { return a.ackedWM() == 2 })
	late := newRegister(t, b.URL(), "storeB", "b-r1")
	late.add(ledger.OutMember, ledger.Member{ID: "m2"})
	late.send(1)
	testkit.Eventually(t, wait, "m1's summary at the late store", func() bool {
		s, ok := late.memberSummary("m1")
		return ok && s.Balance == 40
	})
}
