package hqreport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestWriteInChunks: the chunked writer writes what one serial pass
// writes, with any number of goroutines and for any count around the chunk
// size, and returns the error of the lowest failing item.
func TestWriteInChunks(t *testing.T) {
	format := func(failAt int) func(k int, b []byte, lo, hi int) ([]byte, error) {
		return func(_ int, b []byte, lo, hi int) ([]byte, error) {
			for i := lo; i < hi; i++ {
				if i >= failAt && (i-failAt)%chunkMembers == 0 {
					return b, fmt.Errorf("item %d", i)
				}
				b = strconv.AppendInt(append(b, ' '), int64(i), 10)
			}
			return b, nil
		}
	}
	for _, procs := range []int{1, 2, 3, 8} {
		for _, n := range []int{0, 1, chunkMembers, chunkMembers + 1, 7*chunkMembers - 1, 20 * chunkMembers} {
			func() {
				want, _ := format(n)(0, nil, 0, n)
				var got bytes.Buffer
				if err := writeInChunks(&got, n, procs, format(n)); err != nil || !bytes.Equal(got.Bytes(), want) {
					t.Errorf("procs %d n %d: err %v, %d bytes, want %d", procs, n, err, got.Len(), len(want))
				}
				if n < 3 {
					return
				}
				fail := n / 3
				got.Reset()
				err := writeInChunks(&got, n, procs, format(fail))
				if err == nil || err.Error() != fmt.Sprintf("item %d", fail) {
					t.Errorf("procs %d n %d: error %v, want item %d", procs, n, err, fail)
				}
				if prefix, _ := format(n)(0, nil, 0, fail/chunkMembers*chunkMembers); !bytes.HasPrefix(prefix, got.Bytes()) {
					t.Errorf("procs %d n %d: wrote more than the items before the failing chunk", procs, n)
				}
			}()
		}
	}
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct {
	limit int
	got   bytes.Buffer
}

var errWriter = errors.New("writer failed")

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.got.Len()+len(b) > w.limit {
		return 0, errWriter
	}
	return w.got.Write(b)
}

// TestWriteInChunksWriterFails: a failing writer's error is returned (and
// writeInChunks returns at all: it waits for the goroutines formatting
// ahead, which must be let go), and what was written is a prefix of the
// whole within what the writer took.
func TestWriteInChunksWriterFails(t *testing.T) {
	format := func(_ int, b []byte, lo, hi int) ([]byte, error) {
		for i := lo; i < hi; i++ {
			b = strconv.AppendInt(append(b, ' '), int64(i), 10)
		}
		return b, nil
	}
	all, _ := format(0, nil, 0, 40*chunkMembers)
	for _, procs := range []int{1, 2, 3, 8} {
		for _, limit := range []int{0, 1, len(all) / 3, len(all) - 1} {
			w := &failingWriter{limit: limit}
			if err := writeInChunks(w, 40*chunkMembers, procs, format); !errors.Is(err, errWriter) {
				t.Fatalf("procs %d limit %d: %v, want the writer's error", procs, limit, err)
			}
			if !bytes.HasPrefix(all, w.got.Bytes()) || w.got.Len() > limit {
				t.Fatalf("procs %d limit %d: wrote %d bytes, not a prefix within the limit", procs, limit, w.got.Len())
			}
		}
	}
}

// TestWriteInChunksOneAtATime: with one goroutine as with several, format
// is asked for at most a chunk of items at a time, so an export is never
// held whole in memory.
func TestWriteInChunksOneAtATime(t *testing.T) {
	for _, procs := range []int{1, 2, 3} {
		var mu sync.Mutex // format runs on several goroutines
		largest := 0
		format := func(_ int, b []byte, lo, hi int) ([]byte, error) {
			mu.Lock()
			largest = max(largest, hi-lo)
			mu.Unlock()
			for i := lo; i < hi; i++ {
				b = strconv.AppendInt(append(b, ' '), int64(i), 10)
			}
			return b, nil
		}
		var got bytes.Buffer
		if err := writeInChunks(&got, 10*chunkMembers+5, procs, format); err != nil {
			t.Fatal(err)
		}
		if largest > chunkMembers {
			t.Errorf("procs %d: format asked for %d items at once, more than a chunk (%d)", procs, largest, chunkMembers)
		}
	}
}

// TestWriteInChunksPanicLetsGo: when format panics on the writing
// goroutine, the goroutines formatting beside it are let go rather than
// left waiting for a chunk to claim (an HTTP handler recovers panics).
func TestWriteInChunksPanicLetsGo(t *testing.T) {
	format := func(k int, b []byte, lo, hi int) ([]byte, error) {
		if k == 0 && lo >= 4*chunkMembers {
			panic("format failed")
		}
		return strconv.AppendInt(b, int64(lo), 10), nil
	}
	before := runtime.NumGoroutine()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		writeInChunks(io.Discard, 40*chunkMembers, 3, format)
	}()
	// The goroutines have returned from their work; give them up to
	// ten seconds to be gone (left waiting they never are).
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after", before, runtime.NumGoroutine())
		}
	}
}
