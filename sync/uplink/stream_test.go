package uplink_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// requests records the register's catch-up requests.
type requests struct {
	mu    sync.Mutex
	froms []uint64
}

func (r *requests) list() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.froms...)
}

func watchCatchUps(t *testing.T, c mqtt.Client) *requests {
	t.Helper()
	r := &requests{}
	tok := c.Subscribe(protocol.CatchUpTopic("s1", "r1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		cu, err := protocol.DecodeCatchUp(m.Payload(), "r1")
		if err != nil {
			t.Errorf("catch-up request: %v", err)
			return
		}
		r.mu.Lock()
		r.froms = append(r.froms, cu.From)
		r.mu.Unlock()
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return r
}

func part(t *testing.T, from, seq uint64, member string, bal ledger.Points) []byte {
	t.Helper()
	b, err := protocol.EncodeMembers(protocol.MemberSummaries{Store: "s1", From: &from, Seq: seq, Members: []protocol.MemberSummary{{
		MemberID: member, Balance: bal, Member: &ledger.Member{ID: member, Aliases: []string{"card-" + member}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStreamGapsAreAskedForNeverSkipped: the register asks for the stream
// from its position when it connects; a part that arrives beyond a gap is
// applied but the position waits; after GapWait the register asks from its
// position again; when the missing part comes (here as a catch-up answer
// on its own topic) the position moves across both parts and is kept in
// the ledger, so the next connection asks from there. An older part
// changes nothing.
//
// The catch-up tests here turn off the timed second request
// (CatchUpAgain: -1), so every request they count is one they caused.
func TestStreamGapsAreAskedForNeverSkipped(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	office := publisher(t, b.URL())
	reqs := watchCatchUps(t, office)
	l := openLedger(t, "r1")
	u, stop := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnMembers: uplink.ApplyMembersTo(l, "r1"), CatchUpAgain: -1, GapWait: 300 * time.Millisecond})
	testkit.Eventually(t, wait, "catch-up from 0 at connect", func() bool { r := reqs.list(); return len(r) == 1 && r[0] == 0 })

	publish(t, office, protocol.MembersTopic("s1"), false, part(t, 10, 20, "m2", 20))
	testkit.Eventually(t, wait, "the part beyond the gap applied", func() bool { bal, err := l.Balance("m2"); return err == nil && bal == 20 })
	if p := u.Status().MembersSeq; p != 0 {
		t.Fatalf("position %d across a gap", p)
	}
	testkit.Eventually(t, wait, "the gap asked for", func() bool { r := reqs.list(); return len(r) >= 2 && r[1] == 0 })

	publish(t, office, protocol.RegisterMembersTopic("s1", "r1"), false, part(t, 0, 10, "m1", 10))
	testkit.Eventually(t, wait, "position across both parts", func() bool { return u.Status().MembersSeq == 20 })
	testkit.Eventually(t, wait, "position kept in the ledger", func() bool { p, err := l.MembersPosition(); return err == nil && p == 20 })
	if bal, err := l.Balance("m1"); err != nil || bal != 10 {
		t.Fatalf("m1 %d %v", bal, err)
	}
	// An older part again: nothing changes, no error.
	publish(t, office, protocol.RegisterMembersTopic("s1", "r1"), false, part(t, 0, 10, "m1", 999))
	publish(t, office, protocol.MembersTopic("s1"), false, part(t, 20, 21, "m3", 1))
	testkit.Eventually(t, wait, "a later part", func() bool { return u.Status().MembersSeq == 21 })
	if bal, _ := l.Balance("m1"); bal != 10 {
		t.Fatalf("an older part changed m1 to %d", bal)
	}
	// asked reports whether a request from pos came after the first n.
	// (A request for the closed gap at 0 sent before it closed may still
	// be on its way on a loaded machine: it asks for nothing new.)
	asked := func(n int, pos uint64) bool {
		r := reqs.list()
		return len(r) > n && slices.Contains(r[n:], pos)
	}
	n := len(reqs.list())
	time.Sleep(600 * time.Millisecond) // two GapWaits: no gap, no request
	if r := reqs.list(); slices.ContainsFunc(r[n:], func(p uint64) bool { return p != 0 }) {
		t.Fatalf("asked again without a gap: %v (the first %d before)", r, n)
	}
	n = len(reqs.list())
	// A message in the older form (no "from": an older head office, or
	// a store with registers of the previous release) applies by version
	// but does not move the position; the register asks from it.
	legacy, err := protocol.EncodeMembers(protocol.MemberSummaries{Store: "s1", Seq: 30, Members: []protocol.MemberSummary{{
		MemberID: "m4", Balance: 4, Member: &ledger.Member{ID: "m4"}}}})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, office, protocol.MembersTopic("s1"), false, legacy)
	testkit.Eventually(t, wait, "the older form applied", func() bool { bal, err := l.Balance("m4"); return err == nil && bal == 4 })
	testkit.Eventually(t, wait, "asked from the position after the older form", func() bool { return asked(n, 21) })
	if p := u.Status().MembersSeq; p != 21 {
		t.Fatalf("the older form moved the position to %d", p)
	}
	publish(t, office, protocol.RegisterMembersTopic("s1", "r1"), false, part(t, 21, 30, "m4", 4))
	testkit.Eventually(t, wait, "caught up", func() bool { return u.Status().MembersSeq == 30 })
	n = len(reqs.list())
	stop()
	startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, ClientID: "r1-again", OnMembers: uplink.ApplyMembersTo(l, "r1"), CatchUpAgain: -1})
	testkit.Eventually(t, wait, "catch-up from the kept position", func() bool { return asked(n, 30) })
}

// publishAck publishes head office's ack of r1's events up to w.
func publishAck(t *testing.T, office mqtt.Client, w uint64, retained bool) {
	t.Helper()
	topic := protocol.AckTopic("s1", "r1")
	publish(t, office, topic, retained, signedAck(t, topic, protocol.Ack{Register: "r1", Watermark: w}))
}

// TestStreamAskedAgainAtTheFirstAck: the catch-up request sent at
// connect can reach nobody (after a broker restart head office's workers,
// on clean sessions, may subscribe after the register); the register asks
// again when the session's first ack shows head office listening, once a
// session.
func TestStreamAskedAgainAtTheFirstAck(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	office := publisher(t, b.URL())
	l := openLedger(t, "r1")
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnMembers: uplink.ApplyMembersTo(l, "r1"), CatchUpAgain: -1})
	testkit.Eventually(t, wait, "online", func() bool { return u.Status().Online })
	reqs := watchCatchUps(t, office) // head office subscribes after the register's request
	// The ledger's enrolment (seq 1) went out at connect.
	testkit.Eventually(t, wait, "the enrolment published", func() bool { return u.Status().Published >= 1 })
	publishAck(t, office, 1, false)
	testkit.Eventually(t, wait, "catch-up from 0 after the first ack", func() bool { r := reqs.list(); return len(r) == 1 && r[0] == 0 })
	record(t, l, "more", 1)
	testkit.Eventually(t, wait, "the next event published", func() bool { return u.Status().Published >= 2 })
	publishAck(t, office, 2, false)
	testkit.Eventually(t, wait, "the second ack taken", func() bool { return u.Status().Watermark == 2 })
	if r := reqs.list(); len(r) != 1 {
		t.Fatalf("asked %d times in one session: %v", len(r), r)
	}
}

// TestStreamNotAskedAgainOnARetainedAck: the ack the broker hands over at
// subscribe (head office retains a register's ack) says nothing about
// head office listening now, nor does any ack before the session sent
// events: only an ack after that makes the register ask again.
func TestStreamNotAskedAgainOnARetainedAck(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	office := publisher(t, b.URL())
	reqs := watchCatchUps(t, office)
	l := openLedger(t, "r1") // its enrolment is seq 1
	// Head office confirmed it in an earlier session: this one has
	// nothing to send when the retained ack arrives.
	if err := l.Confirm(1); err != nil {
		t.Fatal(err)
	}
	publishAck(t, office, 1, true)
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnMembers: uplink.ApplyMembersTo(l, "r1"), CatchUpAgain: -1})
	testkit.Eventually(t, wait, "the retained ack applied", func() bool { return u.Status().Watermark == 1 })
	testkit.Eventually(t, wait, "catch-up at connect", func() bool { return len(reqs.list()) >= 1 })
	// The retained ack may be handled before the session is online; an
	// ack taken while online, before the session sent anything, must not
	// make it ask either.
	testkit.Eventually(t, wait, "online, the retained ack taken", func() bool { st := u.Status(); return st.Online && !st.LastAck.IsZero() })
	before := u.Status().LastAck
	publishAck(t, office, 1, false)
	testkit.Eventually(t, wait, "the ack taken", func() bool { return u.Status().LastAck.After(before) })
	// Head office receiving the next event is the barrier: a request made
	// on that ack would have gone out on the same connection before it.
	var events atomic.Int32
	if tok := office.Subscribe(protocol.EventsTopic("s1", "r1"), 1, func(mqtt.Client, mqtt.Message) { events.Add(1) }); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe events: %v", tok.Error())
	}
	record(t, l, "more", 1)
	testkit.Eventually(t, wait, "the next event at head office", func() bool { return events.Load() >= 1 })
	if r := reqs.list(); len(r) != 1 {
		t.Fatalf("asked %d times before head office answered anything this session: %v", len(r), r)
	}
	publishAck(t, office, 2, false)
	testkit.Eventually(t, wait, "catch-up after the first live ack", func() bool { return len(reqs.list()) == 2 })
}

// TestLookup: a lookup is answered by head office's signed summary, which
// the ledger then holds; an unknown alias gets nil; no answer in time is
// ErrNoAnswer; offline is ErrOffline; an unsigned answer is refused.
func TestLookup(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	office := publisher(t, b.URL())
	var mu sync.Mutex
	mode := "answer"
	tok := office.Subscribe(protocol.LookupTopic("s1", "r1"), 1, func(c mqtt.Client, m mqtt.Message) {
		l, err := protocol.DecodeLookup(m.Payload(), "r1")
		if err != nil {
			t.Errorf("lookup: %v", err)
			return
		}
		mu.Lock()
		md := mode
		mu.Unlock()
		f := protocol.Found{Store: "s1", Register: "r1", ID: l.ID}
		if l.Alias == "card-7" {
			f.Seq = 1 << 33
			f.Member = &protocol.MemberSummary{MemberID: "m7", Balance: 700, Member: &ledger.Member{ID: "m7", Aliases: []string{"card-7"}}}
		}
		doc, err := protocol.EncodeFound(f)
		if err != nil {
			t.Error(err)
			return
		}
		topic := protocol.FoundTopic("s1", "r1")
		switch md {
		case "silent":
			return
		case "unsigned":
		default:
			doc = sealed(topic, doc)
		}
		c.Publish(topic, 1, false, doc)
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	l := openLedger(t, "r1")
	u, stop := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnMembers: uplink.ApplyMembersTo(l, "r1")})
	testkit.Eventually(t, wait, "online", func() bool { return u.Status().Online })
	ask := func(alias string) (*protocol.MemberSummary, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return u.Lookup(ctx, alias)
	}
	s, err := ask("card-7")
	if err != nil || s == nil || s.Balance != 700 {
		t.Fatalf("lookup: %+v %v", s, err)
	}
	if m, err := l.LookupAlias("card-7"); err != nil || m.ID != "m7" {
		t.Fatalf("the answer is not in the ledger: %v %v", m, err)
	}
	if bal, _ := l.Balance("m7"); bal != 700 {
		t.Fatalf("balance %d", bal)
	}
	if s, err := ask("card-8"); err != nil || s != nil {
		t.Fatalf("unknown card: %+v %v", s, err)
	}
	for _, md := range []string{"silent", "unsigned"} {
		mu.Lock()
		mode = md
		mu.Unlock()
		if s, err := ask("card-7"); !errors.Is(err, uplink.ErrNoAnswer) || s != nil {
			t.Fatalf("%s head office: %+v %v", md, s, err)
		}
	}
	testkit.Eventually(t, wait, "the unsigned answer counted as rejected", func() bool { return u.Status().Rejected == 1 })
	stop()
	if _, err := ask("card-7"); !errors.Is(err, uplink.ErrOffline) {
		t.Fatalf("offline: %v", err)
	}
}
