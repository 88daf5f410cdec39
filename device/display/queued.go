package display

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
)

// QueuedOptions configure a Queued display.
type QueuedOptions struct {
	// Baud paces the output to what the line carries (Baud/10 bytes a
	// second, 8N1); 0 means no pacing (a log or a test writer).
	Baud int
	// Backlog is how much wire time may be queued ahead before the next
	// screen waits (and is replaced by any newer one); default 250ms.
	Backlog time.Duration
	// StuckAfter marks the display stuck in Health when one write has
	// been in progress this long; default 1s.
	StuckAfter time.Duration
	// Retry is the first wait before a failed display is tried again,
	// doubling up to RetryMax; defaults 250ms and 2s.
	Retry, RetryMax time.Duration
	// Watch is a path checked every second while idle: when it vanishes
	// (an unplugged USB display) the port is dropped, and the screen is
	// redrawn as soon as the path is back. Empty: not watched.
	Watch  string
	Logger *slog.Logger // nil: silent
}

type screen struct {
	clear bool
	lines [2]string
}

// Queued puts a Serial display behind its own writer goroutine, so that
// nobody showing a screen ever waits for the display. The queue holds one
// screen: a newer one replaces one not yet written. Output is paced to
// the line's baud rate, each write has a timeout, and a display that
// failed (unplugged, stuck, busy) is retried with backoff and redrawn
// with the current screen as soon as it takes bytes again. Show, Clear
// and Brightness never block and never fail on the port (Health says how
// the display is doing).
type Queued struct {
	s *Serial
	o QueuedOptions

	mu         sync.Mutex
	want       screen
	haveWant   bool
	shownOK    bool // the display shows the last screen written (else it must be redrawn)
	pending    bool // want not yet taken by the writer
	bright     int  // a brightness still to send; 0 none
	superseded int64
	stuckSeen  bool
	stuckCount int64

	wake   chan struct{}
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
}

// NewQueued starts the writer for s; Close stops it and closes s.
func NewQueued(s *Serial, o QueuedOptions) *Queued {
	if o.Backlog <= 0 {
		o.Backlog = 250 * time.Millisecond
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = time.Second
	}
	if o.Retry <= 0 {
		o.Retry = 250 * time.Millisecond
	}
	if o.RetryMax < o.Retry {
		o.RetryMax = max(2*time.Second, o.Retry)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	q := &Queued{s: s, o: o, wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	go q.run()
	return q
}

func (q *Queued) put(sc screen) {
	q.mu.Lock()
	if q.pending {
		q.superseded++ // the screen not yet taken by the writer is replaced
	}
	q.want, q.haveWant, q.pending = sc, true, true
	q.mu.Unlock()
	q.poke()
}

func (q *Queued) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Show implements Display: it queues the screen and returns at once.
func (q *Queued) Show(_ context.Context, lines [2]string) error {
	q.put(screen{lines: lines})
	return nil
}

// Clear implements Display: it queues a blank screen and returns at once.
func (q *Queued) Clear(context.Context) error {
	q.put(screen{clear: true})
	return nil
}

// Brightness implements Display: a level outside 1-4 is refused, any
// other is queued.
func (q *Queued) Brightness(_ context.Context, level int) error {
	if _, err := q.s.proto.Brightness(level); err != nil {
		return err
	}
	q.mu.Lock()
	q.bright = level
	q.mu.Unlock()
	q.poke()
	return nil
}

// Superseded counts screens replaced by a newer one before they were
// written (the display was slower than the checkout).
func (q *Queued) Superseded() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.superseded
}

// Idle reports whether every queued screen has been written.
func (q *Queued) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bright == 0 && !q.pending && (!q.haveWant || q.shownOK)
}

// Health is the display's health; a write in progress for longer than
// StuckAfter shows as unhealthy with a "stuck" fault, even on a port
// without write deadlines.
func (q *Queued) Health() device.Health {
	h := q.s.Health()
	q.mu.Lock()
	defer q.mu.Unlock()
	if d := q.s.writingFor(); d > 0 {
		if d >= q.o.StuckAfter {
			if !q.stuckSeen {
				q.stuckSeen = true
				q.stuckCount++
			}
			h.State = device.StateUnhealthy
			h.LastError = fmt.Sprintf("display write: %v: a write has not finished for %s", device.ErrDeviceStuck, d.Round(100*time.Millisecond))
		}
	}
	if q.stuckCount > 0 {
		h.Faults[device.ReasonLabel(device.ErrDeviceStuck)] += q.stuckCount
	}
	return h
}

// Close stops the writer without waiting for a write in progress and
// closes the port.
func (q *Queued) Close() error {
	q.once.Do(func() { close(q.done) })
	err := q.s.Drop() // wakes a write blocked on a port with deadlines
	select {
	case <-q.exited:
	case <-time.After(q.o.StuckAfter):
		// a write on a port without deadlines: it ends when the port does
	}
	return err
}

func (q *Queued) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-q.done:
		return false
	case <-t.C:
		return true
	}
}

func (q *Queued) run() {
	defer close(q.exited)
	busyUntil := time.Now()
	delay := q.o.Retry
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		q.mu.Lock()
		dirty := q.bright != 0 || q.pending || (q.haveWant && !q.shownOK)
		q.mu.Unlock()
		if !dirty {
			select {
			case <-q.done:
				return
			case <-q.wake:
			case <-tick.C:
				q.checkPath()
			}
			continue
		}
		if q.o.Baud > 0 {
			if wait := time.Until(busyUntil) - q.o.Backlog; wait > 0 {
				if !q.sleep(wait) {
					return
				}
				continue // a newer screen may have come meanwhile
			}
		}
		q.mu.Lock()
		sc, redraw, bright, fresh := q.want, !q.shownOK, q.bright, q.pending
		q.bright, q.pending = 0, false
		q.stuckSeen = false
		q.mu.Unlock()

		var b []byte
		if bright != 0 {
			b, _ = q.s.proto.Brightness(bright)
		}
		if q.haveScreen() && (redraw || fresh) {
			if sc.clear {
				b = append(b, q.s.proto.Clear()...)
			} else {
				b = append(b, q.s.proto.Show(q.s.cp, q.s.width, sc.lines)...)
			}
		}
		err := q.s.write(b)

		q.mu.Lock()
		if err == nil {
			q.shownOK = true
		} else {
			q.shownOK = false
			if bright != 0 && q.bright == 0 {
				q.bright = bright
			}
		}
		q.mu.Unlock()
		select {
		case <-q.done:
			return
		default:
		}
		if err != nil {
			q.o.Logger.Warn("customer display write failed; retrying", "err", err, "retry_in", delay)
			if !q.sleep(delay) {
				return
			}
			delay = min(2*delay, q.o.RetryMax)
			continue
		}
		delay = q.o.Retry
		if q.o.Baud > 0 {
			now := time.Now()
			if busyUntil.Before(now) {
				busyUntil = now
			}
			busyUntil = busyUntil.Add(time.Duration(len(b)) * 10 * time.Second / time.Duration(q.o.Baud))
		}
	}
}

func (q *Queued) haveScreen() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.haveWant
}

// checkPath drops the port when the watched path vanished, so the display
// is redrawn when it comes back even if the screen does not change.
func (q *Queued) checkPath() {
	if q.o.Watch == "" {
		return
	}
	if _, err := os.Stat(q.o.Watch); !errors.Is(err, os.ErrNotExist) {
		return
	}
	q.mu.Lock()
	was := q.shownOK
	q.shownOK = false
	q.mu.Unlock()
	if was {
		_ = q.s.Drop()
		_ = q.s.fail(fmt.Errorf("display: %s vanished: %w", q.o.Watch, device.ErrDeviceGone))
	}
}

var _ Display = (*Queued)(nil)
