package uplink_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/broker/brokertest"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestCatchUpAskedOnTheFirstLiveAck: the session's second catch-up request
// goes out on head office's first live ack after the session sent events,
// not on the retained ack the broker hands over at subscribe, even when
// paho runs that one's handler after the session's first send (handlers run
// on goroutines of their own); and only once a session. With a fake broker
// in a bubble, so the order of the deliveries is the test's (found by a
// review: before the RETAIN flag reached the uplink, the retained ack spent
// the request).
func TestCatchUpAskedOnTheFirstLiveAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(3)
		ob.confirmed = 2 // head office acked 2 in an earlier session; that ack is retained
		fb := &fakeBroker{t: t}
		catchUps := runCountingCatchUps(t, ob, fb)
		if n := len(fb.sent()); n == 0 || catchUps.Load() != 1 {
			t.Fatalf("at connect: %d events messages, %d catch-up requests; want some and 1", n, catchUps.Load())
		}
		fb.retained = true
		fb.ack(2, 0) // the retained ack, handled after the first send
		synctest.Wait()
		if n := catchUps.Load(); n != 1 {
			t.Fatalf("%d catch-up requests after the retained ack; want still 1", n)
		}
		fb.retained = false
		fb.ack(3, 0) // head office's first live ack of the session
		synctest.Wait()
		if n := catchUps.Load(); n != 2 {
			t.Fatalf("%d catch-up requests after the first live ack; want 2", n)
		}
		fb.ack(3, 0) // a later live ack
		synctest.Wait()
		if n := catchUps.Load(); n != 2 {
			t.Fatalf("%d catch-up requests after a second live ack; want still 2 (once a session)", n)
		}
		time.Sleep(time.Minute) // past Options.CatchUpAgain: the session asked already
		synctest.Wait()
		if n := catchUps.Load(); n != 2 {
			t.Fatalf("%d catch-up requests a minute on; want still 2 (once a session)", n)
		}
	})
}

// runCountingCatchUps runs an uplink over ob and fb in the test's bubble
// until the test ends, and counts the catch-up requests it publishes;
// it returns once the uplink is connected and idle.
func runCountingCatchUps(t *testing.T, ob *fakeOutbox, fb *fakeBroker) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	u, err := uplink.New(ob, &uplink.Options{Brokers: []string{"tcp://fake:1883"}, Store: "s1", Register: "r1",
		Dial: countCatchUps(fb, &n), AckTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	synctest.Wait()
	return &n
}

// countCatchUps dials fb and counts the catch-up requests published.
func countCatchUps(fb *fakeBroker, n *atomic.Int32) func(o broker.Options) (broker.Conn, broker.Token) {
	return func(o broker.Options) (broker.Conn, broker.Token) {
		c, tok := fb.dial(o)
		bc := c.(*brokertest.Conn)
		pub := bc.PublishFunc
		bc.PublishFunc = func(topic string, q byte, r bool, p []byte) broker.Token {
			if strings.HasSuffix(topic, "/catchup") {
				n.Add(1)
			}
			return pub(topic, q, r, p)
		}
		return bc, tok
	}
}

// TestCatchUpAskedAgainWhenQuiet: a register with nothing to send gets no
// ack, so it asks a second time about Options.CatchUpAgain (default 30 s,
// 24-36 s with its jitter) after connecting, once a session (its request
// at connect may have reached nobody after a broker restart); a new
// session asks at connect and again.
func TestCatchUpAskedAgainWhenQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(0)
		fb := &fakeBroker{t: t}
		catchUps := runCountingCatchUps(t, ob, fb)
		step := func(d time.Duration, want int32, when string) {
			t.Helper()
			time.Sleep(d)
			synctest.Wait()
			if n := catchUps.Load(); n != want {
				t.Fatalf("%s: %d catch-up requests, want %d", when, n, want)
			}
		}
		step(0, 1, "at connect")
		step(23*time.Second, 1, "23 s after connecting")
		step(14*time.Second, 2, "37 s after connecting")
		step(5*time.Minute, 2, "5 minutes on")
		fb.dropConnection()
		step(10*time.Second, 3, "10 s after the connection dropped")
		step(10*time.Second, 3, "20 s after the connection dropped")
		step(30*time.Second, 4, "50 s after the connection dropped")
		if len(fb.sent()) != 0 {
			t.Fatalf("a register with nothing to send sent %d events messages", len(fb.sent()))
		}
	})
}

// TestCatchUpBusyRegisterWaitsForTheLiveAck: a register that sent events
// leaves its second request to head office's first live ack, however
// late: after a broker restart head office (clean sessions) may subscribe
// long after the register reconnected, and a request on the timer would
// reach nobody and leave that ack nothing to do (found by review: head
// office back at 40 s, requests at 0 and 30 s, none after).
func TestCatchUpBusyRegisterWaitsForTheLiveAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob := newFakeOutbox(3)
		fb := &fakeBroker{t: t}
		catchUps := runCountingCatchUps(t, ob, fb)
		if len(fb.sent()) == 0 || catchUps.Load() != 1 {
			t.Fatalf("at connect: %d events messages, %d catch-up requests; want some and 1", len(fb.sent()), catchUps.Load())
		}
		time.Sleep(41 * time.Second) // head office subscribes at 40 s
		synctest.Wait()
		if n := catchUps.Load(); n != 1 {
			t.Fatalf("%d catch-up requests 41 s after connecting, before any ack; want 1 (the live ack asks)", n)
		}
		fb.ack(3, 0) // head office's first live ack
		synctest.Wait()
		if n := catchUps.Load(); n != 2 {
			t.Fatalf("%d catch-up requests after the first live ack; want 2", n)
		}
	})
}
