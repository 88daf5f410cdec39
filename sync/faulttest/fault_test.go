package faulttest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestBrokerKilledMidDrain: SIGKILL the broker while a backlog drains,
// restart it on the same port; sessions and in-flight messages are lost
// (no persistence save), yet head office ends with everything once.
func TestBrokerKilledMidDrain(t *testing.T) {
	b := mosquittotest.Start(t, &mosquittotest.Options{Persistence: true})
	o := startOffice(t, b.URL())
	r := newRegister(t, "r1")
	t0 := time.Now()
	r.record(2000)
	r.start([]string{b.URL()}, uplink.Options{BatchEvents: 16, Window: 8})
	testkit.Eventually(t, wait, "drain under way", func() bool { w, _ := o.store().Watermark("r1"); return w > 500 })
	b.Kill()
	r.record(300) // sales go on while the broker is down
	b.Restart()
	r.record(200)
	verify(t, o, r)
	t.Logf("recorded, drained through a broker crash and verified in %v", time.Since(t0))
}

// TestBrokerUnreachableWhileRecording: the register records many events
// with no broker at all, then the broker comes back. The long variant
// records 70,000 (past paho's 65,535 message ids, which never matter
// because the ledger is the queue).
func TestBrokerUnreachableWhileRecording(t *testing.T) {
	n := 5000
	if *long {
		n = 70000
	}
	b := mosquittotest.Start(t, &mosquittotest.Options{Persistence: true})
	o := startOffice(t, b.URL())
	r := newRegister(t, "r1")
	r.start([]string{b.URL()}, uplink.Options{})
	testkit.Eventually(t, wait, "online", func() bool { return r.u.Status().Online })
	b.Stop()
	testkit.Eventually(t, wait, "offline", func() bool { return !r.u.Status().Online })
	start := time.Now()
	r.record(n)
	t.Logf("recorded %d events offline in %v", n, time.Since(start))
	s := r.u.Status()
	if s.Online || s.Pending < n || s.Oldest.IsZero() {
		t.Fatalf("status while offline: %v", s)
	}
	b.Restart()
	verify(t, o, r)
}

// TestHeadOfficeDownThenBack: head office stops while registers keep
// sending; the broker queues for its persistent session (and drops past
// its queue limit), the registers wait for acks and resend; when head
// office is back everything arrives once.
func TestHeadOfficeDownThenBack(t *testing.T) {
	// A small per-client queue, so the broker really drops (silently) part
	// of what is sent to head office's session while it is away.
	b := mosquittotest.Start(t, &mosquittotest.Options{MaxQueuedMessages: 100})
	o := startOffice(t, b.URL())
	r1, r2 := newRegister(t, "r1"), newRegister(t, "r2")
	r1.start([]string{b.URL()}, uplink.Options{})
	r2.start([]string{b.URL()}, uplink.Options{BatchEvents: 1}) // one event per message: overflows the broker's queue for head office
	r1.record(300)
	o.stop()
	r1.record(800)
	r2.record(600)
	// Both registers notice head office's silence and fall back to probing
	// (one batch outstanding) instead of flooding the broker's queue.
	testkit.Eventually(t, wait, "registers noticed head office is silent", func() bool {
		return r1.u.Status().Resends > 0 && r2.u.Status().Resends > 0
	})
	if w, _ := r1.l.Confirmed(); w >= r1.last() {
		t.Fatalf("register confirmed %d with head office down", w)
	}
	o.start()
	verify(t, o, r1, r2)
	t.Logf("broker dropped messages for head office's session: %v", strings.Contains(b.Log(), "dropped"))
}
