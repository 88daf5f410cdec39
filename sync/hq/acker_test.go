package hq

// Logic tests of the acker (acks after commit, resend requests and their
// back-off) without a broker: it publishes through a brokertest.Publisher
// and runs in a testing/synctest bubble, so its GapRetry ticker runs on the
// bubble's fake clock.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/broker/brokertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

type sentAck struct {
	at     time.Duration // since the test started
	ack    protocol.Ack
	qos    byte
	retain bool
}

// startAcker runs an acker over a fake publisher until the test function
// returns. fail, when it returns an error for an ack, makes the broker
// refuse that publish.
func startAcker(t *testing.T, fail func(protocol.Ack) error) (*acker, *Service, func() []sentAck) {
	t0 := time.Now()
	var mu sync.Mutex
	var sent []sentAck
	pub := &brokertest.Publisher{PublishFunc: func(topic string, qos byte, retain bool, payload []byte) broker.Token {
		if topic != protocol.AckTopic("s1", "r1") {
			t.Errorf("ack on %s", topic)
		}
		a, err := protocol.DecodeAck(payload, "r1")
		if err != nil {
			t.Errorf("acker published an invalid ack: %v", err)
		}
		if fail != nil {
			if err := fail(a); err != nil {
				return brokertest.Done(err)
			}
		}
		mu.Lock()
		sent = append(sent, sentAck{time.Since(t0), a, qos, retain})
		mu.Unlock()
		return brokertest.Done(nil)
	}}
	svc := &Service{opts: Options{GapRetry: time.Second}, fleet: newFleet()}
	a := newAcker(pub, 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, svc, func() []sentAck { mu.Lock(); defer mu.Unlock(); return slices.Clone(sent) }
}

// TestAckerGapRequestsBackOff: head office answers what a register does,
// never on a timer. A gap is asked about once; while the register keeps
// sending beyond it, it is asked again after GapRetry, then after twice as
// long each time, up to a minute, and nothing is sent in between; after
// progress the wait starts again from GapRetry. A register that sends
// nothing gets nothing.
func TestAckerGapRequestsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, svc, sent := startAcker(t, nil)
		a.set("s1", "r1", 10, true)
		time.Sleep(200 * time.Second)
		synctest.Wait()
		if got := sent(); len(got) != 1 || got[0].ack.Gap != 11 || got[0].at != 0 {
			t.Fatalf("a register silent after one gap: %+v, want one resend request at 0", got)
		}
		// The register keeps sending beyond the gap, once a second.
		n := len(sent())
		for range 200 {
			a.set("s1", "r1", 10, true)
			time.Sleep(time.Second)
			synctest.Wait()
		}
		var at []time.Duration
		for _, s := range sent()[n:] {
			if s.ack.Watermark != 10 || s.ack.Gap != 11 {
				t.Fatalf("ack %+v, want only resend requests from 11 (no plain acks while nothing changed)", s.ack)
			}
			if s.qos != 0 || s.retain {
				t.Fatalf("gap request sent qos %d retained %v, want qos 0 not retained", s.qos, s.retain)
			}
			at = append(at, s.at-200*time.Second)
		}
		want := []time.Duration{0, 2, 6, 14, 30, 62, 122, 182}
		for i := range want {
			want[i] *= time.Second
		}
		if !slices.Equal(at, want) {
			t.Fatalf("resend requests at %v, want %v (GapRetry doubling up to a minute)", at, want)
		}
		if st := svc.Status(); st.GapRequests != uint64(len(want)+1) || st.AcksSent != uint64(len(sent())) {
			t.Fatalf("status %+v", st)
		}

		// Progress with the gap still open: the new watermark at once, and
		// the next request when the backed-off wait ends; then the wait
		// starts again from GapRetry, as the register makes progress.
		n = len(sent())
		t1 := 400 * time.Second
		for range 60 {
			a.set("s1", "r1", 20, true)
			time.Sleep(time.Second)
			synctest.Wait()
		}
		var reqs []time.Duration
		for i, s := range sent()[n:] {
			if s.ack.Watermark != 20 || (i == 0) != (s.ack.Gap == 0) {
				t.Fatalf("after progress: ack %d %+v, want watermark 20, plain first, then requests", i, s.ack)
			}
			if s.ack.Gap == 21 {
				reqs = append(reqs, s.at-t1)
			}
		}
		// The last request from 11 was at 382s; it waits a minute (442s).
		if want := []time.Duration{42 * time.Second, 43 * time.Second, 45 * time.Second, 49 * time.Second, 57 * time.Second}; !slices.Equal(reqs, want) {
			t.Fatalf("after progress, requests from 21 at %v after 400s, want %v", reqs, want)
		}

		// The gap filled: one plain ack, retained at QoS 0, and nothing
		// more; a register resending what head office has (it asks) gets
		// one ack again.
		n = len(sent())
		a.set("s1", "r1", 30, false)
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := sent()[n:]; len(got) != 1 || got[0].ack != (protocol.Ack{V: protocol.Version, Register: "r1", Watermark: 30}) || got[0].qos != 0 {
			t.Fatalf("after the gap filled: %+v, want one plain ack of 30 at QoS 0", got)
		}
		a.set("s1", "r1", 30, false)
		synctest.Wait()
		if got := sent()[n:]; len(got) != 2 || got[1].ack.Watermark != 30 {
			t.Fatalf("after a resend of known events: %+v, want a second ack of 30", got)
		}
	})
}

// TestAckerRetainsOnlyPlainAcksOfAnIncarnation: the plain ack of a
// register that names its incarnation is retained; a legacy register's
// (no incarnation: a fresh ledger could take it for its own) and a gap
// request are not.
func TestAckerRetainsOnlyPlainAcksOfAnIncarnation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _, sent := startAcker(t, nil)
		a.set("s1", "r1", 5, false)
		synctest.Wait()
		a.setIncarnation("s1", "r1", "0123456789abcdef0123456789abcdef")
		a.set("s1", "r1", 6, false)
		synctest.Wait()
		a.set("s1", "r1", 7, true)
		synctest.Wait()
		got := sent()
		if len(got) != 3 || got[0].retain || !got[1].retain || got[2].retain || got[2].ack.Gap != 8 {
			t.Fatalf("acks %+v, want legacy not retained, plain retained, gap request not retained", got)
		}
		for _, s := range got {
			if s.qos != 0 {
				t.Fatalf("ack %+v at QoS %d, want 0", s.ack, s.qos)
			}
		}
	})
}

// TestAckerRetriesUnconfirmedAck: an ack the broker does not confirm is
// sent again at the next tick, with the newest watermark.
func TestAckerRetriesUnconfirmedAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		a, svc, sent := startAcker(t, func(protocol.Ack) error {
			if down.Load() {
				return errors.New("not connected")
			}
			return nil
		})
		a.set("s1", "r1", 10, false)
		synctest.Wait()
		if n := len(sent()); n != 0 || svc.Status().AcksSent != 0 {
			t.Fatalf("%d acks counted as sent with the broker refusing", n)
		}
		a.set("s1", "r1", 12, false)
		synctest.Wait()
		down.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := sent(); len(got) != 1 || got[0].ack.Watermark != 12 {
			t.Fatalf("after the broker came back: %+v, want one ack of 12", got)
		}
	})
}

// TestAckerSendsPolicyNoticeOnlyToRegistersThatAcceptIt: a register whose
// status does not list the "policy" notice code (the previous release
// refuses a whole ack with a code it does not know, and would never
// confirm its events) gets its acks without that notice; one that lists
// it gets the notice.
func TestAckerSendsPolicyNoticeOnlyToRegistersThatAcceptIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, svc, sent := startAcker(t, nil)
		a.setPolicy(hqstore.RegisterState{Store: "s1", Register: "r1", PolicyHeld: 2, PolicyNote: "over the cap"})
		a.set("s1", "r1", 5, false)
		synctest.Wait()
		st, err := protocol.EncodeStatus(protocol.Status{Store: "s1", Register: "r1", State: protocol.StateOnline, Notices: protocol.NoticeCodes})
		if err != nil {
			t.Fatal(err)
		}
		svc.fleet.status(protocol.StatusTopic("s1", "r1"), st, time.Now())
		a.set("s1", "r1", 6, false)
		synctest.Wait()
		got := sent()
		if len(got) != 2 || got[0].ack.Notice != nil || got[1].ack.Notice == nil || got[1].ack.Notice.Code != protocol.NoticePolicy {
			t.Fatalf("acks %+v: want the first without a notice (no status listing it), the second with the policy notice", got)
		}
	})
}
