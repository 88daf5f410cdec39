package uplink_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestSessionHeadOfficeBackInTime: head office, restored from an older
// backup, asks again for events it had confirmed. The uplink resends the
// confirmed events the ledger still keeps, from head office's own
// watermark, follows head office's progress below the ledger's watermark
// and confirms nothing twice; events the ledger no longer keeps are named
// in status (lost) and what it has beyond them is resent, until head
// office acknowledges past them.
func TestSessionHeadOfficeBackInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(100)
		ob.keep = true
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: 10 * time.Second, ConfirmEvery: time.Nanosecond})
		fb.ack(100, 0)
		synctest.Wait()
		if w, _ := ob.Confirmed(); w != 100 {
			t.Fatalf("confirmed %d, want 100", w)
		}
		n := len(fb.sent())

		// Restored head office: watermark 50, asks from 51.
		fb.ack(50, 51)
		synctest.Wait()
		contiguous(t, fb.sent()[n:], 51, 100)
		if st := u.Status(); st.Notice.Code != "" || st.Resends != 1 {
			t.Fatalf("status while resending kept events: %+v", st)
		}
		// It catches up below the ledger's watermark: no probe, no resend.
		n = len(fb.sent())
		fb.ack(80, 0)
		synctest.Wait()
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if len(fb.sent()) != n {
			t.Fatalf("progress below the ledger's watermark not seen: resent %v", spans(fb.sent()[n:]))
		}
		fb.ack(100, 0)
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(fb.sent()) != n {
			t.Fatalf("sent %v after head office caught up", spans(fb.sent()[n:]))
		}
		if w, _ := ob.Confirmed(); w != 100 {
			t.Fatalf("confirmed %d", w)
		}

		// Again, but the ledger kept only from 71: 51..70 are lost and
		// named; 71..100 are resent for head office to hold beyond them.
		ob.mu.Lock()
		ob.forgotten = 70
		ob.mu.Unlock()
		n = len(fb.sent())
		fb.ack(50, 51)
		synctest.Wait()
		contiguous(t, fb.sent()[n:], 71, 100)
		st := u.Status()
		if st.Notice.Code != uplink.NoticeLost || st.Notice.Held != 20 || !strings.Contains(st.Notice.Text, "51..70") {
			t.Fatalf("lost events not named: %+v", st.Notice)
		}
		// Head office's operator acknowledged the gap: it is at 100 again.
		ob.add(5)
		synctest.Wait()
		fb.ack(105, 0)
		synctest.Wait()
		if w, _ := ob.Confirmed(); w != 105 {
			t.Fatalf("confirmed %d after the gap was acknowledged, want 105", w)
		}
		if st := u.Status(); st.Notice.Code != "" {
			t.Fatalf("notice after the gap was acknowledged: %+v", st.Notice)
		}
	})
}

// TestSessionTakeoverReported: connections lost soon after they were made,
// three in a row (what a broker does to two clients with one client id),
// are reported in status; a connection that lasts clears it; lost
// connections spread out are not a takeover.
func TestSessionTakeoverReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(5)
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{AckTimeout: time.Hour, TakeoverWithin: 5 * time.Second, StatusInterval: time.Hour,
			BackoffMin: 100 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
		takenOver := func() {
			time.Sleep(time.Second)
			fb.dropConnection()
			synctest.Wait()
			time.Sleep(100 * time.Millisecond) // the reconnect backoff
			synctest.Wait()
		}
		takenOver()
		takenOver()
		if st := u.Status(); st.Takeover != "" {
			t.Fatalf("two quick losses reported as a takeover: %s", st.Takeover)
		}
		takenOver()
		st := u.Status()
		if !strings.Contains(st.Takeover, "taken over 3 times") || !strings.Contains(st.Takeover, "register id r1") || st.Takeovers != 1 {
			t.Fatalf("takeover not reported: %+v", st)
		}
		// A connection that lasts ends it, at once and after it ends.
		time.Sleep(10 * time.Second)
		if st := u.Status(); st.Takeover != "" {
			t.Fatalf("takeover still reported while a connection lasts: %+v", st)
		}
		fb.dropConnection()
		synctest.Wait()
		if st := u.Status(); st.Takeover != "" || st.Takeovers != 1 {
			t.Fatalf("takeover still reported after a lasting connection: %+v", st)
		}
	})
}

// rebasingOutbox is a fakeOutbox with an incarnation that can continue a
// stream while it has no events, as ledger.Rebase does.
type rebasingOutbox struct {
	*fakeOutbox
	rebases []uint64
}

func (m *rebasingOutbox) Incarnation() (string, error) { return "bbbb", nil }

func (m *rebasingOutbox) Rebase(w uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rebases = append(m.rebases, w)
	if len(m.recs) != 0 || m.confirmed != 0 {
		return ledger.ErrNotFresh
	}
	m.recs = make([]ledger.OutboxRecord, w) // numbers 1..w belong to the old ledger
	m.confirmed = w
	return nil
}

// TestSessionReplacementContinuesStream: a new ledger without events that
// gets head office's ack to another incarnation of its id continues that
// stream after the ack's watermark (once), says so in status, and sends
// its first event as watermark+1; a ledger with events keeps its numbers.
func TestSessionReplacementContinuesStream(t *testing.T) {
	ackOther := func(fb *fakeBroker, w uint64) {
		topic := protocol.AckTopic("s1", "r1")
		b := signedAck(t, topic, protocol.Ack{Register: "r1", Incarnation: "aaaa", Watermark: w})
		fb.mu.Lock()
		h := fb.onMessage
		fb.mu.Unlock()
		h(topic, b, false)
	}
	synctest.Test(t, func(t *testing.T) {
		ob := &rebasingOutbox{fakeOutbox: newFakeOutbox(0)}
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: time.Hour})
		ackOther(fb, 41)
		synctest.Wait()
		ackOther(fb, 41) // the retained ack again: no second try
		synctest.Wait()
		if st := u.Status(); st.Replaced != "aaaa" || st.ReplacedAt != 41 || len(ob.rebases) != 1 {
			t.Fatalf("status %+v, rebases %v", st, ob.rebases)
		}
		ob.add(3)
		synctest.Wait()
		contiguous(t, fb.sent(), 42, 44)
	})
	synctest.Test(t, func(t *testing.T) {
		ob := &rebasingOutbox{fakeOutbox: newFakeOutbox(2)}
		fb := &fakeBroker{}
		u := run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: time.Hour})
		ackOther(fb, 41)
		synctest.Wait()
		if st := u.Status(); st.Replaced != "" || st.OtherIncarnation != "aaaa" {
			t.Fatalf("a ledger with events continued another stream: %+v", st)
		}
		contiguous(t, fb.sent(), 1, 2)
	})
}
