package uplink_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

const wait = 20 * time.Second

// openLedger opens a register ledger with one member; when the test ends
// (after the uplink stopped) the ledger's Check runs (ledgertest.Open).
func openLedger(t testing.TB, register string) *ledger.Ledger {
	t.Helper()
	l := ledgertest.Open(t, &ledger.Options{Register: register})
	if _, err := l.Enrol(context.Background(), ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"card-1"}}); err != nil {
		t.Fatal(err)
	}
	return l
}

// record adds n point adjustments of +1 with 8 concurrent callers (the
// ledger merges them into group commits) and returns the ledger's last seq.
func record(t testing.TB, l *ledger.Ledger, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	per := (n + 7) / 8
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g * per; i < min(n, (g+1)*per); i++ {
				if _, err := l.Adjust(context.Background(), fmt.Sprintf("%s-%d", prefix, i), "m1", 1, "test", "op"); err != nil {
					failed.Store(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// ackHQ is a minimal head office for the uplink's own tests: it applies
// each register's events strictly in order, ignores duplicates, asks for a
// resend on a gap and acks the watermark. The fault tests use the real
// sync/hq instead.
type ackHQ struct {
	t      testing.TB
	cl     mqtt.Client
	mu     sync.Mutex
	wm     map[string]uint64
	order  map[string][]uint64
	dups   int
	gaps   int
	drop   func(first uint64) bool // drop a message (before applying) when true
	paused atomic.Bool
}

func startAckHQ(t testing.TB, url string) *ackHQ {
	t.Helper()
	return startAckHQWith(t, url, func(*mqtt.ClientOptions) {})
}

func startAckHQTLS(t testing.TB, url string, cfg *tls.Config) *ackHQ {
	t.Helper()
	return startAckHQWith(t, url, func(o *mqtt.ClientOptions) { o.SetTLSConfig(cfg) })
}

func startAckHQAuth(t testing.TB, url, user, pass string) *ackHQ {
	t.Helper()
	return startAckHQWith(t, url, func(o *mqtt.ClientOptions) { o.SetUsername(user).SetPassword(pass) })
}

func startAckHQWith(t testing.TB, url string, configure func(*mqtt.ClientOptions)) *ackHQ {
	t.Helper()
	h := &ackHQ{t: t, wm: map[string]uint64{}, order: map[string][]uint64{}}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("ackhq-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).SetOrderMatters(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOnConnectHandler(func(c mqtt.Client) {
			c.Subscribe(protocol.AllEventsFilter, 1, h.handle) // token checked by the apply path
		})
	configure(o)
	h.cl = mqtt.NewClient(o)
	if tok := h.cl.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("ackhq connect: %v", tok.Error())
	}
	t.Cleanup(func() { h.cl.Disconnect(100) })
	return h
}

func (h *ackHQ) handle(c mqtt.Client, m mqtt.Message) {
	if h.paused.Load() {
		return
	}
	tp, err := protocol.ParseTopic(m.Topic())
	if err != nil {
		h.t.Errorf("ackhq: %v", err)
		return
	}
	evs, err := protocol.DecodeEvents(m.Payload(), tp.Store, tp.Register)
	if err != nil {
		h.t.Errorf("ackhq: %v", err)
		return
	}
	first, _ := evs[0].Seq()
	h.mu.Lock()
	if h.drop != nil && h.drop(first) {
		h.mu.Unlock()
		return
	}
	w := h.wm[tp.Register]
	var gap uint64
	for _, e := range evs {
		s, _ := e.Seq()
		switch {
		case s <= w:
			h.dups++
		case s == w+1:
			w = s
			h.order[tp.Register] = append(h.order[tp.Register], s)
		default:
			gap = w + 1
		}
	}
	if gap != 0 {
		h.gaps++
	}
	h.wm[tp.Register] = w
	h.mu.Unlock()
	topic := protocol.AckTopic(tp.Store, tp.Register)
	c.Publish(topic, 1, false, signedAck(h.t, topic, protocol.Ack{Register: tp.Register, Watermark: w, Gap: gap})) // QoS 1: a lost ack is repeated by the next one
}

func (h *ackHQ) watermark(reg string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wm[reg]
}

// checkExactlyOnce asserts the register's events 1..n were applied once each, in order.
func (h *ackHQ) checkExactlyOnce(t testing.TB, reg string, first, n uint64) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	got := h.order[reg]
	if uint64(len(got)) != n-first+1 {
		t.Fatalf("%s: applied %d events, want %d", reg, len(got), n-first+1)
	}
	for i, s := range got {
		if s != first+uint64(i) {
			t.Fatalf("%s: event %d is seq %d, want %d", reg, i, s, first+uint64(i))
		}
	}
}

func startUplink(t testing.TB, ob uplink.Outbox, o uplink.Options) (*uplink.Uplink, func()) {
	t.Helper()
	if o.Store == "" {
		o.Store = "s1"
	}
	if o.Register == "" {
		o.Register = "r1"
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 3 * time.Second
	}
	if o.Keys == nil {
		o.Keys = hqRing
	}
	if o.BackoffMax == 0 {
		o.BackoffMin, o.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}
	u, err := uplink.New(ob, &o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("Run did not return within %v of cancel", wait)
			}
		})
	}
	t.Cleanup(stop)
	return u, stop
}

func lastSeq(t testing.TB, l *ledger.Ledger) uint64 {
	t.Helper()
	n, _, err := l.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.Confirmed()
	if err != nil {
		t.Fatal(err)
	}
	return w + uint64(n)
}

// hqKey is head office's signing key in these tests; registers pin hqRing.
var hqKey, hqRing = func() (*signing.Signer, *signing.Keyring) {
	k, err := signing.Generate(nil)
	if err != nil {
		panic(err)
	}
	r, err := signing.NewKeyring(k.Public())
	if err != nil {
		panic(err)
	}
	return k, r
}()

// malloryKey is a key no register pins: documents it signs are refused.
var malloryKey = func() *signing.Signer {
	k, err := signing.Generate(nil)
	if err != nil {
		panic(err)
	}
	return k
}()

// sealWith signs doc for topic with k.
func sealWith(k *signing.Signer, topic string, doc []byte) []byte {
	b, err := k.Seal(topic, doc)
	if err != nil {
		panic(err)
	}
	return b
}

// sealed signs payload for topic with hqKey when it is JSON (a document
// head office would send) and returns it unchanged otherwise.
func sealed(topic string, payload []byte) []byte {
	if !json.Valid(payload) {
		return payload
	}
	return sealWith(hqKey, topic, payload)
}

// signedAck is a as head office sends it on topic: encoded and signed
// with hqKey.
func signedAck(t testing.TB, topic string, a protocol.Ack) []byte {
	t.Helper()
	b, err := protocol.EncodeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	return sealWith(hqKey, topic, b)
}
