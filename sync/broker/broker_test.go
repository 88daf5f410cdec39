package broker_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/broker/brokertest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

const wait = 10 * time.Second

func dial(t *testing.T, o broker.Options) broker.Conn {
	t.Helper()
	o.ConnectTimeout, o.WriteTimeout, o.KeepAlive, o.PingTimeout = wait, wait, 2*time.Second, time.Second
	c, tok := broker.Dial(o)
	if !broker.WaitTimeout(tok, wait) || tok.Error() != nil {
		c.Close(0)
		t.Fatalf("dial %s: %v", o.ClientID, tok.Error())
	}
	t.Cleanup(func() { c.Close(0) })
	return c
}

// TestDialAgainstMosquitto: the paho Conn against a real broker: a
// subscription delivers to OnMessage, a QoS 1 publish completes on
// PUBACK, and Lost closes when the broker goes away. (The will is
// exercised end to end by sync/faulttest's SIGKILLed register.)
func TestDialAgainstMosquitto(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	var mu sync.Mutex
	got := map[string]string{}
	sub := dial(t, broker.Options{Brokers: []string{b.URL()}, ClientID: "sub", CleanSession: true,
		OnMessage: func(topic string, payload []byte, _ bool) {
			mu.Lock()
			got[topic] = string(payload)
			mu.Unlock()
		}})
	if tok := sub.Subscribe(map[string]byte{"t/#": 1}); !broker.WaitTimeout(tok, wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub := dial(t, broker.Options{Brokers: []string{b.URL()}, ClientID: "pub", CleanSession: true})
	if tok := pub.Publish("t/a", 1, false, []byte("hello")); !broker.WaitTimeout(tok, wait) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	seen := func(topic, want string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return got[topic] == want }
	}
	testkit.Eventually(t, wait, "the message on OnMessage", seen("t/a", "hello"))

	b.Kill()
	testkit.Eventually(t, wait, "Lost closed after the broker died", func() bool {
		select {
		case <-pub.Lost():
			return true
		default:
			return false
		}
	})
}

// TestRetainedFlagAsDelivered: the handler's retained flag is true for
// the retained message the broker hands over at subscribe and false for
// one published retained to a subscription already in place (the uplink
// tells a stale retained ack from a live one by it).
func TestRetainedFlagAsDelivered(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	pub := dial(t, broker.Options{Brokers: []string{b.URL()}, ClientID: "pub", CleanSession: true})
	publish := func(payload string) {
		t.Helper()
		if tok := pub.Publish("t/r", 1, true, []byte(payload)); !broker.WaitTimeout(tok, wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	publish("before")
	var mu sync.Mutex
	got := map[string]bool{} // payload -> retained flag
	sub := dial(t, broker.Options{Brokers: []string{b.URL()}, ClientID: "sub", CleanSession: true,
		OnMessage: func(_ string, payload []byte, retained bool) {
			mu.Lock()
			got[string(payload)] = retained
			mu.Unlock()
		}})
	if tok := sub.Subscribe(map[string]byte{"t/r": 1}); !broker.WaitTimeout(tok, wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	has := func(p string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); _, ok := got[p]; return ok }
	}
	testkit.Eventually(t, wait, "the retained message at subscribe", has("before"))
	publish("after")
	testkit.Eventually(t, wait, "the message published after subscribing", has("after"))
	mu.Lock()
	defer mu.Unlock()
	if !got["before"] || got["after"] {
		t.Fatalf("retained flags %v; want before true, after false", got)
	}
}

// TestDialRefused: nothing listens; the connect token completes with an
// error instead of hanging.
func TestDialRefused(t *testing.T) {
	c, tok := broker.Dial(broker.Options{Brokers: []string{"tcp://127.0.0.1:1"}, ClientID: "x",
		ConnectTimeout: time.Second, WriteTimeout: time.Second})
	defer c.Close(0)
	if !broker.WaitTimeout(tok, wait) {
		t.Fatal("connect to a closed port did not complete")
	}
	if tok.Error() == nil {
		t.Fatal("connect to a closed port succeeded")
	}
}

func TestWaitTimeout(t *testing.T) {
	tok := brokertest.NewToken()
	if broker.WaitTimeout(tok, time.Millisecond) {
		t.Fatal("an open token reported complete")
	}
	if tok.Error() != nil {
		t.Fatal("an open token has an error")
	}
	boom := errors.New("boom")
	tok.Complete(boom)
	tok.Complete(nil) // only the first counts
	if !broker.WaitTimeout(tok, time.Millisecond) || !errors.Is(tok.Error(), boom) {
		t.Fatalf("completed token: %v", tok.Error())
	}
}
