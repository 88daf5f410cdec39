package hq_test

import (
	"context"
	"errors"
	"path/filepath"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/powerfs"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestStorageFailureStopsWithoutAck: when a commit's sync fails, head
// office acknowledges nothing of it and stops with hqstore.ErrStorage
// (instead of retrying on a file it can no longer trust); after a power
// cut the store still covers every watermark the register was given.
func TestStorageFailureStopsWithoutAck(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	f := powerfs.Mount(t, nil)
	path := filepath.Join(f.Dir, "hq.db")
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: b.URL(), WaitTimeout: wait}, Signer: hqKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	testkit.Eventually(t, wait, "hq subscribed", func() bool { return svc.Status().Subscribed })
	r := newRegister(t, b.URL(), "s1", "s1-r1")
	r.noResend = true
	for range 20 {
		r.points("m1", 5)
	}
	r.send(seqRange(1, 10)...)
	testkit.Eventually(t, wait, "ack of 10", func() bool { return r.ackedWM() == 10 })
	// probe sees the register's acks in the order the broker sends them,
	// then its own marker: published once head office has stopped, it
	// comes after any ack head office sent.
	var probeMu stdsync.Mutex
	var probeMax uint64
	marker := make(chan struct{})
	probe := connect(t, b.URL(), "ack-probe", true, func(o *mqtt.ClientOptions) { o.SetOrderMatters(true) })
	for _, topic := range []string{protocol.AckTopic("s1", "s1-r1"), "probe/marker"} {
		tok := probe.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
			if m.Topic() == "probe/marker" {
				close(marker)
				return
			}
			a, err := decodeAck(m.Topic(), m.Payload(), "s1-r1")
			if err != nil {
				t.Errorf("bad ack: %v", err)
				return
			}
			probeMu.Lock()
			probeMax = max(probeMax, a.Watermark)
			probeMu.Unlock()
		})
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("probe subscribe %s: %v", topic, tok.Error())
		}
	}
	if err := f.Fail(powerfs.Fault{Op: powerfs.OpSync, N: 1, Errno: syscall.EIO}); err != nil {
		t.Fatal(err)
	}
	r.send(seqRange(11, 20)...)
	select {
	case err := <-done:
		if !errors.Is(err, hqstore.ErrStorage) {
			t.Fatalf("hq stopped with %v, want ErrStorage", err)
		}
		t.Logf("hq stopped: %v", err)
	case <-time.After(3 * wait):
		t.Fatal("hq went on after a failed sync")
	}
	if tok := probe.Publish("probe/marker", 1, false, "after head office stopped"); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("probe marker: %v", tok.Error())
	}
	select {
	case <-marker: // every ack head office sent has reached the probe
	case <-time.After(wait):
		t.Fatal("the probe's marker never came back")
	}
	probeMu.Lock()
	seen := probeMax
	probeMu.Unlock()
	if seen > 10 {
		t.Fatalf("head office acknowledged %d after the failed commit, want at most 10", seen)
	}
	if a := r.ackedWM(); a != 10 {
		t.Fatalf("register acknowledged %d after the failed commit, want 10", a)
	}
	if s := svc.Status(); s.CommitErrors != 1 {
		t.Fatalf("status %+v", s)
	}
	st.Close()
	if _, err := f.Cut(false); err != nil {
		t.Fatal(err)
	}
	if err := f.Remount(0); err != nil {
		t.Fatal(err)
	}
	st, err = hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	if w, _ := st.Watermark("s1-r1"); w != 10 {
		t.Fatalf("after the cut the store holds %d, acknowledged 10", w)
	}
}
