package faulttest_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// proxy starts a toxiproxy on loopback in front of the broker.
func proxy(t *testing.T, upstream string) *toxiproxy.Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "mqtt", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func blackhole(t *testing.T, p *toxiproxy.Proxy) {
	t.Helper()
	for _, stream := range []string{"upstream", "downstream"} {
		// timeout 0: nothing gets through and the connection is never closed,
		// a half-open link as after a NAT or Wi-Fi drop.
		spec, _ := json.Marshal(map[string]any{"name": "blackhole-" + stream, "type": "timeout", "stream": stream,
			"toxicity": 1.0, "attributes": map[string]any{"timeout": 0}})
		if _, err := p.Toxics.AddToxicJson(bytes.NewReader(spec)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHalfOpenConnection: the register's link is black-holed. Every wait
// times out (no PUBACK, no ping response, no CONNACK), the register reports
// offline and keeps recording, paho and uplink goroutines do not pile up
// across the failed reconnects, and when the link heals everything drains.
func TestHalfOpenConnection(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	o := startOffice(t, b.URL())
	p := proxy(t, b.Addr())
	base := linkGoroutines()
	r := newRegister(t, "r1")
	r.start([]string{"tcp://" + p.Listen}, uplink.Options{OpTimeout: 500 * time.Millisecond, KeepAlive: time.Second,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	r.record(200)
	testkit.Eventually(t, wait, "first drain", func() bool { c, _ := r.l.Confirmed(); return c == r.last() })
	online := linkGoroutines()

	blackhole(t, p)
	r.record(300)
	testkit.Eventually(t, wait, "half-open link noticed", func() bool { return !r.u.Status().Online })
	sessions := r.u.Status().Sessions
	// Let it fail to reconnect many times.
	testkit.Eventually(t, wait, "several failed reconnects", func() bool { return r.u.Status().LastError != "" })
	deadline := time.Now().Add(3 * time.Second)
	peak := 0
	for time.Now().Before(deadline) {
		peak = max(peak, linkGoroutines())
		time.Sleep(50 * time.Millisecond) // sampling interval
	}
	if peak > online+8 {
		t.Fatalf("link goroutines grew from %d online to %d while black-holed", online, peak)
	}
	if s := r.u.Status(); s.Online || s.Pending < 300 || s.Sessions != sessions {
		t.Fatalf("status while black-holed: %v (sessions %d, was %d)", s, s.Sessions, sessions)
	}
	t.Logf("while black-holed: %v", r.u.Status())

	p.Toxics.ResetToxics(t.Context())
	r.record(100)
	verify(t, o, r)
	r.stopU()
	testkit.Eventually(t, wait, "link goroutines back to the baseline", func() bool { return linkGoroutines() <= base })
}

// TestDuplicatedAndReordered: besides the register's own stream, a rogue
// replayer publishes the same events again as single-event messages,
// duplicated and shuffled (a new shuffle each run, its seed logged;
// TEST_SEED=n replays one). Head office applies each event once, in order.
func TestDuplicatedAndReordered(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	o := startOffice(t, b.URL())
	r := newRegister(t, "r1")
	r.record(600)
	recs, err := r.l.Outbox(0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for _, rec := range recs {
		p, err := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord(store, "r1", rec)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, p, p) // every event twice
	}
	seed, _ := testkit.Seed(t) // TEST_SEED=n replays the shuffle
	rng := rand.New(rand.NewPCG(seed, 2))
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	rogue := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("replayer").SetAutoReconnect(false))
	if tok := rogue.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer rogue.Disconnect(100)
	var toks []mqtt.Token
	for i, m := range msgs {
		toks = append(toks, rogue.Publish(protocol.EventsTopic(store, "r1"), 1, false, m))
		if i == len(msgs)/3 {
			r.start([]string{b.URL()}, uplink.Options{BatchEvents: 7})
		}
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("replay: %v", tok.Error())
		}
	}
	r.record(100)
	verify(t, o, r)
}
