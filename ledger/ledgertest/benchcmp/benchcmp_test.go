package benchcmp_test

import (
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"one", []float64{7}, 7},
		{"odd unsorted", []float64{9, 1, 5}, 5},
		{"even takes the upper", []float64{4, 1, 3, 2}, 3},
		{"outlier ignored", []float64{10, 11, 1e9}, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := benchcmp.Median(in); got != tc.want {
				t.Fatalf("Median(%v) = %v, want %v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("Median reordered its input: %v", in)
				}
			}
		})
	}
}

func TestRatioClock(t *testing.T) {
	r := benchcmp.Result{Wall: [2]float64{100, 400}, CPU: [2]float64{30, 60}, Ran: true}
	if got := r.Ratio(benchcmp.Options{}); got != 0.5 {
		t.Fatalf("CPU ratio = %v, want 0.5", got)
	}
	if got := r.Ratio(benchcmp.Options{Wall: true}); got != 0.25 {
		t.Fatalf("wall ratio = %v, want 0.25", got)
	}
}

func TestCPUTimeAdvances(t *testing.T) {
	t0 := benchcmp.CPUTime()
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	if d := benchcmp.CPUTime() - t0; d <= 0 {
		t.Fatalf("CPU time did not advance over a busy loop: %v", d)
	}
}

func BenchmarkCompareRuns(b *testing.B) {
	var ranFirst, ranSecond int
	r := benchcmp.Compare(b, benchcmp.Options{Items: 2, Unit: "op"},
		benchcmp.Case{Name: "first", Op: func(*testing.B) { ranFirst++ }},
		benchcmp.Case{Name: "second", Op: func(*testing.B) { ranSecond++ }})
	if ranFirst == 0 || ranSecond == 0 || !r.Ran {
		b.Fatalf("sides ran %d and %d times, result %+v", ranFirst, ranSecond, r)
	}
}

// TestRepeatsFillsTheSample: a quick op is repeated until a sample lasts
// at least the minimum (so the CPU clock can see it); a slow one runs once.
// The arithmetic is tested on given durations (a loaded machine can stretch
// any real op); the real-clock case only uses bounds no delay can break.
func TestRepeatsFillsTheSample(t *testing.T) {
	for _, tc := range []struct {
		took, min time.Duration
		want      int
	}{
		{100 * time.Microsecond, 20 * time.Millisecond, 201},
		{time.Millisecond, 20 * time.Millisecond, 21},
		{19 * time.Millisecond, 20 * time.Millisecond, 2},
		{20 * time.Millisecond, 20 * time.Millisecond, 1},
		{5 * time.Millisecond, 2 * time.Millisecond, 1},
		{0, time.Second, 1_000_000},
	} {
		if got := benchcmp.RepeatsFor(tc.took, tc.min); got != tc.want {
			t.Errorf("an op of %v for a %v sample: %d repeats, want %d", tc.took, tc.min, got, tc.want)
		}
	}
	b := &testing.B{}
	// A sleep never returns early, so a 5ms op always fills a 2ms sample.
	slow := func(*testing.B) { time.Sleep(5 * time.Millisecond) }
	if n := benchcmp.Repeats(b, slow, 2*time.Millisecond); n != 1 {
		t.Fatalf("slow op: %d repeats, want 1", n)
	}
	// An op that does nothing is repeated more than once for a one-minute
	// sample, however loaded the machine.
	if n := benchcmp.Repeats(b, func(*testing.B) {}, time.Minute); n < 2 {
		t.Fatalf("empty op: %d repeats for a minute, want at least 2", n)
	}
}
