package hq_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	stdsync "sync"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

type syncBuffer struct {
	mu stdsync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestQueueBoundedInBytes: with the store stuck, the in-process queue
// fills to MaxQueuedBytes and then holds the broker back (counted in
// queue_waits, logged once) instead of growing or dropping; when the
// store moves again every event is applied and acknowledged.
func TestQueueBoundedInBytes(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	st, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs syncBuffer
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: b.URL(), WaitTimeout: wait}, Signer: hqKey,
		MaxBatch: 1, MaxQueuedBytes: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan struct{})
	var once stdsync.Once
	svc.SetBeforeApply(func(int) { <-stuck })
	defer once.Do(func() { close(stuck) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, wait, "hq subscribed", func() bool { return svc.Status().Subscribed })

	r := newRegister(t, b.URL(), "s1", "s1-r1")
	for range 30 {
		r.points("m1", 10)
	}
	go r.send(seqRange(1, 30)...)
	testkit.Eventually(t, wait, "the full queue holding the broker back", func() bool { return svc.Status().QueueWaits > 0 })
	if s := svc.Status(); s.QueueLen > 1 || s.Applied != 0 {
		t.Fatalf("queue %d messages, %d applied while the store is stuck", s.QueueLen, s.Applied)
	}
	once.Do(func() { close(stuck) })
	testkit.Eventually(t, wait, "all 30 acknowledged", func() bool { return r.ackedWM() == 30 })
	if bal, _ := st.Balance("m1"); bal != 300 {
		t.Fatalf("balance %d, want 300: nothing may be lost", bal)
	}
	if s := svc.Status(); s.QueueBytes != 0 {
		t.Fatalf("queue bytes %d after draining", s.QueueBytes)
	}
	if !bytes.Contains([]byte(logs.String()), []byte("ingest queue full")) {
		t.Fatalf("no log line for the back-pressure:\n%s", logs.String())
	}
}
