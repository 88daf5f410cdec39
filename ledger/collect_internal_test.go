package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestCollectWaitsOnlyForCallersTheLastBatchShowed: the committer waits for
// a batch to fill only when the last commit showed more callers than have
// arrived, and never past Options.GroupDelay after that commit.
func TestCollectWaitsOnlyForCallersTheLastBatchShowed(t *testing.T) {
	const hour = time.Hour // a wait this long would fail the test by its deadline
	for _, tc := range []struct {
		name      string
		delay     time.Duration
		expect    int
		sinceLast time.Duration // how long ago the last commit was
		late      int           // ops queued once collect begins a timed wait
		stop      bool          // close the stop channel once collect begins a timed wait
		waits     bool          // collect begins a timed wait
		want      int
	}{
		{name: "lone caller never waits", delay: hour, expect: 1, want: 1},
		{name: "waits for the callers the last batch showed", delay: hour, expect: 4, late: 3, waits: true, want: 4},
		{name: "takes no more than it expects to wait for", delay: hour, expect: 2, late: 3, waits: true, want: 2},
		{name: "no wait past the delay after the last commit", delay: hour, expect: 4, sinceLast: 2 * hour, want: 1},
		{name: "negative delay never waits", delay: -1, expect: 4, want: 1},
		{name: "a wait that runs out commits what came", delay: 20 * time.Millisecond, expect: 4, waits: true, want: 1},
		{name: "close ends the wait", delay: hour, expect: 4, stop: true, waits: true, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &Ledger{queue: make(chan *op, 16), stop: make(chan struct{}), maxBatch: 256,
				groupDelay: tc.delay, expect: tc.expect, lastCommit: time.Now().Add(-tc.sinceLast)}
			// The late ops come when collect begins its timed wait, after
			// its yields: only the wait can pick them up, however the
			// goroutines are scheduled.
			waited := false
			l.groupWait = func() {
				waited = true
				for range tc.late {
					l.queue <- &op{}
				}
				if tc.stop {
					close(l.stop)
				}
			}
			got := make(chan []*op, 1)
			go func() { got <- l.collect(&op{}) }()
			select {
			case batch := <-got:
				if len(batch) != tc.want {
					t.Fatalf("collect took %d ops, want %d", len(batch), tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("collect still waiting after 30s")
			}
			if waited != tc.waits {
				t.Fatalf("collect began a timed wait: %v, want %v", waited, tc.waits)
			}
			if left := len(l.queue); left != tc.late-max(0, tc.want-1) {
				t.Fatalf("%d ops left queued, want %d", left, tc.late-max(0, tc.want-1))
			}
		})
	}
}

// TestLoneCallerNeverWaitsForGroupDelay: one caller trading in a loop
// never makes the committer wait for a second one, however long
// GroupDelay is: the committer counts the callers a batch showed before it
// answers them (a caller answered first could queue its next op in time to
// be counted as a second caller, and each of its sales would then wait for
// a caller who never comes).
func TestLoneCallerNeverWaitsForGroupDelay(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", GroupDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if _, err := l.Enrol(context.Background(), Member{ID: fmt.Sprintf("m%d", i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("a lone caller waited for GroupDelay")
	}
	st, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Commits != st.CommittedOps {
		t.Fatalf("%d commits for %d ops of one caller", st.Commits, st.CommittedOps)
	}
}

// TestCloseWaitsForTheReserveSyncer: Close stops the goroutine that syncs
// the space reserve before it closes the file that goroutine syncs.
func TestCloseWaitsForTheReserveSyncer(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if l.pre == nil {
		t.Fatal("no reserve handle: the test tests nothing")
	}
	for i := range 40 {
		if _, err := l.Enrol(context.Background(), Member{ID: fmt.Sprintf("m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.presyncDone:
	default:
		t.Fatal("Close returned with the reserve syncer still running")
	}
	if l.presyncFailed.Load() {
		t.Fatal("a reserve sync failed")
	}
}
