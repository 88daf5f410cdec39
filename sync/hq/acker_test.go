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
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

type sentAck struct {
	at  time.Duration // since the test started
	ack protocol.Ack
}

// startAcker runs an acker over a fake publisher until the test function
// returns. fail, when it returns an error for an ack, makes the broker
// refuse that publish.
func startAcker(t *testing.T, fail func(protocol.Ack) error) (*acker, *Service, func() []sentAck) {
	t0 := time.Now()
	var mu sync.Mutex
	var sent []sentAck
	pub := &brokertest.Publisher{PublishFunc: func(topic string, _ byte, _ bool, payload []byte) broker.Token {
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
		sent = append(sent, sentAck{time.Since(t0), a})
		mu.Unlock()
		return brokertest.Done(nil)
	}}
	svc := &Service{opts: Options{GapRetry: time.Second}}
	a := newAcker(pub, 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, svc, func() []sentAck { mu.Lock(); defer mu.Unlock(); return slices.Clone(sent) }
}

// TestAckerGapRequestsBackOff: a register that does not fill its gap is
// asked again after GapRetry, then after twice as long each time, up to a
// minute; after progress the wait starts again from GapRetry.
func TestAckerGapRequestsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, svc, sent := startAcker(t, nil)
		a.set("s1", "r1", 10, true)
		time.Sleep(200 * time.Second)
		synctest.Wait()
		// Between requests the watermark is repeated as a plain ack (the
		// acker keeps it pending while the gap is open).
		var at []time.Duration
		for _, s := range sent() {
			if s.ack.Watermark != 10 || (s.ack.Gap != 0 && s.ack.Gap != 11) {
				t.Fatalf("ack %+v, want watermark 10, with or without a resend request from 11", s.ack)
			}
			if s.ack.Gap != 0 {
				at = append(at, s.at)
			}
		}
		want := []time.Duration{0, 1, 3, 7, 15, 31, 63, 123, 183}
		for i := range want {
			want[i] *= time.Second
		}
		if !slices.Equal(at, want) {
			t.Fatalf("resend requests at %v, want %v (GapRetry doubling up to a minute)", at, want)
		}
		if st := svc.Status(); st.GapRequests != uint64(len(want)) || st.AcksSent != uint64(len(sent())) {
			t.Fatalf("status %+v", st)
		}

		// Progress with the gap still open: the request already backed off
		// comes when its wait ends (183s + 1m), then the wait starts again
		// from GapRetry, as the register is making progress.
		n := len(sent())
		a.set("s1", "r1", 20, true)
		time.Sleep(50 * time.Second) // to 250s
		synctest.Wait()
		var reqs []time.Duration
		for _, s := range sent()[n:] {
			if s.ack.Watermark != 20 {
				t.Fatalf("after progress: ack %+v, want watermark 20", s.ack)
			}
			if s.ack.Gap == 21 {
				reqs = append(reqs, s.at)
			}
		}
		if want := []time.Duration{243 * time.Second, 244 * time.Second, 246 * time.Second, 250 * time.Second}; !slices.Equal(reqs, want) {
			t.Fatalf("after progress, requests from 21 at %v, want %v", reqs, want)
		}

		// The gap filled: one plain ack, and nothing more.
		n = len(sent())
		a.set("s1", "r1", 30, false)
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := sent()[n:]; len(got) != 1 || got[0].ack != (protocol.Ack{V: protocol.Version, Register: "r1", Watermark: 30}) {
			t.Fatalf("after the gap filled: %+v, want one plain ack of 30", got)
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
