package hq_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// BenchmarkHQIngestVsRawSub measures head office's durable ingest rate
// (events/s, each batch committed to bbolt with fdatasync, then acked)
// against a bare paho subscriber receiving the same pre-published stream
// from the same mosquitto in the same run: both sessions are subscribed,
// the stream is queued for both, then each connects and drains it.
// It runs once whatever b.N is (make bench uses -benchtime 1x).
func BenchmarkHQIngestVsRawSub(b *testing.B) {
	// Both clients drain through the same broker settings; a wider
	// in-flight window than the default 20 is what configs/mosquitto.conf
	// recommends for head office.
	broker := mosquittotest.Start(b, &mosquittotest.Options{MaxQueuedMessages: 100000, MaxInflightMessages: 200})
	// The machine is shared: measure three alternating rounds and report
	// the median of each side, so one noisy second does not decide.
	const rounds = 3
	var hqRates, rawRates, hqCPU, rawCPU []float64
	var commits uint64
	for r := 0; r < rounds; r++ {
		res := ingestRound(b, broker.URL(), r)
		rawRates, hqRates = append(rawRates, res.rawRate), append(hqRates, res.hqRate)
		rawCPU, hqCPU = append(rawCPU, res.rawCPU), append(hqCPU, res.hqCPU)
		commits += res.commits
	}
	sort.Float64s(hqCPU)
	sort.Float64s(rawCPU)
	sort.Float64s(hqRates)
	sort.Float64s(rawRates)
	hqRate, rawRate := hqRates[rounds/2], rawRates[rounds/2]
	fmt.Printf("REPORT hq_ingest_rate %.0f events/s\n", hqRate)
	fmt.Printf("REPORT hq_raw_sub_rate %.0f msgs/s\n", rawRate)
	// CPU time of this process per event: less sensitive to other load on
	// the machine than the rates.
	fmt.Printf("REPORT hq_ingest_cpu_per_event %.1f us\n", hqCPU[rounds/2])
	fmt.Printf("REPORT hq_raw_sub_cpu_per_msg %.1f us\n", rawCPU[rounds/2])
	fmt.Printf("REPORT hq_ingest_events_per_commit %.0f events\n", float64(rounds*roundEvents)/float64(commits))
	fmt.Printf("RATIO hq_ingest_vs_raw_sub %.2f\n", hqRate/rawRate)
}

const (
	roundRegs   = 4
	roundPerReg = 5000
	roundEvents = roundRegs * roundPerReg
)

type roundResult struct {
	rawRate, hqRate float64 // events per second
	rawCPU, hqCPU   float64 // process CPU microseconds per event
	commits         uint64
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ingestRound queues one stream of roundEvents point events (4 registers,
// one event per message, published 512 at a time) for two persistent sessions, then drains it with
// a bare paho subscriber and with head office, and returns both rates and
// head office's commit count.
func ingestRound(b *testing.B, url string, round int) roundResult {
	const members = 1000
	rawID, hqID := fmt.Sprintf("raw-sub-%d", round), fmt.Sprintf("hq-bench-%d", round)
	for _, id := range []string{rawID, hqID} {
		c := connect(b, url, id, false, nil)
		if t := c.Subscribe(protocol.AllEventsFilter, 1, nil); !t.WaitTimeout(wait) || t.Error() != nil {
			b.Fatalf("subscribe: %v", t.Error())
		}
		c.Disconnect(100)
	}
	pub := connect(b, url, fmt.Sprintf("publisher-%d", round), true, nil)
	storeOf := func(r int) string { return fmt.Sprintf("b%d-s%d", round, r) }
	var toks []mqtt.Token
	for seq := uint64(1); seq <= roundPerReg; seq++ {
		for r := 0; r < roundRegs; r++ {
			store := storeOf(r)
			reg := store + "-r1"
			rec := ledger.OutboxRecord{Seq: seq, ID: protocol.EventID(reg, seq), Type: ledger.OutPoints,
				WallTime: time.Unix(1764230400+int64(seq), 0).UTC(), ClockTrusted: true,
				Data: []byte(fmt.Sprintf(`{"id":%q,"register":%q,"seq":%d,"kind":"earn","member_id":"m%d","points":%d,"wall_time":"2026-11-27T10:00:00Z","clock_trusted":true}`,
					protocol.EventID(reg, seq), reg, seq, (int(seq)*roundRegs+r)%members, seq%50+1))}
			p, err := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord(store, reg, rec)})
			if err != nil {
				b.Fatal(err)
			}
			toks = append(toks, pub.Publish(protocol.EventsTopic(store, reg), 1, false, p))
			if len(toks) == 512 {
				for _, t := range toks {
					if !t.WaitTimeout(wait) || t.Error() != nil {
						b.Fatalf("pre-publish: %v", t.Error())
					}
				}
				toks = toks[:0]
			}
		}
	}
	for _, t := range toks {
		t.WaitTimeout(wait)
	}
	pub.Disconnect(100)

	// 1. The bare subscriber: receive rate of the queued stream.
	var got atomic.Int64
	doneRaw := make(chan struct{})
	start, cpu0 := time.Now(), cpuTime()
	raw := connect(b, url, rawID, false, func(o *mqtt.ClientOptions) {
		o.SetOrderMatters(true).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			if got.Add(1) == roundEvents {
				close(doneRaw)
			}
		})
	})
	select {
	case <-doneRaw:
	case <-time.After(60 * time.Second):
		b.Fatalf("raw subscriber got %d of %d", got.Load(), roundEvents)
	}
	rawRate := float64(roundEvents) / time.Since(start).Seconds()
	rawCPU := float64((cpuTime() - cpu0).Microseconds()) / roundEvents
	raw.Disconnect(100)

	// 2. Head office: durable ingest of the same stream, until every
	// register's ack reports its last event.
	acked := make([]atomic.Uint64, roundRegs)
	allAcked := make(chan struct{})
	var closed atomic.Bool
	watch := connect(b, url, fmt.Sprintf("ack-watch-%d", round), true, nil)
	watch.Subscribe(protocol.Root+"/+/+/"+protocol.KindAck, 1, func(_ mqtt.Client, m mqtt.Message) {
		t, _ := protocol.ParseTopic(m.Topic())
		a, err := decodeAck(m.Topic(), m.Payload(), t.Register)
		if err != nil {
			return
		}
		var rr, r int
		fmt.Sscanf(t.Store, "b%d-s%d", &rr, &r)
		if rr != round {
			return
		}
		acked[r].Store(max(acked[r].Load(), a.Watermark))
		for i := range acked {
			if acked[i].Load() < roundPerReg {
				return
			}
		}
		if closed.CompareAndSwap(false, true) {
			close(allAcked)
		}
	}).WaitTimeout(wait)
	defer watch.Disconnect(100)
	st, err := hqstore.Open(filepath.Join(b.TempDir(), "hq.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	opts := hq.Options{Conn: hq.Conn{Broker: url, ClientID: hqID, WaitTimeout: wait}, Signer: hqKey}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := hq.New(st, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	start, cpu0 = time.Now(), cpuTime()
	go func() { runDone <- svc.Run(ctx) }()
	select {
	case <-allAcked:
	case <-time.After(120 * time.Second):
		b.Fatalf("hq acked %v of %d per register; status %+v", acked, roundPerReg, svc.Status())
	}
	hqRate := float64(roundEvents) / time.Since(start).Seconds()
	hqCPU := float64((cpuTime() - cpu0).Microseconds()) / roundEvents
	s := svc.Status()
	cancel()
	<-runDone
	if s.Applied != roundEvents || s.Duplicates != 0 {
		b.Fatalf("applied %d duplicates %d, want %d and 0", s.Applied, s.Duplicates, roundEvents)
	}
	if testing.Verbose() {
		fmt.Printf("round %d: raw %.0f/s hq %.0f/s commits %d\n", round, rawRate, hqRate, s.Commits)
	}
	return roundResult{rawRate: rawRate, hqRate: hqRate, rawCPU: rawCPU, hqCPU: hqCPU, commits: s.Commits}
}
