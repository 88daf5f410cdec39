package hq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// reusedHQ is head office for TestReusedHoldKeepsAcksBelow: started,
// stopped, restarted on the same store, and the operator's review
// dismiss of one event (bbolt: with serve stopped, as loyalty-hq review
// dismiss needs; PostgreSQL: while the workers run).
type reusedHQ struct {
	start   func()
	stop    func()
	dismiss func(register string, seq uint64)
	state   func(register string) hqstore.RegisterState
}

func boltReusedHQ(t *testing.T, url string) *reusedHQ {
	path := filepath.Join(t.TempDir(), "hq.db")
	h := &reusedHQ{}
	var st *hqstore.Store
	h.start = func() {
		_, st, h.stop = startHQ(t, url, path, hq.Options{GapRetry: 50 * time.Millisecond, SummaryInterval: -1})
	}
	h.state = func(register string) hqstore.RegisterState {
		rs, err := st.RegisterState(register)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	h.dismiss = func(register string, seq uint64) {
		h.stop()
		s, err := hqstore.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResolvePolicy(register, seq, false); err != nil {
			t.Fatalf("review dismiss %s %d: %v", register, seq, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		h.start()
	}
	return h
}

// pgReusedHQ runs two workers on one shared subscription and store.
func pgReusedHQ(t *testing.T, url string) *reusedHQ {
	srv := pgtest.Need(t, pgSrv, pgErr)
	_, dsn, err := srv.Schema()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgstore.Open(dsn, &pgstore.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	h := &reusedHQ{}
	h.start = func() {
		var stops []func()
		for i := range 2 {
			st, err := pgstore.Open(dsn, &pgstore.Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: url, ClientID: fmt.Sprintf("hq-w%d", i), WaitTimeout: wait},
				Group: "hq", Signer: hqKey, GapRetry: 50 * time.Millisecond, SummaryInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- svc.Run(ctx) }()
			stops = append(stops, func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("worker %d: %v", i, err)
				}
				st.Close()
			})
			testkit.Eventually(t, wait, "worker subscribed", func() bool { return svc.Status().Subscribed })
		}
		var once stdsync.Once
		h.stop = func() {
			once.Do(func() {
				for _, s := range stops {
					s()
				}
			})
		}
		t.Cleanup(h.stop)
	}
	h.state = func(register string) hqstore.RegisterState {
		rs, err := admin.RegisterState(register)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	h.dismiss = func(register string, seq uint64) {
		if _, err := admin.ResolvePolicy(register, seq, false); err != nil {
			t.Fatalf("review dismiss %s %d: %v", register, seq, err)
		}
	}
	t.Cleanup(func() {
		if err := admin.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
	})
	return h
}

// sendPoints publishes events from..to of the counter's incarnation, pts
// points each to member m: one message.
func (r *ackCounter) sendPoints(from, to uint64, m string, pts ledger.Points) {
	r.t.Helper()
	var evs []protocol.Event
	for s := from; s <= to; s++ {
		data, _ := json.Marshal(ledger.PointEvent{ID: protocol.EventID(r.id, s), Register: r.id, Seq: s, Kind: ledger.KindEarn, MemberID: m, Points: pts})
		e := protocol.FromRecord(r.store, r.id, ledger.OutboxRecord{Seq: s, Type: ledger.OutPoints, WallTime: time.Date(2026, 11, 27, 9, 0, int(s), 0, time.UTC), ClockTrusted: true, Data: data})
		e.Incarnation = r.inc
		evs = append(evs, e)
	}
	b, err := protocol.EncodeEvents(evs)
	if err != nil {
		r.t.Fatal(err)
	}
	if tok := r.c.Publish(protocol.EventsTopic(r.store, r.id), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		r.t.Fatalf("publish: %v", tok.Error())
	}
}

func (r *ackCounter) ackList() []protocol.Ack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocol.Ack(nil), r.acks...)
}

// retainedAck subscribes a fresh client to the register's ack topic and
// returns the retained ack the broker hands it.
func retainedAck(t *testing.T, url, store, id string) protocol.Ack {
	t.Helper()
	c := connect(t, url, "peek-"+id+fmt.Sprint(time.Now().UnixNano()), true, nil)
	defer c.Disconnect(50)
	got := make(chan protocol.Ack, 1)
	tok := c.Subscribe(protocol.AckTopic(store, id), 1, func(_ mqtt.Client, m mqtt.Message) {
		if !m.Retained() {
			return
		}
		if a, err := decodeAck(m.Topic(), m.Payload(), id); err == nil {
			select {
			case got <- a:
			default:
			}
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case a := <-got:
		return a
	case <-time.After(wait):
		t.Fatal("no retained ack")
		return protocol.Ack{}
	}
}

// TestReusedHoldKeepsAcksBelow: a ledger restored from an older backup
// (same incarnation, confirmed 3) sends its own 4 and 5 over head
// office's 4 and 5, then new events. Head office holds 4 and 5 as reused
// and applies the rest; every ack the register gets from then on (after
// more batches, and after head office restarts) acknowledges at most 3
// and carries the reused notice, so the register keeps 4 and 5; the
// retained ack stays the plain one from before. Once the operator
// dismisses both, the acks go back to the full watermark. On bbolt, and
// on PostgreSQL with two workers.
func TestReusedHoldKeepsAcksBelow(t *testing.T) {
	for _, backend := range []string{"bbolt", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			b := mosquittotest.Start(t, nil)
			var h *reusedHQ
			if backend == "bbolt" {
				h = boltReusedHQ(t, b.URL())
			} else {
				h = pgReusedHQ(t, b.URL())
			}
			h.start()
			r := newAckCounter(t, b.URL(), "s1", "r1", "11111111111111111111111111111111")
			r.sendPoints(1, 5, "m1", 10)
			testkit.Eventually(t, wait, "ack of 5", func() bool { _, w := r.count(); return w == 5 })

			// Restored from the backup at 3: its 4 and 5 differ, 6 and 7 are new.
			r.reset()
			r.sendPoints(4, 7, "m2", 40)
			testkit.Eventually(t, wait, "7 applied", func() bool { return h.state("r1").Watermark == 7 })
			testkit.Eventually(t, wait, "the answer to 4..7", func() bool { n, _ := r.count(); return n >= 1 })
			checkBelow := func(when string, n int) {
				t.Helper()
				testkit.Eventually(t, wait, when+": acks", func() bool { m, _ := r.count(); return m >= n })
				for _, a := range r.ackList() {
					if a.Watermark > 3 || a.Notice == nil || a.Notice.Code != protocol.NoticeReused {
						t.Fatalf("%s: ack %+v (notice %+v): head office holds 4 and 5 as reused, it must acknowledge at most 3 and say why; acks %+v",
							when, a, a.Notice, r.ackList())
					}
				}
			}
			checkBelow("after the restored ledger's batch", 1)
			r.sendPoints(8, 8, "m2", 40)
			testkit.Eventually(t, wait, "8 applied", func() bool { return h.state("r1").Watermark == 8 })
			checkBelow("after the next batch", 2)

			h.stop()
			h.start()
			// As a real register does when head office is silent: it
			// resends from its watermark (3), and records more.
			r.reset()
			r.sendPoints(4, 8, "m2", 40)
			r.sendPoints(9, 9, "m2", 40)
			testkit.Eventually(t, wait, "9 applied", func() bool { return h.state("r1").Watermark == 9 })
			checkBelow("after head office restarted", 2)
			if a := retainedAck(t, b.URL(), "s1", "r1"); a.Watermark != 5 || a.Notice != nil {
				t.Fatalf("retained ack %+v: want the plain ack of 5 from before the reused events", a)
			}

			h.dismiss("r1", 4)
			h.dismiss("r1", 5)
			if rs := h.state("r1"); rs.Review != 0 {
				t.Fatalf("after dismissing 4 and 5: %+v", rs)
			}
			r.reset()
			r.sendPoints(4, 9, "m2", 40) // the resend from its watermark
			testkit.Eventually(t, wait, "the full watermark", func() bool {
				acks := r.ackList()
				return len(acks) > 0 && acks[len(acks)-1].Watermark == 9 && acks[len(acks)-1].Notice == nil
			})
			testkit.Eventually(t, wait, "retained ack of 9", func() bool { return retainedAck(t, b.URL(), "s1", "r1").Watermark == 9 })
		})
	}
}
