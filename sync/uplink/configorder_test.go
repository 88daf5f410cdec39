package uplink_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestConfigsOutOfOrder: paho runs each message handler on a goroutine of
// its own (broker.Dial), so two config documents head office sends close
// together (v2, then v3) can be handled at the same time and reach the
// uplink in either order. The uplink applies them one at a time: OnConfig
// is never called while another call is in progress. v2 arriving while
// v3 is being applied is refused afterwards and counted as replayed, and
// ConfigError stays empty: the config in force is newer, nothing is wrong.
func TestConfigsOutOfOrder(t *testing.T) {
	cases := []struct {
		name     string
		arrive   []uint64 // the order the handlers run in
		applied  []uint64 // OnConfig's calls
		replayed uint64
	}{
		{"in order", []uint64{2, 3}, []uint64{2, 3}, 0},
		{"newer first", []uint64{3, 2}, []uint64{3}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var applied []uint64
				inCall, most := 0, 0
				entered := make(chan uint64, len(tc.arrive))
				release := make(chan struct{})
				// On a failure too, so that the uplink can stop.
				releaseAll := sync.OnceFunc(func() { close(release) })
				defer releaseAll()
				onConfig := func(_ context.Context, c protocol.Config) error {
					mu.Lock()
					inCall++
					most = max(most, inCall)
					applied = append(applied, c.ConfigVersion)
					mu.Unlock()
					entered <- c.ConfigVersion
					<-release
					mu.Lock()
					inCall--
					mu.Unlock()
					return nil
				}
				fb := &fakeBroker{}
				u := run(t, newFakeOutbox(0), fb, uplink.Options{Keys: hqRing, OnConfig: onConfig})
				topic := protocol.ChainConfigTopic()
				// deliver runs the connection's handler on a goroutine of
				// its own, as paho does.
				deliver := func(v uint64) {
					doc := sealWith(hqKey, topic, fmt.Appendf(nil, `{"v":1,"scope":"chain","config_version":%d}`, v))
					fb.mu.Lock()
					h := fb.onMessage
					fb.mu.Unlock()
					go h(topic, doc, false)
				}

				// The first document is in OnConfig when the second arrives.
				deliver(tc.arrive[0])
				if v := <-entered; v != tc.arrive[0] {
					t.Fatalf("OnConfig called with version %d first, want %d", v, tc.arrive[0])
				}
				deliver(tc.arrive[1])
				synctest.Wait()
				mu.Lock()
				calls := slices.Clone(applied)
				mu.Unlock()
				if len(calls) != 1 {
					t.Fatalf("OnConfig calls %v while the first is in progress, want one", calls)
				}

				releaseAll()
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				if !slices.Equal(applied, tc.applied) || most != 1 {
					t.Fatalf("OnConfig calls %v, at most %d at once; want %v, one at a time", applied, most, tc.applied)
				}
				s := u.Status()
				if s.Config.Chain != 3 || s.ConfigError != "" || s.Refused.Replayed != tc.replayed {
					t.Fatalf("status: chain version %d, config error %q, replayed %d; want 3, none, %d",
						s.Config.Chain, s.ConfigError, s.Refused.Replayed, tc.replayed)
				}
			})
		})
	}
}
