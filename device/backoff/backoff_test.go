package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/backoff"
)

const ms = time.Millisecond

func TestBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       backoff.Policy
		attempt int
		want    time.Duration
	}{
		{"first retry waits Min", backoff.Policy{Min: 100 * ms, Max: 5 * time.Second}, 1, 100 * ms},
		{"second doubles", backoff.Policy{Min: 100 * ms, Max: 5 * time.Second}, 2, 200 * ms},
		{"fourth", backoff.Policy{Min: 100 * ms, Max: 5 * time.Second}, 4, 800 * ms},
		{"capped at Max", backoff.Policy{Min: 10 * ms, Max: 40 * ms}, 5, 40 * ms},
		{"cap not a power of two", backoff.Policy{Min: 200 * ms, Max: 30 * time.Second}, 9, 30 * time.Second},
		{"attempt 0 counts as the first", backoff.Policy{Min: 100 * ms, Max: time.Second}, 0, 100 * ms},
		{"negative attempt", backoff.Policy{Min: 100 * ms, Max: time.Second}, -3, 100 * ms},
		{"Max below Min means Min", backoff.Policy{Min: 100 * ms, Max: 10 * ms}, 6, 100 * ms},
		{"huge attempt does not overflow", backoff.Policy{Min: 100 * ms, Max: math.MaxInt64}, 1000, math.MaxInt64},
		{"zero policy", backoff.Policy{}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Bound(tc.attempt); got != tc.want {
				t.Fatalf("Bound(%d) = %v, want %v", tc.attempt, got, tc.want)
			}
			if got := tc.p.Delay(tc.attempt); got != tc.want {
				t.Fatalf("Delay(%d) without jitter = %v, want %v", tc.attempt, got, tc.want)
			}
		})
	}
}

// TestSequence: the serial reader's reopen waits, attempt by
// attempt, double up to the cap.
func TestSequence(t *testing.T) {
	p := backoff.Policy{Min: 10 * ms, Max: 40 * ms}
	want := []time.Duration{10 * ms, 20 * ms, 40 * ms, 40 * ms, 40 * ms}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w {
			t.Fatalf("attempt %d: %v, want %v", i+1, got, w)
		}
	}
}

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		attempt int
		draw    func(n int64) int64 // nil: the real source
		want    time.Duration       // with a fixed draw
		hi      time.Duration
	}{
		{"lowest draw is Min", 4, func(int64) int64 { return 0 }, 100 * ms, 800 * ms},
		{"highest draw is the bound", 4, func(n int64) int64 { return n - 1 }, 800 * ms, 800 * ms},
		{"capped bound", 30, func(n int64) int64 { return n - 1 }, 2 * time.Second, 2 * time.Second},
		{"first attempt has no span", 1, func(int64) int64 { panic("drew with nothing to draw") }, 100 * ms, 100 * ms},
		{"real source stays in range", 4, nil, 0, 800 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := backoff.Policy{Min: 100 * ms, Max: 2 * time.Second, Jitter: true, Int64N: tc.draw}
			if tc.draw != nil {
				if got := p.Delay(tc.attempt); got != tc.want {
					t.Fatalf("Delay(%d) = %v, want %v", tc.attempt, got, tc.want)
				}
				return
			}
			seen := map[time.Duration]bool{}
			for range 200 {
				d := p.Delay(tc.attempt)
				if d < 100*ms || d > tc.hi {
					t.Fatalf("Delay(%d) = %v outside [100ms, %v]", tc.attempt, d, tc.hi)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Fatalf("only %d distinct delays in 200: no jitter", len(seen))
			}
		})
	}
}
