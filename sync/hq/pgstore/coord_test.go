package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
)

// One of three workers leads; it receives every worker's changes; when it
// stops, another takes over.
func TestLeaderElectionAndTakeover(t *testing.T) {
	_, dsn := fresh(t, hqstore.Options{})
	key := time.Now().UnixNano() // this test's own lock, apart from other tests on the cluster
	type worker struct {
		st     *pgstore.Store
		c      *pgstore.Coordinator
		cancel context.CancelFunc
		done   chan struct{}
	}
	var ws []*worker
	for i := 0; i < 3; i++ {
		st, err := pgstore.Open(dsn, &pgstore.Options{Notify: true, MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		w := &worker{st: st, c: pgstore.NewCoordinator(st, key, 100*time.Millisecond, nil), cancel: cancel, done: make(chan struct{})}
		go func() { defer close(w.done); w.c.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-w.done })
		ws = append(ws, w)
	}
	leaders := func() []int {
		var out []int
		for i, w := range ws {
			if w.c.Leader() {
				out = append(out, i)
			}
		}
		return out
	}
	testkit.Eventually(t, 20*time.Second, "one leader", func() bool { return len(leaders()) == 1 })
	first := leaders()[0]
	for i := 0; i < 10; i++ { // many tries and waits each: the same one leads
		time.Sleep(50 * time.Millisecond)
		if l := leaders(); len(l) != 1 || l[0] != first {
			t.Fatalf("leaders %v, was %d", l, first)
		}
	}
	lead := ws[first]
	// A commit by another worker reaches the leader.
	other := ws[(leaders()[0]+1)%3]
	drain(lead.c)
	if _, err := other.st.Apply([]hqstore.Event{storetest.Earn("r1", 1, "m7", 5)}); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-lead.c.Changes():
		if len(ch.Members) != 1 || ch.Members[0] != "m7" || len(ch.Stores) != 1 || ch.Stores[0] != "s1" {
			t.Fatalf("change %+v", ch)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leader did not hear of another worker's commit")
	}
	// The leader dies: another takes over.
	lead.cancel()
	<-lead.done
	testkit.Eventually(t, 20*time.Second, "a new leader", func() bool { l := leaders(); return len(l) == 1 && ws[l[0]] != lead })
}

func drain(c *pgstore.Coordinator) {
	for {
		select {
		case <-c.Changes():
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}
