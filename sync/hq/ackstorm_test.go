package hq_test

import (
	"encoding/json"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// ackCounter is a register as the broker sees it: a persistent session
// (clean session false, the register's client id) subscribed to its ack
// topic, counting every ack delivered.
type ackCounter struct {
	t                testing.TB
	url, store, id   string
	inc              string
	c                mqtt.Client
	mu               stdsync.Mutex
	acks             []protocol.Ack
	retainedReceived int
}

func newAckCounter(t testing.TB, url, store, id, inc string) *ackCounter {
	r := &ackCounter{t: t, url: url, store: store, id: id, inc: inc}
	r.connect()
	return r
}

func (r *ackCounter) connect() {
	r.t.Helper()
	r.c = connect(r.t, r.url, "loyalty-"+r.store+"-"+r.id, false, nil)
	tok := r.c.Subscribe(protocol.AckTopic(r.store, r.id), 1, func(_ mqtt.Client, m mqtt.Message) {
		a, err := decodeAck(m.Topic(), m.Payload(), r.id)
		if err != nil {
			r.t.Errorf("bad ack: %v", err)
			return
		}
		r.mu.Lock()
		r.acks = append(r.acks, a)
		if m.Retained() {
			r.retainedReceived++
		}
		r.mu.Unlock()
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		r.t.Fatalf("subscribe: %v", tok.Error())
	}
}

// send publishes events from..to (10 points each to the register's member).
func (r *ackCounter) send(from, to uint64) {
	r.t.Helper()
	var evs []protocol.Event
	for s := from; s <= to; s++ {
		data, _ := json.Marshal(ledger.PointEvent{ID: protocol.EventID(r.id, s), Register: r.id, Seq: s, Kind: ledger.KindEarn, MemberID: "m-" + r.id, Points: 10})
		e := protocol.FromRecord(r.store, r.id, ledger.OutboxRecord{Seq: s, Type: ledger.OutPoints, WallTime: time.Date(2026, 11, 27, 9, 0, int(s), 0, time.UTC), ClockTrusted: true, Data: data})
		e.Incarnation = r.inc
		evs = append(evs, e)
	}
	b, err := protocol.EncodeEvents(evs)
	if err != nil {
		r.t.Fatal(err)
	}
	if tok := r.c.Publish(protocol.EventsTopic(r.store, r.id), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		r.t.Fatalf("publish: %v", tok.Error())
	}
}

func (r *ackCounter) count() (n int, last uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.acks) > 0 {
		last = r.acks[len(r.acks)-1].Watermark
	}
	return len(r.acks), last
}

func (r *ackCounter) reset() {
	r.mu.Lock()
	r.acks, r.retainedReceived = nil, 0
	r.mu.Unlock()
}

// TestNoAckStormAcrossRestart: head office restarts while one register is
// idle (connected, nothing pending) and another is powered off (its
// persistent session stays on the broker). The idle register gets no ack
// at all until it sends something; the powered-off one finds nothing
// queued for it when it returns, only the one retained ack with head
// office's watermark; each then gets exactly one ack per message it sends.
func TestNoAckStormAcrossRestart(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	path := filepath.Join(t.TempDir(), "hq.db")
	_, _, stop := startHQ(t, b.URL(), path, hq.Options{GapRetry: 50 * time.Millisecond, SummaryInterval: -1})
	idle := newAckCounter(t, b.URL(), "s1", "r1", "11111111111111111111111111111111")
	off := newAckCounter(t, b.URL(), "s1", "r2", "22222222222222222222222222222222")
	idle.send(1, 5)
	off.send(1, 5)
	for _, r := range []*ackCounter{idle, off} {
		testkit.Eventually(t, wait, r.id+" acknowledged", func() bool { _, w := r.count(); return w == 5 })
	}
	off.c.Disconnect(100) // powered off: the session stays on the broker

	stop()
	idle.reset()
	svc, _, _ := startHQ(t, b.URL(), path, hq.Options{GapRetry: 50 * time.Millisecond, SummaryInterval: -1})
	// The storm this replaces sent each register an ack every GapRetry,
	// backing off to a minute: about 15 in these 2 s. There is no event
	// to wait for when nothing is sent, so this one waits on the clock.
	time.Sleep(2 * time.Second)
	if n, _ := idle.count(); n != 0 {
		t.Fatalf("idle register got %d acks after head office restarted, want 0", n)
	}
	// The idle register asks (resends event 5): exactly one answer, and
	// since the broker keeps order, nothing else was on its way before it.
	idle.send(5, 5)
	testkit.Eventually(t, wait, "answer to the resend", func() bool { n, _ := idle.count(); return n >= 1 })
	idle.send(6, 6)
	testkit.Eventually(t, wait, "ack of 6", func() bool { _, w := idle.count(); return w == 6 })
	if n, _ := idle.count(); n != 2 {
		t.Fatalf("idle register: %d acks for 2 messages after the restart, want 2", n)
	}

	// The powered-off register returns: the retained ack (watermark 5)
	// and nothing queued.
	off.reset()
	off.connect()
	testkit.Eventually(t, wait, "retained ack", func() bool { n, _ := off.count(); return n >= 1 })
	off.send(6, 6)
	testkit.Eventually(t, wait, "ack of 6", func() bool { _, w := off.count(); return w == 6 })
	off.mu.Lock()
	acks, retained := off.acks, off.retainedReceived
	off.mu.Unlock()
	if len(acks) != 2 || acks[0].Watermark != 5 || retained != 1 {
		t.Fatalf("powered-off register on return: %+v (%d retained), want the retained ack of 5, then the ack of 6", acks, retained)
	}
	// Head office counts an ack once its publish has completed, which can
	// be after the register has taken it: wait for the count, then check
	// it is not more.
	testkit.Eventually(t, wait, "head office counting its acks", func() bool { return svc.Status().AcksSent >= 3 })
	if st := svc.Status(); st.AcksSent != 3 {
		t.Fatalf("head office sent %d acks after its restart, want 3 (one per message received)", st.AcksSent)
	}
	t.Logf("after the restart: idle register 2 acks for 2 messages, powered-off register 1 retained + 1, head office %d acks sent", svc.Status().AcksSent)
}
