package uplink_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestRetainedAckConfirmsNothing: a ledger restored from a backup
// (confirmed 3) recorded 4..7 offline, over numbers head office had
// already applied up to 5 from the lost ledger. At subscribe the broker
// hands over head office's retained ack (5). It used to confirm 5, so the
// restored ledger's own 4 and 5 were forgotten without ever being sent
// (review5). Now a retained ack confirms nothing: the session sends from
// the ledger's watermark, and only head office's live answer confirms,
// whether the retained ack comes before the first send or after it
// (paho runs each handler on a goroutine of its own).
func TestRetainedAckConfirmsNothing(t *testing.T) {
	for _, tc := range []struct {
		name        string
		beforeSends bool
	}{{"before the first send", true}, {"after the first send", false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ob := newFakeOutbox(7)
				ob.confirmed = 3
				fb := &fakeBroker{retained: true}
				var once sync.Once
				if tc.beforeSends {
					fb.onSubscribe = func(map[string]byte) {
						once.Do(func() { go fb.ack(5, 0) }) // right after SUBACK
					}
				}
				run(t, ob, fb, uplink.Options{BatchEvents: 10, AckTimeout: time.Hour, ConfirmEvery: time.Millisecond})
				if !tc.beforeSends {
					fb.ack(5, 0)
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				contiguous(t, fb.sent(), 4, 7)
				if c := ob.confirmCalls(); len(c) != 0 {
					t.Fatalf("confirmed %v on the retained ack alone", c)
				}
				fb.retained = false
				fb.ack(7, 0) // head office's answer to what this session sent
				synctest.Wait()
				time.Sleep(time.Second)
				synctest.Wait()
				if c := ob.confirmCalls(); !slices.Equal(c, []uint64{7}) {
					t.Fatalf("confirms %v after head office's live ack of 7, want [7]", c)
				}
			})
		})
	}
}

// TestRetainedAckBeyondARestoredLedger: a ledger restored from a backup
// (confirmed 3, last 5) records 6..8 offline; head office holds the lost
// copy's stream up to 10. The retained ack (10, the ledger's own
// incarnation) makes it go on under a new incarnation (noticed by the ack,
// or claimed by loyaltyctl register restore), and learning its numbers
// from the ack used to confirm the ack too: the ledger's own 6..8, mapped
// below it, were forgotten unsent (review6). Now the learnt ack confirms
// nothing: the session sends them, and the confirmed watermark stays 3.
func TestRetainedAckBeyondARestoredLedger(t *testing.T) {
	for _, restore := range []bool{false, true} {
		t.Run(map[bool]string{false: "noticed by the ack", true: "loyaltyctl register restore"}[restore], func(t *testing.T) {
			l := openLedger(t, "r1") // 1 event
			record(t, l, "a", 4)     // last 5
			if err := l.Confirm(3); err != nil {
				t.Fatal(err)
			}
			record(t, l, "b", 3) // 6..8, recorded offline after the restore
			inc, err := l.Incarnation()
			if err != nil {
				t.Fatal(err)
			}
			if restore {
				if _, err := (ledger.Wire{Ledger: l}).Reincarnate(true); err != nil {
					t.Fatal(err)
				}
			}
			fb := &fakeBroker{t: t}
			var once sync.Once
			fb.onSubscribe = func(map[string]byte) {
				once.Do(func() {
					topic := protocol.AckTopic("s1", "r1")
					fb.deliver(topic, signedAck(t, topic, protocol.Ack{Register: "r1", Incarnation: inc, Watermark: 10}), true) // retained, handed over at subscribe
				})
			}
			u, err := uplink.New(ledger.Wire{Ledger: l}, &uplink.Options{BatchEvents: 10, AckTimeout: time.Hour, ConfirmEvery: time.Millisecond,
				Brokers: []string{"tcp://fake:1883"}, Store: "s1", Register: "r1", Dial: fb.dial})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- u.Run(ctx) }()
			defer func() { cancel(); <-done }()
			sent := func() map[uint64]bool {
				m := map[uint64]bool{}
				for _, b := range fb.sent() {
					for s := b.first; s <= b.last; s++ {
						m[s] = true
					}
				}
				return m
			}
			testkit.Eventually(t, wait, "events 4..8 sent", func() bool {
				m := sent()
				return m[4] && m[5] && m[6] && m[7] && m[8]
			})
			if c, err := l.Confirmed(); err != nil || c != 3 {
				t.Fatalf("confirmed %d (%v) on the retained ack alone, want 3; sent %v", c, err, sent())
			}
		})
	}
}
