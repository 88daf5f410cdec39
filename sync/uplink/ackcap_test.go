package uplink_test

import (
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestRestartBehindHeadOfficeConfirms: the previous process of this
// register published 30 of its 40 events and head office applied them,
// but its Confirms lagged (a slow or failing ledger write) and it died
// with the ledger's watermark at 0. The new process (MaxUnacked 10)
// resends 1..10; head office answers with its watermark 30, beyond what
// this process published: the ack confirms what this process published
// (review11: it was dropped whole, the window stayed full and the
// register never confirmed anything again).
func TestRestartBehindHeadOfficeConfirms(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", KeepConfirmedFor: -1})
	if _, err := l.Enrol(t.Context(), ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"card-1"}}); err != nil {
		t.Fatal(err)
	}
	record(t, l, "sale", 39)
	last := lastSeq(t, l)
	hq := startAckHQ(t, b.URL())
	hq.mu.Lock()
	hq.wm["r1"] = 30 // what the previous process published and head office holds
	hq.mu.Unlock()
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, BatchEvents: 10, MaxUnacked: 10,
		AckTimeout: 200 * time.Millisecond, ConfirmEvery: time.Millisecond})
	testkit.Eventually(t, 15*time.Second, "all confirmed", func() bool { c, _ := l.Confirmed(); return c == last })
	if st := u.Status(); st.Published != last {
		t.Fatalf("published %d, want %d", st.Published, last)
	}
}

// TestRefusedAckNoResendStorm: a register that does not pin the key head
// office signs with (a rotation done in the wrong order, or a register
// whose sync.hq_keys missed the new key) refuses those acks as soon as
// they arrive, like unsigned ones, and waits for its ack timeout before
// it resends (review11: each was refused only at Confirm and sent every
// unconfirmed event again at once, 231,800 duplicates at head office in
// 3 s from 200 events).
func TestRefusedAckNoResendStorm(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", KeepConfirmedFor: -1})
	if _, err := l.Enrol(t.Context(), ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"card-1"}}); err != nil {
		t.Fatal(err)
	}
	record(t, l, "sale", 199)
	hq := startAckHQ(t, b.URL())
	ring, err := signing.NewKeyring(malloryKey.Public()) // not head office's key
	if err != nil {
		t.Fatal(err)
	}
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, Keys: ring, AckTimeout: time.Minute})
	testkit.Eventually(t, wait, "head office's acks refused", func() bool { return u.Status().Refused.UnknownKey >= 2 })
	hq.mu.Lock()
	dups := hq.dups
	hq.mu.Unlock()
	if dups != 0 {
		t.Fatalf("refused acks made the register resend %d events within its ack timeout", dups)
	}
	if c, _ := l.Confirmed(); c != 0 {
		t.Fatalf("confirmed %d on acks of a key it does not pin", c)
	}
}

// TestKeyRotationOutOfOrderThenConfirms: operations.md "Recovering from a
// leaked signing key" step 2 (head office signs with the new key) before
// step 3 (the register pins it and restarts). Meanwhile the register
// refuses head office's acks and confirms nothing, and its window does
// not move on them; after step 3 everything is confirmed (review11: the
// window moved on the unchecked acks, the register pushed all its events
// to head office, and after the restart head office's answer, beyond
// what the new process had published, was dropped for good).
func TestKeyRotationOutOfOrderThenConfirms(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", KeepConfirmedFor: -1})
	if _, err := l.Enrol(t.Context(), ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"card-1"}}); err != nil {
		t.Fatal(err)
	}
	record(t, l, "sale", 59)
	last := lastSeq(t, l)
	hq := startAckHQ(t, b.URL())
	old, err := signing.NewKeyring(malloryKey.Public()) // the leaked key, still pinned
	if err != nil {
		t.Fatal(err)
	}
	o := uplink.Options{Brokers: []string{b.URL()}, BatchEvents: 10, MaxUnacked: 10, AckTimeout: 200 * time.Millisecond, ConfirmEvery: time.Millisecond}
	o1 := o
	o1.Keys = old
	_, stop := startUplink(t, l, o1)
	testkit.Eventually(t, wait, "head office has the first window", func() bool { return hq.watermark("r1") >= 10 })
	stop()
	if c, _ := l.Confirmed(); c != 0 {
		t.Fatalf("confirmed %d on acks of an unpinned key", c)
	}
	startUplink(t, l, o) // step 3: head office's new key pinned
	testkit.Eventually(t, 15*time.Second, "all confirmed after the re-pin", func() bool { c, _ := l.Confirmed(); return c == last })
}
