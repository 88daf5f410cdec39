package hq_test

import (
	"context"
	"path/filepath"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// erasureReads is head office's bbolt store counting how often the
// service reads every erasure (Erasures) and the erasures version.
type erasureReads struct {
	*hqstore.Store
	lists, versions atomic.Int64
}

func (e *erasureReads) Erasures() ([]hqstore.Erasure, error) {
	e.lists.Add(1)
	return e.Store.Erasures()
}

func (e *erasureReads) ErasuresVersion() (uint64, error) {
	e.versions.Add(1)
	return e.Store.ErasuresVersion()
}

// TestEraseTickIdleWhenNothingChanged: head office reads its erasures and
// builds the stores' erase documents (every 2 s) only when an erasure
// record changed (hqstore.Erasures.ErasuresVersion): a tick with no new
// erasure and no confirmation reads one number and decodes, builds and
// publishes nothing (at 10,000 erasures a full tick cost 140 ms of CPU);
// an erasure is published at the next tick, and a register's
// confirmation is read (erasures_pending drops) without publishing the
// unchanged document again.
func TestEraseTickIdleWhenNothingChanged(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	bolt, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &erasureReads{Store: bolt}
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: b.URL(), WaitTimeout: wait}, Signer: hqKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hq run: %v", err)
		}
		bolt.Close()
	})
	testkit.Eventually(t, wait, "hq subscribed", func() bool { return svc.Status().Subscribed })

	var mu stdsync.Mutex
	var docs [][]byte
	obs := connect(t, b.URL(), "erase-observer", true, nil)
	if tok := obs.Subscribe(protocol.EraseTopic("storeA"), 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		docs = append(docs, m.Payload())
		mu.Unlock()
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	published := func() int { mu.Lock(); defer mu.Unlock(); return len(docs) }

	a := newRegister(t, b.URL(), "storeA", "a-r1")
	a.add(ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann Example"})
	a.points("m1", 10)
	a.send(1, 2)
	testkit.Eventually(t, wait, "m1 applied", func() bool { s, _ := a.memberSummary("m1"); return s.Balance == 10 })

	if _, err := bolt.EraseMember("m1", "dpo"); err != nil {
		t.Fatal(err)
	}
	const ticks = 30 * time.Second // a few 2 s ticks on a loaded machine
	testkit.Eventually(t, ticks, "erase document published", func() bool { return published() == 1 && svc.Status().ErasuresPending == 1 })

	// Nothing changes: ticks go by reading the version only.
	lists, versions := st.lists.Load(), st.versions.Load()
	testkit.Eventually(t, ticks, "two more ticks", func() bool { return st.versions.Load() >= versions+2 })
	if n := st.lists.Load() - lists; n != 0 {
		t.Fatalf("%d ticks with no erasure changed read every erasure %d times, want none", st.versions.Load()-versions, n)
	}

	// The register confirms: read again (pending drops), the unchanged
	// document is not published again.
	a.add(ledger.OutErased, ledger.Erased{MemberID: "m1", Erasure: 1})
	a.send(3)
	testkit.Eventually(t, ticks, "confirmation read", func() bool { return svc.Status().ErasuresPending == 0 })
	if n := st.lists.Load() - lists; n != 1 {
		t.Fatalf("erasures read %d times after one confirmation, want 1", n)
	}
	if n := published(); n != 1 {
		t.Fatalf("erase document published %d times, want once (it did not change)", n)
	}
}
