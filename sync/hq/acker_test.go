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
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

type sentAck struct {
	at     time.Duration // since the test started
	ack    protocol.Ack
	qos    byte
	retain bool
	signed bool // signed with head office's key (checked)
}

// fakeStreams is the store's view of register streams as the acker reads
// it before asking for a resend (what every worker committed).
type fakeStreams struct {
	mu    sync.Mutex
	regs  map[string]hqstore.RegisterState
	reads int
}

func (f *fakeStreams) set(rs hqstore.RegisterState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regs[rs.Register] = rs
}

func (f *fakeStreams) state(register string) (hqstore.RegisterState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if rs, ok := f.regs[register]; ok {
		return rs, nil
	}
	return hqstore.RegisterState{Register: register}, nil
}

// gapAt is r1's state with a gap above wm, waiting for wm+1..to.
func gapAt(wm, to uint64) hqstore.RegisterState {
	return hqstore.RegisterState{Store: "s1", Register: "r1", Watermark: wm, Seen: to + 2, Held: 2, HeldFrom: to + 1, Gap: true, WaitFrom: wm + 1, WaitTo: to}
}

// startAcker runs an acker over a fake publisher until the test function
// returns, with GapRetry 1s and GapGrace 1s. fail, when it returns an
// error for an ack, makes the broker refuse that publish. The acker reads
// register streams from the returned fakeStreams.
func startAcker(t *testing.T, fail func(protocol.Ack) error) (*acker, *Service, func() []sentAck, *fakeStreams) {
	t0 := time.Now()
	key, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := signing.NewKeyring(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sent []sentAck
	pub := &brokertest.Publisher{PublishFunc: func(topic string, qos byte, retain bool, payload []byte) broker.Token {
		if topic != protocol.AckTopic("s1", "r1") {
			t.Errorf("ack on %s", topic)
		}
		doc := payload
		_, err := signing.Unverified(payload)
		signed := !errors.Is(err, signing.ErrUnsigned)
		if signed {
			if doc, err = ring.Open(topic, payload, protocol.MaxAckSize+signing.Overhead); err != nil {
				t.Errorf("acker published an ack head office did not sign: %v", err)
			}
		}
		a, err := protocol.DecodeAck(doc, "r1")
		if err != nil {
			t.Errorf("acker published an invalid ack: %v", err)
		}
		if fail != nil {
			if err := fail(a); err != nil {
				return brokertest.Done(err)
			}
		}
		mu.Lock()
		sent = append(sent, sentAck{time.Since(t0), a, qos, retain, signed})
		mu.Unlock()
		return brokertest.Done(nil)
	}}
	svc := &Service{opts: Options{GapRetry: time.Second, GapGrace: time.Second, Signer: key}, fleet: newFleet()}
	a := newAcker(pub, 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), svc)
	fs := &fakeStreams{regs: map[string]hqstore.RegisterState{}}
	a.state = fs.state
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, svc, func() []sentAck { mu.Lock(); defer mu.Unlock(); return slices.Clone(sent) }, fs
}

// nextSent waits on the bubble's clock (at most an hour of it) until
// more than n acks were sent and returns those after the first n.
func nextSent(t *testing.T, sent func() []sentAck, n int) []sentAck {
	t.Helper()
	for end := time.Now().Add(time.Hour); ; time.Sleep(10 * time.Millisecond) {
		synctest.Wait()
		if got := sent(); len(got) > n {
			return got[n:]
		}
		if time.Now().After(end) {
			t.Fatalf("no ack after the %d sent within an hour", n)
		}
	}
}

// TestAckerGapRequestsBackOff: head office answers what a register does,
// never on a timer. A gap is asked about once the grace has passed; while
// the register keeps sending beyond it, it is asked again after GapRetry,
// then after twice as long each time, up to a minute, and nothing is sent
// in between; after progress the grace and the wait start again. A
// register that sends nothing gets nothing more.
func TestAckerGapRequestsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, svc, sent, fs := startAcker(t, nil)
		fs.set(gapAt(10, 15))
		a.set("s1", "r1", 10, true)
		time.Sleep(200 * time.Second)
		synctest.Wait()
		got := sent()
		if len(got) != 2 || got[0].ack.Gap != 0 || got[0].at != 0 || got[1].ack.Gap != 11 || got[1].at != time.Second {
			t.Fatalf("a register silent after one gap: %+v, want the watermark at 0 and one resend request after the 1s grace", got)
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

		// Progress with the gap still open: the new watermark at once, a
		// request after the grace, and the back-off from GapRetry again.
		n = len(sent())
		t1 := 400 * time.Second
		fs.set(gapAt(20, 25))
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
		if want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}; !slices.Equal(reqs, want) {
			t.Fatalf("after progress, requests from 21 at %v after 400s, want %v", reqs, want)
		}

		// The gap filled: one plain ack, retained at QoS 0, and nothing
		// more; a register resending what head office has (it asks) gets
		// one ack again.
		n = len(sent())
		fs.set(hqstore.RegisterState{Store: "s1", Register: "r1", Watermark: 30, Seen: 30})
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

// TestAckerAsksOnlyForGapsStillOpen: with several workers, the events a
// worker misses are usually in another worker's queue. A gap closed
// (by another worker) within the grace is never asked about; one where
// another worker moved the stream on gets a new grace; one still open
// after it is asked about with the window head office waits for
// (gap..gap_to, up to the first event held beyond it), gap_to only to a
// register whose status lists it.
func TestAckerAsksOnlyForGapsStillOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, svc, sent, fs := startAcker(t, nil)
		a.set("s1", "r1", 0, true) // this worker holds 65..128
		synctest.Wait()
		fs.set(hqstore.RegisterState{Store: "s1", Register: "r1", Watermark: 128, Seen: 128}) // another applied 1..64 and the held ones
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := sent(); len(got) != 0 || fs.reads != 1 {
			t.Fatalf("a gap another worker closed within the grace: %+v (%d reads), want no request", got, fs.reads)
		}

		// Another worker moves the stream on, the gap stays open: a new
		// grace from when this worker sees it (at the end of the first,
		// 1s), so the request comes 2s after the gap opened, and it
		// names the window.
		a.set("s1", "r1", 128, true) // this worker holds 193..256
		synctest.Wait()
		time.Sleep(500 * time.Millisecond) // when the other worker commits
		fs.set(gapAt(150, 192))
		got := nextSent(t, sent, 0)
		if got[0].ack.Watermark != 128 || got[0].ack.Gap != 0 {
			t.Fatalf("first ack %+v, want this worker's watermark 128", got[0])
		}
		got = nextSent(t, sent, 1)
		if req := got[0]; req.ack.Watermark != 150 || req.ack.Gap != 151 || req.ack.GapTo != 0 || req.at-sent()[0].at != 2*time.Second {
			t.Fatalf("request %+v, %v after the gap opened; want watermark 150, gap 151 and no gap_to (the register's status does not list it) after 2s",
				req, req.at-sent()[0].at)
		}

		// A register that lists gap_to gets the window.
		st, err := protocol.EncodeStatus(protocol.Status{Store: "s1", Register: "r1", State: protocol.StateOnline, AckFields: protocol.AckFields})
		if err != nil {
			t.Fatal(err)
		}
		svc.fleet.status(protocol.StatusTopic("s1", "r1"), st, time.Now())
		a.set("s1", "r1", 128, true)
		if got = nextSent(t, sent, len(sent())); got[0].ack.Gap != 151 || got[0].ack.GapTo != 192 {
			t.Fatalf("request %+v, want gap 151..192", got[0])
		}
	})
}

// TestAckerSignsWhereTheRegisterTakesSignedAcksOnly: head office signs
// its acks to a register whose status lists protocol.AckSigned (this
// release's registers forget events only on a signed ack), and sends a
// register of the previous release (no such status) the bare ack it
// takes (docs/protocol.md "Acks", "Upgrade order").
func TestAckerSignsWhereTheRegisterTakesSignedAcksOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, svc, sent, _ := startAcker(t, nil)
		a.set("s1", "r1", 10, false)
		if got := nextSent(t, sent, 0); got[0].ack.Watermark != 10 || got[0].signed {
			t.Fatalf("ack %+v to a register of the previous release, want a bare one of 10", got[0])
		}
		st, err := protocol.EncodeStatus(protocol.Status{Store: "s1", Register: "r1", State: protocol.StateOnline, AckFields: protocol.AckFields})
		if err != nil {
			t.Fatal(err)
		}
		svc.fleet.status(protocol.StatusTopic("s1", "r1"), st, time.Now())
		a.set("s1", "r1", 20, false)
		if got := nextSent(t, sent, 1); got[0].ack.Watermark != 20 || !got[0].signed {
			t.Fatalf("ack %+v to a register that takes signed acks only, want one of 20 signed by head office", got[0])
		}
	})
}

// TestAckerGraceGrowsWithTheQueue: while messages wait in the worker's
// queue (a reconnect storm), the events a gap waits for may wait as long
// at another worker: the grace starts that much later.
func TestAckerGraceGrowsWithTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, svc, sent, fs := startAcker(t, nil)
		svc.queueDelay.Store(int64(30 * time.Second))
		fs.set(gapAt(10, 15))
		a.set("s1", "r1", 10, true)
		time.Sleep(30 * time.Second) // the register sends again after 30s
		a.set("s1", "r1", 10, true)
		got := nextSent(t, sent, 1)
		if w, req := sent()[0], got[0]; w.ack.Gap != 0 || req.ack.Gap != 11 || req.at-w.at != 31*time.Second {
			t.Fatalf("acks %+v, then %+v %v later; want the watermark, then a request after 30s + the 1s grace", w, req, req.at-w.at)
		}
	})
}

// TestAckerRetainsOnlyPlainAcksOfAnIncarnation: the plain ack of a
// register that names its incarnation is retained; a legacy register's
// (no incarnation: a fresh ledger could take it for its own) and a gap
// request are not.
func TestAckerRetainsOnlyPlainAcksOfAnIncarnation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _, sent, fs := startAcker(t, nil)
		a.set("s1", "r1", 5, false)
		synctest.Wait()
		const inc = "0123456789abcdef0123456789abcdef"
		a.setIncarnation("s1", "r1", inc)
		a.set("s1", "r1", 6, false)
		synctest.Wait()
		rs := gapAt(7, 9)
		rs.Incarnation = inc
		fs.set(rs)
		a.set("s1", "r1", 7, true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := sent()
		if len(got) != 4 || got[0].retain || !got[1].retain || !got[2].retain || got[3].retain || got[3].ack.Gap != 8 || got[3].ack.Incarnation != inc {
			t.Fatalf("acks %+v, want legacy not retained, plain ones retained, gap request not retained", got)
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
		a, svc, sent, _ := startAcker(t, func(protocol.Ack) error {
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
		a, svc, sent, _ := startAcker(t, nil)
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

// TestAckerKeepsAcksBelowReused: while events of a register's bound
// incarnation are held as reused (RegisterState.ReusedFrom), its plain
// acks and gap requests acknowledge at most the number below the first
// of them, carry the reused notice and are not retained; once none is
// held, the full watermark goes out, retained, as before.
func TestAckerKeepsAcksBelowReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _, sent, fs := startAcker(t, nil)
		const inc = "0123456789abcdef0123456789abcdef"
		a.setIncarnation("s1", "r1", inc)
		a.set("s1", "r1", 5, false)
		synctest.Wait()
		held := hqstore.RegisterState{Store: "s1", Register: "r1", Incarnation: inc, Watermark: 7, Seen: 7, Review: 2, ReusedFrom: 4}
		a.setReused(held)
		a.set("s1", "r1", 7, false)
		synctest.Wait()
		rs := gapAt(8, 10)
		rs.Incarnation, rs.Review, rs.ReusedFrom = inc, 2, 4
		fs.set(rs)
		a.set("s1", "r1", 8, true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		a.setReused(hqstore.RegisterState{Store: "s1", Register: "r1", Incarnation: inc, Watermark: 11, Seen: 11})
		a.set("s1", "r1", 11, false)
		synctest.Wait()
		got := sent()
		reused := func(s sentAck) bool {
			return s.ack.Notice != nil && s.ack.Notice.Code == protocol.NoticeReused && s.ack.Notice.Text != "" && !s.retain
		}
		if len(got) != 4 || got[0].ack.Watermark != 5 || !got[0].retain ||
			got[1].ack.Watermark != 3 || !reused(got[1]) ||
			got[2].ack.Watermark != 3 || got[2].ack.Gap != 9 || !reused(got[2]) ||
			got[3].ack.Watermark != 11 || got[3].ack.Notice != nil || !got[3].retain {
			t.Fatalf("acks %+v: want 5 retained; 3 with the reused notice, twice (the second asking from 9), not retained; then 11 retained", got)
		}
	})
}
