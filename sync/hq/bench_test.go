package hq_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq"
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
	const (
		regs    = 4
		perReg  = 10000
		total   = regs * perReg
		members = 1000
	)
	broker := mosquittotest.Start(b, &mosquittotest.Options{MaxQueuedMessages: 2 * total})
	url := broker.URL()
	// Create both persistent sessions, then go away.
	for _, id := range []string{"raw-sub", "hq-bench"} {
		c := connect(b, url, id, false, nil)
		if t := c.Subscribe(protocol.AllEventsFilter, 1, nil); !t.WaitTimeout(wait) || t.Error() != nil {
			b.Fatalf("subscribe: %v", t.Error())
		}
		c.Disconnect(100)
	}
	// Pre-publish the stream: 4 registers, one event per message, 64 in flight.
	pub := connect(b, url, "publisher", true, nil)
	var toks []mqtt.Token
	for seq := uint64(1); seq <= perReg; seq++ {
		for r := 0; r < regs; r++ {
			store, reg := fmt.Sprintf("s%d", r), fmt.Sprintf("s%d-r1", r)
			rec := ledger.OutboxRecord{Seq: seq, ID: protocol.EventID(reg, seq), Type: ledger.OutPoints,
				WallTime: time.Unix(1764230400+int64(seq), 0).UTC(), ClockTrusted: true,
				Data: []byte(fmt.Sprintf(`{"id":%q,"register":%q,"seq":%d,"kind":"earn","member_id":"m%d","points":%d,"wall_time":"2026-11-27T10:00:00Z","clock_trusted":true}`,
					protocol.EventID(reg, seq), reg, seq, (int(seq)*regs+r)%members, seq%50+1))}
			p, err := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord(store, reg, rec)})
			if err != nil {
				b.Fatal(err)
			}
			toks = append(toks, pub.Publish(protocol.EventsTopic(store, reg), 1, false, p))
			if len(toks) == 64 {
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

	// 1. The bare subscriber: receive rate of the queued stream.
	var got atomic.Int64
	doneRaw := make(chan struct{})
	start := time.Now()
	raw := connect(b, url, "raw-sub", false, func(o *mqtt.ClientOptions) {
		o.SetOrderMatters(true).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			if got.Add(1) == total {
				close(doneRaw)
			}
		})
	})
	select {
	case <-doneRaw:
	case <-time.After(60 * time.Second):
		b.Fatalf("raw subscriber got %d of %d", got.Load(), total)
	}
	rawRate := float64(total) / time.Since(start).Seconds()
	raw.Disconnect(100)

	// 2. Head office: durable ingest of the same stream, until every
	// register's ack reports the last event.
	acked := make([]atomic.Uint64, regs)
	allAcked := make(chan struct{})
	var closed atomic.Bool
	watch := connect(b, url, "ack-watch", true, nil)
	watch.Subscribe(protocol.Root+"/+/+/"+protocol.KindAck, 1, func(_ mqtt.Client, m mqtt.Message) {
		t, _ := protocol.ParseTopic(m.Topic())
		a, err := protocol.DecodeAck(m.Payload(), t.Register)
		if err != nil {
			return
		}
		var r int
		fmt.Sscanf(t.Store, "s%d", &r)
		acked[r].Store(max(acked[r].Load(), a.Watermark))
		for i := range acked {
			if acked[i].Load() < perReg {
				return
			}
		}
		if closed.CompareAndSwap(false, true) {
			close(allAcked)
		}
	}).WaitTimeout(wait)
	st, err := hqstore.Open(filepath.Join(b.TempDir(), "hq.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	opts := hq.Options{Conn: hq.Conn{Broker: url, ClientID: "hq-bench", WaitTimeout: wait}}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := hq.New(st, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	start = time.Now()
	go func() { runDone <- svc.Run(ctx) }()
	if testing.Verbose() {
		go func() {
			for ctx.Err() == nil {
				time.Sleep(250 * time.Millisecond)
				s := svc.Status()
				fmt.Printf("t=%v msgs=%d applied=%d commits=%d queue=%d acks=%d\n", time.Since(start).Round(time.Millisecond), s.Messages, s.Applied, s.Commits, s.QueueLen, s.AcksSent)
			}
		}()
	}
	select {
	case <-allAcked:
	case <-time.After(120 * time.Second):
		b.Fatalf("hq acked %v of %d per register; status %+v", acked, perReg, svc.Status())
	}
	hqRate := float64(total) / time.Since(start).Seconds()
	s := svc.Status()
	cancel()
	<-runDone
	if s.Applied != total || s.Duplicates != 0 {
		b.Fatalf("applied %d duplicates %d, want %d and 0", s.Applied, s.Duplicates, total)
	}
	fmt.Printf("REPORT hq_ingest_rate %.0f events/s\n", hqRate)
	fmt.Printf("REPORT hq_raw_sub_rate %.0f msgs/s\n", rawRate)
	fmt.Printf("REPORT hq_ingest_commits %d transactions\n", s.Commits)
	fmt.Printf("RATIO hq_ingest_vs_raw_sub %.2f\n", hqRate/rawRate)
}
