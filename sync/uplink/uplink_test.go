package uplink_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

func TestNewRejectsBadOptions(t *testing.T) {
	l := openLedger(t, "r1")
	tests := []struct {
		name string
		o    uplink.Options
	}{
		{"no broker", uplink.Options{Store: "s1", Register: "r1"}},
		{"no store", uplink.Options{Brokers: []string{"tcp://127.0.0.1:1"}, Register: "r1"}},
		{"bad register", uplink.Options{Brokers: []string{"tcp://127.0.0.1:1"}, Store: "s1", Register: "r/1"}},
		{"batch too big", uplink.Options{Brokers: []string{"tcp://127.0.0.1:1"}, Store: "s1", Register: "r1", BatchEvents: protocol.MaxBatch + 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := uplink.New(l, &tc.o); !errors.Is(err, uplink.ErrOptions) {
				t.Fatalf("err = %v, want ErrOptions", err)
			}
		})
	}
	if _, err := uplink.New(nil, &uplink.Options{Brokers: []string{"x"}, Store: "s", Register: "r"}); !errors.Is(err, uplink.ErrOptions) {
		t.Fatalf("nil outbox: %v", err)
	}
}

func TestDrainConfirmsOnlyWhatHeadOfficeAcked(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1")
	record(t, l, "a", 700)
	n := lastSeq(t, l)
	hq := startAckHQ(t, b.URL())
	hq.paused.Store(true) // receives but never acks
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, BatchEvents: 50, AckTimeout: time.Hour})
	testkit.Eventually(t, wait, "everything published", func() bool { return u.Status().Published == n })
	if w, _ := l.Confirmed(); w != 0 {
		t.Fatalf("confirmed %d on PUBACK alone", w)
	}
	if st := u.Status(); st.Pending != int(n) || !st.Online {
		t.Fatalf("status %v", st)
	}
	hq.paused.Store(false)
	record(t, l, "b", 10) // new events wake the uplink; acks then cover all
	n = lastSeq(t, l)
	testkit.Eventually(t, wait, "head office has all", func() bool { return hq.watermark("r1") == n })
	testkit.Eventually(t, wait, "ledger confirmed", func() bool { w, _ := l.Confirmed(); return w == n })
	hq.checkExactlyOnce(t, "r1", 1, n) // the paused deliveries were lost: recovered through the gap request
	testkit.Eventually(t, wait, "status watermark", func() bool { return u.Status().Watermark == n })
	st := u.Status()
	if st.Pending != 0 || st.Watermark != n || st.LastAck.IsZero() {
		t.Fatalf("status after drain: %v", st)
	}
	if !strings.HasPrefix(st.String(), "online, 0 pending") {
		t.Fatalf("status line %q", st.String())
	}
}

// TestIdleIsNotSilence: a register idle for longer than AckTimeout does not
// treat the next sale as unanswered (no spurious resend or probe).
func TestIdleIsNotSilence(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1")
	hq := startAckHQ(t, b.URL())
	// AckTimeout is long enough that an ack slowed by a loaded machine
	// is not late (a resend then would be right); the idle period is
	// longer still, which is what the test is about.
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, AckTimeout: time.Second})
	testkit.Eventually(t, wait, "enrolment confirmed", func() bool { w, _ := l.Confirmed(); return w == 1 })
	time.Sleep(2500 * time.Millisecond) // idle for longer than AckTimeout, on purpose
	record(t, l, "a", 1)
	testkit.Eventually(t, wait, "sale confirmed", func() bool { w, _ := l.Confirmed(); return w == 2 })
	hq.checkExactlyOnce(t, "r1", 1, 2)
	if r := u.Status().Resends; r != 0 {
		t.Fatalf("%d resends after an idle period", r)
	}
	hq.mu.Lock()
	defer hq.mu.Unlock()
	if hq.dups != 0 {
		t.Fatalf("head office saw %d duplicates", hq.dups)
	}
}

// TestMaxUnackedBoundsWhatIsOutstanding: with head office silent, the
// register publishes at most MaxUnacked events beyond the watermark.
func TestMaxUnackedBoundsWhatIsOutstanding(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1")
	record(t, l, "a", 500)
	hq := startAckHQ(t, b.URL())
	hq.paused.Store(true)
	// The uplink's status refreshes are the barrier: each is published
	// in a turn of its loop after that turn's publishing, so once two
	// have said 506 pending, a turn has published (or not) with the new
	// events in the ledger.
	var after atomic.Int32 // status refreshes that counted the new events
	watch := publisher(t, b.URL())
	if tok := watch.Subscribe(protocol.StatusTopic("s1", "r1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if st, err := protocol.DecodeStatus(m.Payload(), "s1", "r1"); err == nil && !m.Retained() && st.Pending == 506 {
			after.Add(1)
		}
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, BatchEvents: 10, MaxUnacked: 120, AckTimeout: time.Hour,
		StatusInterval: 20 * time.Millisecond})
	testkit.Eventually(t, wait, "limit reached", func() bool { return u.Status().Published >= 120 })
	record(t, l, "b", 5) // a notification: the uplink looks again and must still hold back
	testkit.Eventually(t, wait, "new events seen", func() bool { return u.Status().Pending == 506 })
	testkit.Eventually(t, wait, "two status refreshes counting them", func() bool { return after.Load() >= 2 })
	if p := u.Status().Published; p != 120 {
		t.Fatalf("published up to %d with MaxUnacked 120 and no ack", p)
	}
}
