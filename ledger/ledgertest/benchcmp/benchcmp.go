package benchcmp

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Case is one side of a comparison: Op does one op's work (Items items).
type Case struct {
	Name string
	Op   func(b *testing.B)
}

// Options describe a comparison.
type Options struct {
	// Ratio names the RATIO line: Ratio <first's time / second's time>;
	// empty prints none.
	Ratio string
	// Items is how many items (records, events, sales) one op handles;
	// the per-item metrics divide by it. Zero means 1.
	Items int
	// Unit names an item in the metrics, e.g. "event"; default "item".
	Unit string
	// Wall takes the ratio from wall time instead of CPU time: for work
	// that waits (fdatasync), where CPU time would hide the waiting.
	Wall bool
	// MinSample is how long one timed sample runs at the least (default
	// 50ms): an op of a few microseconds, timed once as `-benchtime 1x`
	// does, is below the resolution of the process's CPU clock (getrusage
	// advances in scheduler ticks), and its ratio is noise. Each b.Loop
	// iteration repeats the op until the sample is long enough.
	MinSample time.Duration
}

// Result holds the medians over the runs of each side, in nanoseconds per
// op; a side that did not run (filtered out by -bench) has none.
type Result struct {
	Wall, CPU [2]float64
	Ran       bool
}

// Ratio is the first side's median time over the second's, by the
// clock Options chose.
func (r Result) Ratio(o Options) float64 {
	if o.Wall {
		return r.Wall[0] / r.Wall[1]
	}
	return r.CPU[0] / r.CPU[1]
}

// Compare runs first and second as sub-benchmarks of b with b.Loop,
// reports allocations and per-item wall and CPU time for each, and, when
// both ran, prints "RATIO <o.Ratio> <value>" and returns the medians.
func Compare(b *testing.B, o Options, first, second Case) Result {
	if o.Items <= 0 {
		o.Items = 1
	}
	if o.Unit == "" {
		o.Unit = "item"
	}
	if o.MinSample <= 0 {
		o.MinSample = 50 * time.Millisecond
	}
	var wall, cpu [2][]float64
	for i, c := range [2]Case{first, second} {
		b.Run(c.Name, func(b *testing.B) {
			b.ReportAllocs()
			reps := Repeats(b, c.Op, o.MinSample)
			c0 := CPUTime()
			for b.Loop() {
				for range reps {
					c.Op(b)
				}
			}
			ops := float64(b.N) * float64(reps)
			w := float64(b.Elapsed().Nanoseconds()) / ops
			u := float64((CPUTime() - c0).Nanoseconds()) / ops
			wall[i], cpu[i] = append(wall[i], w), append(cpu[i], u)
			b.ReportMetric(w/float64(o.Items), "ns/"+o.Unit)
			b.ReportMetric(u/float64(o.Items), "cpu-ns/"+o.Unit)
		})
	}
	var r Result
	if len(wall[0]) == 0 || len(wall[1]) == 0 {
		return r
	}
	r.Ran = true
	for i := range 2 {
		r.Wall[i], r.CPU[i] = Median(wall[i]), Median(cpu[i])
	}
	if o.Ratio != "" {
		fmt.Printf("RATIO %s %.2f\n", o.Ratio, r.Ratio(o))
	}
	return r
}

// Repeats runs op once (a warm-up) and returns how many times it must run
// to take at least minSample, between 1 and 1,000,000.
func Repeats(b *testing.B, op func(*testing.B), minSample time.Duration) int {
	start := time.Now()
	op(b)
	return repeatsFor(time.Since(start), minSample)
}

// repeatsFor is Repeats' arithmetic: how many runs of an op that took d
// fill minSample (at least 1, at most a million).
func repeatsFor(d, minSample time.Duration) int {
	if d >= minSample {
		return 1
	}
	return int(min(1_000_000, minSample/max(d, time.Nanosecond)+1))
}

// Median returns the median of v (the upper one of an even count); v is
// not modified. It panics on an empty v.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// CPUTime is the user plus system CPU time the process has used.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
