package hq

import (
	"log/slog"
	stdsync "sync"
	"time"
)

// byteGate bounds the bytes of the MQTT messages waiting between paho's
// handler and the decoder. A full gate makes the handler wait (paho then
// stops reading the connection and the broker queues for head office's
// persistent session): back-pressure, never a drop. One message larger
// than the bound passes when nothing else waits, so no message can wait
// for ever.
type byteGate struct {
	max  int64
	log  *slog.Logger
	mu   stdsync.Mutex
	used int64
	// wake is closed and replaced by a release while a handler waits
	// (waiting > 0): the common release, with nobody waiting, allocates
	// nothing.
	wake    chan struct{}
	waiting int
	// waits counts the handler's waits; lastLog rate-limits the log line.
	waits   uint64
	lastLog time.Time
}

func newByteGate(max int64, log *slog.Logger) *byteGate {
	return &byteGate{max: max, log: log, wake: make(chan struct{})}
}

// acquire takes n bytes, waiting while the gate is full; false when done
// closed first.
func (g *byteGate) acquire(n int64, done <-chan struct{}) bool {
	g.mu.Lock()
	waited := false
	for g.used > 0 && g.used+n > g.max {
		if !waited {
			waited = true
			g.waits++
			if time.Since(g.lastLog) >= 10*time.Second {
				g.lastLog = time.Now()
				g.log.Warn("ingest queue full: holding the broker back until the store catches up (nothing is dropped)",
					"queued_bytes", g.used, "max_queued_bytes", g.max, "waits", g.waits)
			}
		}
		wake := g.wake
		g.waiting++
		g.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			g.mu.Lock()
			g.waiting--
			g.mu.Unlock()
			return false
		}
		g.mu.Lock()
		g.waiting--
	}
	g.used += n
	g.mu.Unlock()
	return true
}

// release gives n bytes back and wakes the waiters.
func (g *byteGate) release(n int64) {
	g.mu.Lock()
	g.used -= n
	if g.waiting > 0 {
		close(g.wake)
		g.wake = make(chan struct{})
	}
	g.mu.Unlock()
}

// stats returns the bytes queued and the waits so far.
func (g *byteGate) stats() (used int64, waits uint64) {
	if g == nil { // a Service built without New (tests of the acker)
		return 0, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used, g.waits
}
