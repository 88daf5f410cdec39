package uplink_test

// Logic tests of the uplink's session (window, acks, resends) without a
// broker: the connection is a brokertest.Conn, the ledger an in-memory
// outbox, and every test runs in a testing/synctest bubble, so timers
// (AckTimeout, ConfirmEvery, OpTimeout) run on the bubble's fake clock and
// synctest.Wait says "the uplink has done all it will do now". The tests
// against a real mosquitto (uplink_test.go, sync/faulttest) stay the truth
// about the broker.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/broker/brokertest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// fakeOutbox is the ledger's outbox in memory. Like the ledger, it refuses
// to confirm beyond the last event it holds (ledger.ErrPruneNotAllowed),
// and it records every Confirm.
type fakeOutbox struct {
	mu        sync.Mutex
	recs      []ledger.OutboxRecord // seq i+1 at index i; confirmed ones are kept, only counted
	confirmed uint64
	confirms  []uint64
	notify    chan struct{}
	// keep: confirmed records stay readable (the ledger's keep window),
	// except those up to forgotten.
	keep      bool
	forgotten uint64
}

var _ uplink.Outbox = (*fakeOutbox)(nil)

func newFakeOutbox(n int) *fakeOutbox {
	m := &fakeOutbox{notify: make(chan struct{}, 1)}
	m.add(n)
	return m
}

// add appends n events and notifies, as a sale does.
func (m *fakeOutbox) add(n int) {
	m.mu.Lock()
	for range n {
		seq := uint64(len(m.recs) + 1)
		m.recs = append(m.recs, ledger.OutboxRecord{Seq: seq, ID: protocol.EventID("r1", seq), Type: ledger.OutPoints,
			WallTime: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), ClockTrusted: true, Data: []byte(`{"n":1}`)})
	}
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

func (m *fakeOutbox) Outbox(after uint64, n int) ([]ledger.OutboxRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gone := m.confirmed
	if m.keep {
		gone = m.forgotten
	}
	after = min(max(after, gone), uint64(len(m.recs)))
	end := min(after+uint64(n), uint64(len(m.recs)))
	return slices.Clone(m.recs[after:end]), nil
}

func (m *fakeOutbox) Confirm(w uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.confirms = append(m.confirms, w)
	if w > uint64(len(m.recs)) {
		return fmt.Errorf("%w: %d, last seq %d", ledger.ErrPruneNotAllowed, w, len(m.recs))
	}
	m.confirmed = max(m.confirmed, w)
	return nil
}

func (m *fakeOutbox) Confirmed() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.confirmed, nil
}

func (m *fakeOutbox) OutboxStats() (int, ledger.OutboxRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := uint64(len(m.recs)) - m.confirmed; n > 0 {
		return int(n), m.recs[m.confirmed], nil
	}
	return 0, ledger.OutboxRecord{}, nil
}

func (m *fakeOutbox) OutboxNotify() <-chan struct{} { return m.notify }

func (m *fakeOutbox) confirmCalls() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.confirms)
}

// batch is one events message the uplink published.
type batch struct {
	session     int // 1 for the first connection
	first, last uint64
	tok         *brokertest.Token
}

// fakeBroker hands the uplink brokertest.Conns and records what it
// publishes. With holdPuback the events messages' PUBACKs wait for the
// test (puback); otherwise they complete at once.
type fakeBroker struct {
	t          *testing.T
	holdPuback bool
	// retained is the RETAIN flag ack delivers with (a retained ack
	// handed over at subscribe).
	retained bool
	// onSubscribe, when set, sees the filters of every subscription.
	onSubscribe func(filters map[string]byte)

	mu        sync.Mutex
	dials     int
	onMessage broker.Handler
	lost      chan struct{}
	batches   []batch
}

func (f *fakeBroker) dial(o broker.Options) (broker.Conn, broker.Token) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials++
	f.onMessage = o.OnMessage
	lost := make(chan struct{})
	f.lost = lost
	session := f.dials
	return &brokertest.Conn{
		PublishFunc: func(topic string, _ byte, _ bool, payload []byte) broker.Token {
			if !strings.HasSuffix(topic, "/events") {
				return brokertest.Done(nil) // status
			}
			evs, err := protocol.DecodeEvents(payload, "s1", "r1")
			if err != nil {
				f.t.Errorf("uplink published an invalid events message: %v", err)
				return brokertest.Done(err)
			}
			first, _ := evs[0].Seq()
			last, _ := evs[len(evs)-1].Seq()
			tok := brokertest.Done(nil)
			if f.holdPuback {
				tok = brokertest.NewToken()
			}
			f.mu.Lock()
			f.batches = append(f.batches, batch{session: session, first: first, last: last, tok: tok})
			f.mu.Unlock()
			return tok
		},
		SubscribeFunc: func(filters map[string]byte) broker.Token {
			if f.onSubscribe != nil {
				f.onSubscribe(filters)
			}
			return brokertest.Done(nil)
		},
		LostFunc:  func() <-chan struct{} { return lost },
		CloseFunc: func(time.Duration) {},
	}, brokertest.Done(nil)
}

// sent returns the events messages published so far.
func (f *fakeBroker) sent() []batch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// ack delivers head office's ack as the broker would.
func (f *fakeBroker) ack(watermark, gap uint64) {
	f.t.Helper()
	f.ackWindow(watermark, gap, 0)
}

// ackWindow delivers a resend request that names its end (gap_to).
func (f *fakeBroker) ackWindow(watermark, gap, to uint64) {
	f.t.Helper()
	topic := protocol.AckTopic("s1", "r1")
	f.deliver(topic, signedAck(f.t, topic, protocol.Ack{Register: "r1", Watermark: watermark, Gap: gap, GapTo: to}), f.retained)
}

// deliver hands a message to the uplink as the broker does.
func (f *fakeBroker) deliver(topic string, payload []byte, retained bool) {
	f.mu.Lock()
	h := f.onMessage
	f.mu.Unlock()
	h(topic, payload, retained)
}

// dropConnection makes the current connection lost.
func (f *fakeBroker) dropConnection() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.lost)
}

// run starts an uplink over ob and fb in the current bubble and returns it
// once it has done all it can (synctest.Wait); the uplink stops when the
// test function returns.
func run(t *testing.T, ob uplink.Outbox, fb *fakeBroker, o uplink.Options) *uplink.Uplink {
	t.Helper()
	fb.t = t
	o.Brokers, o.Store, o.Register, o.Dial = []string{"tcp://fake:1883"}, "s1", "r1", fb.dial
	if o.Keys == nil {
		o.Keys = hqRing // head office's key: its acks are signed
	}
	u, err := uplink.New(ob, &o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	synctest.Wait()
	return u
}

// contiguous checks that the batches cover from..to in order, once each.
func contiguous(t *testing.T, bs []batch, from, to uint64) {
	t.Helper()
	next := from
	for _, b := range bs {
		if b.first != next {
			t.Fatalf("batches %v: one starts at %d, want %d", spans(bs), b.first, next)
		}
		next = b.last + 1
	}
	if next != to+1 {
		t.Fatalf("batches %v end at %d, want %d", spans(bs), next-1, to)
	}
}

func spans(bs []batch) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = fmt.Sprintf("%d-%d", b.first, b.last)
	}
	return out
}

// TestSessionWindowBoundsMessagesAwaitingPuback: no more than Window
// messages wait for their PUBACK; each PUBACK lets exactly one more out.
func TestSessionWindowBoundsMessagesAwaitingPuback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(1000)
		fb := &fakeBroker{holdPuback: true}
		run(t, ob, fb, uplink.Options{Window: 4, BatchEvents: 10, OpTimeout: time.Minute, AckTimeout: time.Hour})
		sent := fb.sent()
		if len(sent) != 4 {
			t.Fatalf("%d messages awaiting PUBACK with Window 4: %v", len(sent), spans(sent))
		}
		contiguous(t, sent, 1, 40)
		sent[1].tok.Complete(nil) // out of order: the window moves only when the oldest is done
		synctest.Wait()
		if n := len(fb.sent()); n != 4 {
			t.Fatalf("%d messages after the second PUBACK, the first still awaited", n)
		}
		sent[0].tok.Complete(nil)
		synctest.Wait()
		sent = fb.sent()
		if len(sent) != 6 {
			t.Fatalf("%d messages after the first two PUBACKs, want 6 (4 in flight)", len(sent))
		}
		contiguous(t, sent, 1, 60)
	})
}

// TestSessionMaxUnackedBoundsEventsBeyondWatermark: with every PUBACK in,
// the uplink still holds back past MaxUnacked events beyond head office's
// watermark, cutting the last batch short, and goes on when an ack comes.
func TestSessionMaxUnackedBoundsEventsBeyondWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(200)
		fb := &fakeBroker{}
		run(t, ob, fb, uplink.Options{BatchEvents: 10, MaxUnacked: 35, AckTimeout: time.Hour})
		contiguous(t, fb.sent(), 1, 35)
		ob.add(5) // a sale: the uplink looks again and must still hold back
		synctest.Wait()
		contiguous(t, fb.sent(), 1, 35)
		fb.ack(20, 0)
		synctest.Wait()
		contiguous(t, fb.sent(), 1, 55)
	})
}

// TestSessionForgetsOnlyWhatHeadOfficeAcked: PUBACKs confirm nothing;
// Confirm gets exactly head office's watermarks (coalesced to one per
// ConfirmEvery), and an ack beyond what the register published forgets
// nothing it did not publish.
func TestSessionForgetsOnlyWhatHeadOfficeAcked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(100)
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, ConfirmEvery: 100 * time.Millisecond, AckTimeout: time.Hour})
		contiguous(t, fb.sent(), 1, 100)
		time.Sleep(time.Minute) // long after every PUBACK
		synctest.Wait()
		if c := ob.confirmCalls(); len(c) != 0 {
			t.Fatalf("confirmed %v on PUBACK alone", c)
		}

		fb.ack(40, 0)
		synctest.Wait()
		if c := ob.confirmCalls(); !slices.Equal(c, []uint64{40}) {
			t.Fatalf("confirms %v after head office acked 40, want [40]", c)
		}
		fb.ack(60, 0)
		fb.ack(80, 0)
		synctest.Wait()
		if c := ob.confirmCalls(); !slices.Equal(c, []uint64{40}) {
			t.Fatalf("confirms %v within ConfirmEvery of the last, want [40] (coalesced)", c)
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if c := ob.confirmCalls(); !slices.Equal(c, []uint64{40, 80}) {
			t.Fatalf("confirms %v once ConfirmEvery passed, want [40 80]", c)
		}
		if st := u.Status(); st.Watermark != 80 || st.Pending != 20 {
			t.Fatalf("status %v, want watermark 80 and 20 pending", st)
		}

		// A confused head office acks beyond what was ever recorded (or
		// published: 100): it confirms what this process published,
		// 100, and no further (500 never reaches the ledger).
		fb.ack(500, 0)
		time.Sleep(time.Second)
		synctest.Wait()
		if w, _ := ob.Confirmed(); w != 100 || !slices.Equal(ob.confirmCalls(), []uint64{40, 80, 100}) {
			t.Fatalf("confirmed %d (calls %v) after a bogus ack of 500, want 100 (what was published)", w, ob.confirmCalls())
		}
		if st := u.Status(); st.Watermark != 100 || st.Pending != 0 {
			t.Fatalf("status after a bogus ack: %v", st)
		}
	})
}

// TestSessionGapRequestRewindsToWatermark: head office asks for a resend
// from its watermark; the uplink resends from there (not from the start,
// not from where it stopped), honours a repeat of the same request only
// after AckTimeout, and a new gap at once.
func TestSessionGapRequestRewindsToWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(100)
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: 10 * time.Second, ConfirmEvery: time.Nanosecond})
		contiguous(t, fb.sent(), 1, 100)

		fb.ack(30, 31)
		synctest.Wait()
		sent := fb.sent()
		contiguous(t, sent[10:], 31, 100)
		if r := u.Status().Resends; r != 1 {
			t.Fatalf("%d resends after one gap request", r)
		}

		// Head office repeats the request with every message beyond the
		// gap; the same request is not honoured again within AckTimeout.
		fb.ack(30, 31)
		synctest.Wait()
		if n := len(fb.sent()); n != len(sent) {
			t.Fatalf("the same gap request honoured again at once: %v", spans(fb.sent()[len(sent):]))
		}
		time.Sleep(5 * time.Second)
		fb.ack(30, 31)
		synctest.Wait()
		if n := len(fb.sent()); n != len(sent) {
			t.Fatalf("the same gap request honoured again after 5s of 10s: %v", spans(fb.sent()[len(sent):]))
		}

		// Progress, then a new gap: honoured at once.
		fb.ack(50, 51)
		synctest.Wait()
		contiguous(t, fb.sent()[len(sent):], 51, 100)
		if w, _ := ob.Confirmed(); w != 50 {
			t.Fatalf("confirmed %d, want head office's watermark 50", w)
		}
	})
}

// TestSessionGapWindowResendsOnlyTheWindow: a resend request that names
// its end (gap_to: head office holds what follows, e.g. another worker
// has it) is answered with that window alone, and the stream goes on
// from where it was; the same request is honoured again only after
// AckTimeout; requests that arrive together merge into one window; one
// whose end is beyond what was sent rewinds as a request without an end.
func TestSessionGapWindowResendsOnlyTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(100)
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: 10 * time.Second, ConfirmEvery: time.Nanosecond})
		contiguous(t, fb.sent(), 1, 100)

		fb.ackWindow(30, 31, 45)
		synctest.Wait()
		sent := fb.sent()
		contiguous(t, sent[10:], 31, 45)
		if r := u.Status().Resends; r != 1 {
			t.Fatalf("%d resends after one gap request", r)
		}
		fb.ackWindow(30, 31, 45)
		synctest.Wait()
		if n := len(fb.sent()); n != len(sent) {
			t.Fatalf("the same window honoured again at once: %v", spans(fb.sent()[len(sent):]))
		}
		// New events go out from the cursor, not from the window's end.
		ob.add(5)
		synctest.Wait()
		contiguous(t, fb.sent()[len(sent):], 101, 105)
		sent = fb.sent()

		// Two requests in a row (merged into one window when both arrive
		// before the session looks): both windows, nothing beyond them.
		fb.ackWindow(50, 61, 62)
		fb.ackWindow(50, 51, 55)
		synctest.Wait()
		got := map[uint64]bool{}
		for _, b := range fb.sent()[len(sent):] {
			for seq := b.first; seq <= b.last; seq++ {
				if seq < 51 || seq > 62 {
					t.Fatalf("resent %v for windows 51-55 and 61-62", spans(fb.sent()[len(sent):]))
				}
				got[seq] = true
			}
		}
		for _, seq := range []uint64{51, 55, 61, 62} {
			if !got[seq] {
				t.Fatalf("resent %v: %d missing", spans(fb.sent()[len(sent):]), seq)
			}
		}
		time.Sleep(time.Millisecond) // the next Confirm is due
		synctest.Wait()
		if w, _ := ob.Confirmed(); w != 50 {
			t.Fatalf("confirmed %d, want head office's watermark 50", w)
		}
		sent = fb.sent()

		// An end beyond what was sent: everything from the gap.
		fb.ackWindow(70, 71, 200)
		synctest.Wait()
		contiguous(t, fb.sent()[len(sent):], 71, 105)
	})
}

// TestSessionSilenceProbesFromWatermark: when head office says nothing
// for AckTimeout with events outstanding, the uplink resends one batch
// from the watermark (a probe) and nothing more until head office
// answers; the wait doubles while it stays silent.
func TestSessionSilenceProbesFromWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(100)
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: 10 * time.Second, StatusInterval: time.Hour})
		fb.ack(20, 0)
		synctest.Wait()
		contiguous(t, fb.sent(), 1, 100)
		n := len(fb.sent())

		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if len(fb.sent()) != n || u.Status().Resends != 0 {
			t.Fatalf("probed before AckTimeout: %v", spans(fb.sent()[n:]))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		probe := fb.sent()[n:]
		if len(probe) != 1 || probe[0].first != 21 || probe[0].last != 30 {
			t.Fatalf("after AckTimeout of silence sent %v, want one batch from the watermark: 21-30", spans(probe))
		}
		// Still silent: the next probe comes after twice the wait.
		time.Sleep(20*time.Second - time.Millisecond)
		synctest.Wait()
		if len(fb.sent()) != n+1 {
			t.Fatalf("second probe before twice AckTimeout: %v", spans(fb.sent()[n:]))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if probe := fb.sent()[n+1:]; len(probe) != 1 || probe[0].first != 21 {
			t.Fatalf("second probe %v, want one batch from 21", spans(probe))
		}
		// Head office answers: probing ends, the rest follows.
		fb.ack(30, 0)
		synctest.Wait()
		contiguous(t, fb.sent()[n+2:], 31, 100)
	})
}

// TestSessionReconnectResendsFromWatermark: after a lost connection the
// next session starts again right after head office's watermark, whatever
// the previous one had published.
func TestSessionReconnectResendsFromWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(50)
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: time.Hour,
			BackoffMin: time.Second, BackoffMax: time.Second})
		fb.ack(20, 0)
		synctest.Wait()
		fb.dropConnection()
		synctest.Wait()
		if st := u.Status(); st.Online || !strings.Contains(st.LastError, "connection lost") {
			t.Fatalf("status after the connection dropped: %v", st)
		}
		time.Sleep(time.Second) // the reconnect backoff
		synctest.Wait()
		var second []batch
		for _, b := range fb.sent() {
			if b.session == 2 {
				second = append(second, b)
			}
		}
		contiguous(t, second, 21, 50)
		if st := u.Status(); !st.Online || st.Sessions != 2 {
			t.Fatalf("status after reconnecting: %v (sessions %d)", st, st.Sessions)
		}
	})
}

// TestSessionPubackTimeoutEndsSession: a PUBACK that does not come within
// OpTimeout (a half-open link) ends the session; the next one resends.
func TestSessionPubackTimeoutEndsSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(10)
		fb := &fakeBroker{holdPuback: true}
		u := run(t, ob, fb, uplink.Options{OpTimeout: 3 * time.Second, AckTimeout: time.Hour,
			BackoffMin: time.Second, BackoffMax: time.Second})
		time.Sleep(3*time.Second - time.Millisecond)
		synctest.Wait()
		if st := u.Status(); !st.Online {
			t.Fatalf("offline before OpTimeout: %v", st)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if st := u.Status(); st.Online || !strings.Contains(st.LastError, "puback") {
			t.Fatalf("status after a PUBACK timeout: %v", st)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if sent := fb.sent(); len(sent) != 2 || sent[1].session != 2 || sent[1].first != 1 {
			t.Fatalf("after reconnecting sent %v, want the batch again from 1", spans(sent))
		}
	})
}

// gatedOutbox is a fakeOutbox whose Confirm waits for the test (a ledger
// write waiting for its fsync) and counts how many wait at once.
type gatedOutbox struct {
	*fakeOutbox
	gate           chan struct{}
	inflight, most atomic.Int32
}

func (g *gatedOutbox) Confirm(w uint64) error {
	n := g.inflight.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	<-g.gate
	g.inflight.Add(-1)
	return g.fakeOutbox.Confirm(w)
}

// TestSessionConfirmsAtOnceWhenHeadOfficeHasAll: while events remain to
// be sent or acknowledged, acks are coalesced to one Confirm per
// ConfirmEvery; the ack that covers everything the outbox holds has no
// later ack to be coalesced with and is confirmed at once, so a drained
// backlog, or a sale on a quiet till, leaves the ledger without waiting.
func TestSessionConfirmsAtOnceWhenHeadOfficeHasAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(100)
		fb := &fakeBroker{}
		run(t, ob, fb, uplink.Options{BatchEvents: 10, ConfirmEvery: time.Hour, AckTimeout: time.Hour})
		contiguous(t, fb.sent(), 1, 100)
		fb.ack(40, 0)
		synctest.Wait()
		fb.ack(60, 0)
		synctest.Wait()
		if c := ob.confirmCalls(); !slices.Equal(c, []uint64{40}) {
			t.Fatalf("confirms %v with 61..100 outstanding, want [40] (coalesced)", c)
		}
		fb.ack(100, 0)
		synctest.Wait()
		if c := ob.confirmCalls(); !slices.Equal(c, []uint64{40, 100}) {
			t.Fatalf("confirms %v once head office had everything, want [40 100] at once", c)
		}
		// n more events, sent and acknowledged: the Confirms then.
		more := func(n int, last uint64, want []uint64, why string) {
			t.Helper()
			ob.add(n)
			synctest.Wait()
			contiguous(t, fb.sent(), 1, last)
			fb.ack(last, 0)
			synctest.Wait()
			if c := ob.confirmCalls(); !slices.Equal(c, want) {
				t.Fatalf("confirms %v after %d more events head office acked, want %v (%s)", c, n, want, why)
			}
		}
		more(5, 105, []uint64{40, 100}, "fewer than a batch: coalesced")
		more(10, 115, []uint64{40, 100, 115}, "a batch more: at once")
	})
}

// TestSessionCoalescesConfirmsOfATrickle: events committed one at a time
// faster than ConfirmEvery, each acknowledged before the next, drain the
// outbox at every ack; they are still confirmed at most once per
// ConfirmEvery (each Confirm is a ledger write), not once per ack (found
// in review: 100 Confirms a second at one event every 10 ms).
func TestSessionCoalescesConfirmsOfATrickle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(0)
		fb := &fakeBroker{}
		run(t, ob, fb, uplink.Options{BatchEvents: 64, ConfirmEvery: 100 * time.Millisecond, AckTimeout: time.Hour})
		for i := uint64(1); i <= 100; i++ {
			ob.add(1)
			synctest.Wait()
			contiguous(t, fb.sent(), 1, i)
			time.Sleep(2 * time.Millisecond)
			fb.ack(i, 0)
			time.Sleep(8 * time.Millisecond)
			synctest.Wait()
		}
		time.Sleep(time.Second)
		synctest.Wait()
		c := ob.confirmCalls()
		if len(c) == 0 || c[len(c)-1] != 100 {
			t.Fatalf("confirms %v, want the last at 100", c)
		}
		if len(c) > 12 {
			t.Fatalf("%d Confirms for 100 events over 1 s with ConfirmEvery 100 ms, want at most 12: %v", len(c), c)
		}
	})
}

// TestSessionConfirmDoesNotHoldUpPublishing: while the ledger writes head
// office's watermark, the uplink goes on publishing; Confirms run one at
// a time, in order, and the status names only what the ledger confirmed.
func TestSessionConfirmDoesNotHoldUpPublishing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := &gatedOutbox{fakeOutbox: newFakeOutbox(100), gate: make(chan struct{})}
		fb := &fakeBroker{holdPuback: true}
		u := run(t, ob, fb, uplink.Options{Window: 2, BatchEvents: 10, ConfirmEvery: 100 * time.Millisecond, OpTimeout: time.Minute, AckTimeout: time.Hour})
		sent := fb.sent()
		contiguous(t, sent, 1, 20)
		fb.ack(20, 0)
		synctest.Wait() // Confirm(20) waits for its write
		sent[0].tok.Complete(nil)
		sent[1].tok.Complete(nil)
		synctest.Wait()
		contiguous(t, fb.sent(), 1, 40)
		fb.ack(40, 0)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := ob.most.Load(); n != 1 {
			t.Fatalf("%d Confirms at once", n)
		}
		if st := u.Status(); st.Watermark != 0 {
			t.Fatalf("status watermark %d before the ledger confirmed anything", st.Watermark)
		}
		ob.gate <- struct{}{} // the write of 20 is done
		synctest.Wait()
		if st := u.Status(); st.Watermark != 20 {
			t.Fatalf("status watermark %d after Confirm(20)", st.Watermark)
		}
		ob.gate <- struct{}{} // 40 follows, ConfirmEvery later
		synctest.Wait()
		if c := ob.confirmCalls(); !slices.Equal(c, []uint64{20, 40}) {
			t.Fatalf("confirms %v, want [20 40]", c)
		}
		if st := u.Status(); st.Watermark != 40 || ob.most.Load() != 1 {
			t.Fatalf("status %v, at most %d Confirms at once", st, ob.most.Load())
		}
	})
}
