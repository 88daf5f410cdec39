package hqreport

import (
	"io"
	"slices"
	"sync"
)

// chunkMembers is the number of members one chunk of an export holds.
const chunkMembers = 1024

// writeInChunks writes what format makes of items [0, n) to w, in order.
// format(k, b, lo, hi) appends items [lo, hi) to b; k < procs names the
// goroutine (for its own scratch space). The chunks are formatted by
// procs goroutines (GOMAXPROCS, read once by the caller) at once, a
// round of one chunk per goroutine at a time, and written in order after each round, so the
// bytes are those of one format(nil, 0, n); with one goroutine, one chunk
// at a time. The first failing chunk's
// error (the lowest items) is returned, after the chunks before it
// are written.
func writeInChunks(w io.Writer, n, procs int, format func(k int, b []byte, lo, hi int) ([]byte, error)) error {
	if procs < 2 || n <= chunkMembers {
		// One goroutine: chunk after chunk in one buffer, not the whole
		// export in memory (154 MB of JSON for the benchmark's population,
		// faulted in page by page).
		var b []byte
		for lo := 0; lo < n || lo == 0; lo += chunkMembers {
			var err error
			if b, err = format(0, b[:0], lo, min(lo+chunkMembers, n)); err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	bufs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += procs * chunkMembers {
		chunks := min(procs, (n-lo+chunkMembers-1)/chunkMembers)
		run := func(k int) {
			start := lo + k*chunkMembers
			bufs[k], errs[k] = format(k, bufs[k][:0], start, min(start+chunkMembers, n))
		}
		for k := 1; k < chunks; k++ {
			wg.Go(func() { run(k) })
		}
		run(0)
		wg.Wait()
		for k := range chunks {
			if errs[k] != nil {
				return errs[k]
			}
			if _, err := w.Write(bufs[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// roomy returns b with room for a member's line: when less than 4 KiB is
// left its capacity is doubled, so a chunk's buffer grows to its size
// leaving about that size behind, not the four times append's quarter
// steps leave.
func roomy(b []byte) []byte {
	if cap(b)-len(b) < 4<<10 {
		return slices.Grow(b, max(cap(b), 4<<10))
	}
	return b
}
