package faulttest_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

const (
	benchEvents = 100_000
	benchWindow = 32
	benchBatch  = 64
	// benchRounds is how many times BenchmarkDrainVsRawPaho drains to the
	// in-memory acknowledger and sends raw batched, alternating.
	benchRounds = 5
)

// backlog records n adjustments with 64 concurrent callers, so the
// ledger's group commit makes the setup fast; it is not measured.
func backlog(b testing.TB, r *register, n int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := g; k < n; k += 64 {
				if _, err := r.l.Adjust(context.Background(), fmt.Sprintf("bench-%d", k), r.members[k%len(r.members)], 1, "bench", "op"); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// rawPublish is the physical floor: a bare paho QoS 1 publish loop with the
// same in-flight window, to the same broker, with a bare subscriber
// receiving, timed until every PUBACK is in.
func rawPublish(b testing.TB, url string, payloads [][]byte) time.Duration {
	b.Helper()
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("raw-sub").SetAutoReconnect(false))
	if tok := sub.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	var mu sync.Mutex
	got := 0
	if tok := sub.Subscribe("bench/raw/#", 1, func(mqtt.Client, mqtt.Message) { mu.Lock(); got++; mu.Unlock() }); !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("raw-pub").SetAutoReconnect(false).
		SetStore(mqtt.NewMemoryStore()))
	if tok := pub.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	start := time.Now()
	var q []mqtt.Token
	for _, p := range payloads {
		if len(q) == benchWindow {
			if !q[0].WaitTimeout(wait) || q[0].Error() != nil {
				b.Fatalf("raw publish: %v", q[0].Error())
			}
			q = q[1:]
		}
		q = append(q, pub.Publish("bench/raw/events", 1, false, p))
	}
	for _, t := range q {
		if !t.WaitTimeout(wait) || t.Error() != nil {
			b.Fatalf("raw publish: %v", t.Error())
		}
	}
	d := time.Since(start)
	testkit.Eventually(b, wait, "raw subscriber received all", func() bool { mu.Lock(); defer mu.Unlock(); return got >= len(payloads) })
	return d
}

// BenchmarkDrainVsRawPaho drains a 100,000-event backlog through the uplink
// into a local mosquitto, against the bare paho loop publishing the same
// 64-event batches with the same window to the same broker, in the same
// run. It prints
//
//	RATIO drain_vs_raw_paho: end to end, head office applying durably and
//	  acknowledging (timed until the register has confirmed the last
//	  event), events/s over raw paho's events/s sending the same batches.
//	RATIO uplink_vs_raw_batched: the uplink draining to an in-memory
//	  acknowledger (head office's disk out of the way; like the raw
//	  subscriber it decodes nothing, it reads each message's first and
//	  last sequence number) over the same raw batched floor: the
//	  uplink's own cost (goal >= 0.7).
//	REPORT drain_vs_raw_paho_single_msgs: end to end over raw paho with
//	  one event per message (the definition before issue 14; batching
//	  alone passes it).
//	REPORT drain_memory_acker_cpu_per_event and
//	  raw_paho_qos1_batched_cpu_per_event: this process's CPU time per
//	  event in the two runs RATIO uplink_vs_raw_batched compares (the
//	  uplink with its ledger reads and the acknowledger; raw paho's
//	  publisher and subscriber). On a loaded machine the rates, and the
//	  ratio, swing with the load; these much less.
//
// The in-memory drain and the raw batched floor run in alternating rounds
// (benchRounds of each, A B A B ..., every round the same workload: a
// fresh register's 100,000-event backlog, built before its drain and not
// timed, then the same batches raw): RATIO uplink_vs_raw_batched is the
// median of the rounds' ratios (each of a drain and the raw run right
// after it, in the same seconds' load), and the rates and CPU per event
// printed are the medians of the rounds' (drain_vs_raw_paho is over the
// median raw batched rate). With one round each the ratio swung 0.39-0.94
// between runs on a shared 2-core machine: a burst of load on it slowed
// one side of the ratio and not the other.
func BenchmarkDrainVsRawPaho(b *testing.B) {
	for range b.N {
		bm := mosquittotest.Start(b, &mosquittotest.Options{MaxQueuedMessages: 100000})
		o := startOffice(b, bm.URL())
		r := newRegister(b, "r1")
		firstSession(b, r, bm.URL())
		backlog(b, r, benchEvents)
		n := r.last()
		recs, err := r.l.Outbox(0, int(n))
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) < benchEvents {
			b.Fatalf("outbox holds %d events, want at least the backlog's %d", len(recs), benchEvents)
		}
		single := make([][]byte, 0, len(recs))
		var batched [][]byte
		for i, rec := range recs {
			p, _ := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord(store, "r1", rec)})
			single = append(single, p)
			if i%benchBatch == 0 {
				var evs []protocol.Event
				for _, x := range recs[i:min(i+benchBatch, len(recs))] {
					evs = append(evs, protocol.FromRecord(store, "r1", x))
				}
				p, _ := protocol.EncodeEvents(evs)
				batched = append(batched, p)
			}
		}

		start := time.Now()
		r.start([]string{bm.URL()}, uplink.Options{Window: benchWindow, BatchEvents: benchBatch, AckTimeout: 5 * time.Second, MaxUnacked: 16384})
		testkit.Eventually(b, 5*wait, "backlog drained and confirmed", func() bool { c, _ := r.l.Confirmed(); return c == n })
		drain := time.Since(start)
		r.stopU()
		o.stop()

		raw := rawPublish(b, bm.URL(), single)

		// The same drain with an in-memory acknowledger (acks on receipt,
		// nothing durable): how fast the uplink itself is when head office's
		// disk is not the limit; alternating with raw paho sending the same
		// batches, each round's register new (its backlog built first).
		var memRates, memCPUs, rawRates, rawCPUs, ratios []float64
		for round := range benchRounds {
			r2 := newRegister(b, fmt.Sprintf("r%d", 2+round))
			stopAcker := memAcker(b, bm.URL())
			firstSession(b, r2, bm.URL())
			backlog(b, r2, benchEvents)
			n2 := r2.last()
			c2, err := r2.l.Confirmed()
			if err != nil {
				b.Fatal(err)
			}
			drained2 := float64(n2 - c2)
			start, cpu0 := time.Now(), cpuTime()
			r2.start([]string{bm.URL()}, uplink.Options{Window: benchWindow, BatchEvents: benchBatch, AckTimeout: 5 * time.Second, MaxUnacked: 16384})
			testkit.Eventually(b, 5*wait, "backlog drained to the memory acker", func() bool { c, _ := r2.l.Confirmed(); return c == n2 })
			drainMem, memCPU := time.Since(start), cpuTime()-cpu0
			r2.stopU()
			stopAcker()
			memRates = append(memRates, drained2/drainMem.Seconds())
			memCPUs = append(memCPUs, float64(memCPU.Nanoseconds())/1000/drained2)

			cpu0 = cpuTime()
			rawBatched := rawPublish(b, bm.URL(), batched)
			rawCPU := cpuTime() - cpu0
			rawRates = append(rawRates, float64(len(single))/rawBatched.Seconds())
			rawCPUs = append(rawCPUs, float64(rawCPU.Nanoseconds())/1000/float64(len(single)))
			ratios = append(ratios, memRates[round]/rawRates[round])
		}
		uplinkRate := float64(len(recs)) / drain.Seconds()
		rawRate := float64(len(single)) / raw.Seconds()
		rawBatchedRate := median(rawRates)
		fmt.Printf("REPORT drain_events_per_s %.0f events/s\n", uplinkRate)
		fmt.Printf("REPORT raw_paho_qos1_msgs_per_s %.0f msgs/s\n", rawRate)
		fmt.Printf("REPORT raw_paho_qos1_batched_events_per_s %.0f events/s\n", rawBatchedRate)
		memRate := median(memRates)
		fmt.Printf("REPORT drain_memory_acker_events_per_s %.0f events/s\n", memRate)
		// This process's CPU per event (uplink, ledger reads and the
		// acknowledger; raw paho's publisher and subscriber): on a loaded
		// machine the rates swing with the load, these much less.
		fmt.Printf("REPORT drain_memory_acker_cpu_per_event %.2f us\n", median(memCPUs))
		fmt.Printf("REPORT raw_paho_qos1_batched_cpu_per_event %.2f us\n", median(rawCPUs))
		fmt.Printf("REPORT drain_vs_raw_paho_single_msgs %.2f ratio\n", uplinkRate/rawRate)
		fmt.Printf("RATIO drain_vs_raw_paho %.2f\n", uplinkRate/rawBatchedRate)
		fmt.Printf("RATIO uplink_vs_raw_batched %.2f\n", median(ratios))
	}
}

// firstSession gives register r the session a register that has been
// online before has had: one event sent and confirmed. The drains are
// timed on a register with a backlog coming back online, not on a ledger
// head office never confirmed: such a ledger's uplink (given a
// ledger.Wire, as loyaltyd gives it) waits up to 2 s for an
// acknowledgement the broker may keep before it sends (sync/uplink
// firstAckWait), once, which a drain of 100,000 events would count as
// throughput.
func firstSession(b testing.TB, r *register, url string) {
	b.Helper()
	if _, err := r.l.Adjust(context.Background(), "first", r.members[0], 1, "bench", "op"); err != nil {
		b.Fatal(err)
	}
	n := r.last()
	r.start([]string{url}, uplink.Options{Window: benchWindow, BatchEvents: benchBatch, AckTimeout: 5 * time.Second})
	testkit.Eventually(b, 5*wait, "first event confirmed", func() bool { c, _ := r.l.Confirmed(); return c == n })
	r.stopU()
}

// median is the middle of xs (the mean of the two middle ones for an
// even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCommitToHQ measures, online, the time from a sale's ledger
// commit returning to head office's acknowledgement covering it (head
// office acks only after its durable commit, so this is an upper bound of
// commit-to-commit), over 300 adjustments made one at a time.
func BenchmarkCommitToHQ(b *testing.B) {
	for range b.N {
		bm := mosquittotest.Start(b, nil)
		startOffice(b, bm.URL())
		r := newRegister(b, "r1")
		firstSession(b, r, bm.URL())
		r.start([]string{bm.URL()}, uplink.Options{})
		testkit.Eventually(b, wait, "online", func() bool { return r.u.Status().Online })

		var mu sync.Mutex
		committed := map[uint64]time.Time{}
		var lat []time.Duration
		acked := uint64(0)
		obs := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(bm.URL()).SetClientID("ack-observer").SetAutoReconnect(false))
		if tok := obs.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		defer obs.Disconnect(100)
		tok := obs.Subscribe(protocol.AckTopic(store, "r1"), 1, func(_ mqtt.Client, m mqtt.Message) {
			now := time.Now()
			doc, err := hqRing.Open(m.Topic(), m.Payload(), protocol.MaxAckSize+signing.Overhead)
			if err != nil {
				return
			}
			a, err := protocol.DecodeAck(doc, "r1")
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for s := acked + 1; s <= a.Watermark; s++ {
				if t0, ok := committed[s]; ok {
					lat = append(lat, now.Sub(t0))
					delete(committed, s)
				}
			}
			acked = max(acked, a.Watermark)
		})
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		const n = 300
		for k := 0; k < n; k++ {
			ev, err := r.l.Adjust(context.Background(), fmt.Sprintf("lat-%d", k), r.members[k%len(r.members)], 1, "bench", "op")
			if err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			if ev.Seq > acked {
				committed[ev.Seq] = time.Now()
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // sales arrive one by one, not as a burst
		}
		testkit.Eventually(b, wait, "all acknowledged", func() bool { mu.Lock(); defer mu.Unlock(); return len(committed) == 0 })
		mu.Lock()
		slices.Sort(lat)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		mu.Unlock()
		fmt.Printf("REPORT commit_to_hq_p50_ms %.2f ms\n", float64(p50.Microseconds())/1000)
		fmt.Printf("REPORT commit_to_hq_p99_ms %.2f ms\n", float64(p99.Microseconds())/1000)
	}
}

// memAcker acknowledges the events messages it receives, in memory, in
// order (no durability: a benchmark floor, not a head office). It serves
// one register at a time. Like the raw subscriber it is measured beside,
// it does not decode the events (head office's decoding and applying are
// measured by hq_ingest_vs_raw_sub): it reads the first and the last
// sequence number of each message, which is all an acknowledgement needs
// (the uplink sends consecutive ones; the drain is timed until the ledger
// has confirmed the last). Like head office's acker (sync/hq/downlink.go)
// it sends one ack per register for whatever arrived since its last one,
// from one goroutine, signed with head office's key: under a burst many
// messages share an ack and its signature.
func memAcker(b testing.TB, url string) func() {
	b.Helper()
	var mu sync.Mutex
	wm := map[string]uint64{}
	stores := map[string]string{}
	held := map[uint64]uint64{} // first seq -> last seq (one register per run)
	kick, done := make(chan struct{}, 1), make(chan struct{})
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("mem-acker").SetAutoReconnect(false).SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	go func() {
		sent := map[string]uint64{}
		for {
			select {
			case <-done:
				return
			case <-kick:
			}
			mu.Lock()
			type ack struct {
				store string
				w     uint64
			}
			todo := map[string]ack{}
			for reg, w := range wm {
				if w > sent[reg] {
					todo[reg] = ack{stores[reg], w}
				}
			}
			mu.Unlock()
			for reg, a := range todo {
				w := a.w
				// Signed and QoS 0, as head office sends its acks: the
				// register forgets only on a signed ack, and a lost ack
				// is covered by the next.
				topic := protocol.AckTopic(a.store, reg)
				doc, _ := protocol.EncodeAck(protocol.Ack{Register: reg, Watermark: w})
				p, err := hqKey.Seal(topic, doc)
				if err != nil {
					continue
				}
				c.Publish(topic, 0, false, p)
				sent[reg] = w
			}
		}
	}()
	tok := c.Subscribe(protocol.AllEventsFilter, 1, func(c mqtt.Client, m mqtt.Message) {
		tp, err := protocol.ParseTopic(m.Topic())
		if err != nil {
			return
		}
		first, last, ok := batchSeqs(m.Payload())
		if !ok {
			return
		}
		mu.Lock()
		stores[tp.Register] = tp.Store
		// Handlers run concurrently: hold batches that arrive early.
		held[first] = max(held[first], last)
		for {
			l, ok := held[wm[tp.Register]+1]
			if !ok {
				break
			}
			delete(held, wm[tp.Register]+1)
			wm[tp.Register] = max(wm[tp.Register], l)
		}
		mu.Unlock()
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	return func() { close(done); c.Disconnect(100) }
}

// batchSeqs finds the sequence numbers of the first and the last event of
// an events message without decoding it: the first and the last
// "sequence" attribute (the ledger's payloads inside "data" have no key
// of that name, and a quote inside a string is escaped). TestBatchSeqs
// holds it to DecodeEvents.
func batchSeqs(p []byte) (first, last uint64, ok bool) {
	key := []byte(`"sequence":"`)
	i, j := bytes.Index(p, key), bytes.LastIndex(p, key)
	if i < 0 {
		return 0, 0, false
	}
	seq := func(b []byte) (uint64, bool) {
		n := bytes.IndexByte(b, '"')
		if n <= 0 {
			return 0, false
		}
		v, err := strconv.ParseUint(string(b[:n]), 10, 64)
		return v, err == nil
	}
	first, ok1 := seq(p[i+len(key):])
	last, ok2 := seq(p[j+len(key):])
	return first, last, ok1 && ok2 && first <= last
}

// TestBatchSeqs: the memory acknowledger's reading of an events message
// gives DecodeEvents' first and last sequence numbers.
func TestBatchSeqs(t *testing.T) {
	r := newRegister(t, "r1")
	backlog(t, r, 70)
	recs, err := r.l.Outbox(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]ledger.OutboxRecord{recs[:1], recs[3:67], recs[69:]} {
		p, err := protocol.EncodeRecords(store, "r1", "inc", batch)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := protocol.DecodeEvents(p, store, "r1")
		if err != nil {
			t.Fatal(err)
		}
		first, _ := evs[0].Seq()
		last, _ := evs[len(evs)-1].Seq()
		if f, l, ok := batchSeqs(p); !ok || f != first || l != last {
			t.Errorf("batchSeqs %d..%d %v, DecodeEvents %d..%d", f, l, ok, first, last)
		}
	}
	if _, _, ok := batchSeqs([]byte(`[{"id":"r1-1"}]`)); ok {
		t.Error("a message without a sequence read")
	}
}
