package daemon

import (
	"log/slog"
	"testing"
	"testing/synctest"
	"time"
)

// TestShutdownStaysWithinOneBound: a goroutine that does not stop in time
// holds the graceful shutdown for its bound, and the halt after it waits
// only for what is left of that bound, not a second full one (before: twice
// the bound, past systemd's TimeoutStopSec). Time is synctest's.
func TestShutdownStaysWithinOneBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bound = 5 * time.Second
		g := newRunning(bound, slog.New(slog.DiscardHandler))
		stuck := make(chan struct{})
		defer close(stuck)
		g.wg.Add(1)
		go func() { // a device loop that ignores the stop for a minute
			defer g.wg.Done()
			select {
			case <-stuck:
			case <-time.After(time.Minute):
			}
		}()
		start := time.Now()
		g.shutdown()
		g.halt()
		if took := time.Since(start); took > bound {
			t.Fatalf("shutdown and halt took %v, the bound is %v", took, bound)
		}
	})
}
