package retention

import (
	"runtime"
	"sync"
)

// parallelMin is the number of items below which work is not split: the
// goroutines would cost more than they save.
const parallelMin = 4096

// partsFor is the number of parts to split n items of per-member work
// into: one per processor (GOMAXPROCS), none smaller than half of
// parallelMin.
func partsFor(n int) int {
	parts := runtime.GOMAXPROCS(0)
	if n < parallelMin || parts < 2 {
		return 1
	}
	return min(parts, n/(parallelMin/2))
}

// inParts calls f on parts contiguous ranges [lo, hi) of [0, n), part k
// on the k-th range, concurrently, and returns when every call has. f
// must write only what belongs to its own range or part, so the result
// does not depend on the split; callers merge per-part results in part
// order.
func inParts(n, parts int, f func(part, lo, hi int)) {
	if parts <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 1; k < parts; k++ {
		wg.Go(func() { f(k, k*n/parts, (k+1)*n/parts) })
	}
	f(0, 0, n/parts)
	wg.Wait()
}
