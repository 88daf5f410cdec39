package uplink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	u, err := uplink.New(memOutbox{}, &uplink.Options{Brokers: []string{"tcp://127.0.0.1:1"}, Store: "s1", Register: "r1",
		BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		attempt int
		hi      time.Duration
	}{
		{"first", 1, 100 * time.Millisecond},
		{"second", 2, 200 * time.Millisecond},
		{"fourth", 4, 800 * time.Millisecond},
		{"capped", 30, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := u.Backoff(tc.attempt)
				if d < 100*time.Millisecond || d > tc.hi {
					t.Fatalf("backoff %v outside [100ms, %v]", d, tc.hi)
				}
				seen[d] = true
			}
			if tc.attempt > 1 && len(seen) < 10 {
				t.Fatalf("only %d distinct delays: no jitter", len(seen))
			}
		})
	}
}

// TestBackoffDefaultCap: without options the reconnect wait stays within
// a few seconds after any outage (issue 11: it had grown to 24s after a
// 120s broker outage), and is still jittered at the cap.
func TestBackoffDefaultCap(t *testing.T) {
	u, err := uplink.New(memOutbox{}, &uplink.Options{Brokers: []string{"tcp://127.0.0.1:1"}, Store: "s1", Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[time.Duration]bool{}
	var top time.Duration
	for range 500 {
		d := u.Backoff(1000)
		if d < 200*time.Millisecond || d > 5*time.Second {
			t.Fatalf("default backoff %v outside [200ms, 5s]", d)
		}
		top = max(top, d)
		seen[d] = true
	}
	if len(seen) < 100 || top < 4*time.Second {
		t.Fatalf("%d distinct delays, highest %v: want jitter up to the 5s cap", len(seen), top)
	}
}

func TestRunTwiceFails(t *testing.T) {
	u, err := uplink.New(memOutbox{}, &uplink.Options{Brokers: []string{"tcp://127.0.0.1:1"}, Store: "s1", Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := u.Run(ctx); err != nil {
		t.Fatalf("first Run on a cancelled context: %v", err)
	}
	if err := u.Run(ctx); !errors.Is(err, uplink.ErrOptions) {
		t.Fatalf("second Run: %v", err)
	}
}
