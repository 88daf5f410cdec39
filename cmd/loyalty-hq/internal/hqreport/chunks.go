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
// goroutine (for its own scratch space). With procs goroutines
// (GOMAXPROCS, read once by the caller) the chunks are formatted at once,
// each goroutine taking the next chunk not yet taken while fewer than
// procs+1 chunks past the last one written are taken (see chunkPipe); the
// calling goroutine writes them in order and formats the next chunk
// itself while the one due is not ready: no goroutine waits for a round
// of chunks to end, nor is started and woken for each. The bytes are
// those of one format(nil, 0, n); with one goroutine, one chunk at a
// time. The first failing chunk's error (the lowest items) is returned,
// after the chunks before it are written.
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
	p := newChunkPipe(n, procs)
	var wg sync.WaitGroup
	// Deferred, so the goroutines are let go and waited for also when
	// format panics on this goroutine (a handler's recover would
	// otherwise leave them waiting for a chunk to claim).
	defer wg.Wait()
	defer p.stop()
	for k := 1; k < procs; k++ {
		wg.Go(func() {
			for c, ok := p.claim(false); ok; c, ok = p.claim(false) {
				p.format(k, c, format)
			}
		})
	}
	return p.write(w, format)
}

// chunkPipe hands out an export's chunks to the goroutines formatting
// them and holds the formatted ones until they are written, in a ring
// of slots (chunk c in slot c mod the ring's size): one per goroutine
// and one more, so a goroutine that is done may take the next chunk
// while the one due is written, and a slowed one (the collector, another
// program) holds up the others only once they are a ring ahead. Each
// slot keeps its buffer from chunk to chunk.
type chunkPipe struct {
	n, chunks int
	mu        sync.Mutex
	claimed   sync.Cond // signalled when a chunk may be claimed (or stopped)
	formatted sync.Cond // signalled when a slot is formatted
	next      int       // the next chunk to claim
	written   int       // the chunks written
	stopped   bool
	slots     []chunkSlot
}

type chunkSlot struct {
	b     []byte
	err   error
	ready bool
}

func newChunkPipe(n, procs int) *chunkPipe {
	p := &chunkPipe{n: n, chunks: (n + chunkMembers - 1) / chunkMembers, slots: make([]chunkSlot, procs+1)}
	p.claimed.L, p.formatted.L = &p.mu, &p.mu
	return p
}

// claim returns the next chunk to format, waiting for room in the ring
// unless now; false when there is none to claim (or none now).
func (p *chunkPipe) claim(now bool) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.stopped && p.next < p.chunks && p.next >= p.written+len(p.slots) {
		if now {
			return 0, false
		}
		p.claimed.Wait()
	}
	if p.stopped || p.next >= p.chunks {
		return 0, false
	}
	c := p.next
	p.next++
	return c, true
}

// format formats chunk c into its slot as goroutine k.
func (p *chunkPipe) format(k, c int, format func(k int, b []byte, lo, hi int) ([]byte, error)) {
	s := &p.slots[c%len(p.slots)]
	lo := c * chunkMembers
	// The slot is this goroutine's until it is marked ready.
	b, err := format(k, s.b[:0], lo, min(lo+chunkMembers, p.n))
	p.mu.Lock()
	s.b, s.err, s.ready = b, err, true
	p.formatted.Signal() // only the writer waits for a slot
	p.mu.Unlock()
}

// write writes the chunks in order, formatting chunks itself (as
// goroutine 0) while the one due is not ready.
func (p *chunkPipe) write(w io.Writer, format func(k int, b []byte, lo, hi int) ([]byte, error)) error {
	for c := 0; c < p.chunks; c++ {
		s := &p.slots[c%len(p.slots)]
		p.mu.Lock()
		for !s.ready {
			p.mu.Unlock()
			if mine, ok := p.claim(true); ok {
				p.format(0, mine, format)
				p.mu.Lock()
				continue
			}
			p.mu.Lock()
			if !s.ready {
				p.formatted.Wait()
			}
		}
		p.mu.Unlock()
		if s.err != nil {
			return s.err
		}
		if _, err := w.Write(s.b); err != nil {
			return err
		}
		p.mu.Lock()
		s.ready = false
		p.written++
		p.claimed.Broadcast()
		p.mu.Unlock()
	}
	return nil
}

// stop lets the goroutines waiting to claim a chunk go.
func (p *chunkPipe) stop() {
	p.mu.Lock()
	p.stopped = true
	p.claimed.Broadcast()
	p.mu.Unlock()
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
