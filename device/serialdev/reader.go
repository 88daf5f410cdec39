package serialdev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/backoff"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/device/frame"
)

// Backoff bounds the wait between reopen attempts.
type Backoff struct {
	Initial time.Duration // default 100 ms
	Max     time.Duration // default 5 s
}

// Options configure a Reader. Name and Path are required.
type Options struct {
	Name   string
	Path   string
	Serial SerialOptions
	Frame  frame.Options
	// Open opens the port; nil means OpenSerial with ReadTimeout.
	Open Opener
	// ReadTimeout bounds one blocking read (default 50 ms) so idle-gap
	// frames are flushed and a cancelled context is seen promptly.
	ReadTimeout time.Duration
	Backoff     Backoff
	// PathCheck is how often an idle port checks that its path still
	// exists (default 1 s): a device whose name vanished without a read
	// error (a re-pointed link) is treated as unplugged.
	PathCheck time.Duration
	// After waits for a backoff delay; nil means time.After. Tests inject
	// their own to drive reopen without sleeping.
	After func(time.Duration) <-chan time.Time
	// Clock stamps frames; nil means the system clock.
	Clock  clock.Clock
	Logger *slog.Logger // nil: silent
}

// Handler turns a frame into an event. It must fill Kind and, for rejects,
// Reason; Device and At are filled in by the Reader.
type Handler func(f frame.Frame) device.Event

// Reader is one running serial input device.
type Reader struct {
	o      Options
	handle Handler
	health *device.HealthCounter
	asm    *frame.Assembler
	log    *slog.Logger
	out    []frame.Output
}

// New returns a Reader; Run starts it.
func New(o Options, h Handler) (*Reader, error) {
	if o.Name == "" || o.Path == "" {
		return nil, errors.New("serialdev: name and path are required")
	}
	if _, err := o.Serial.Mode(); err != nil {
		return nil, fmt.Errorf("serialdev %s: %w", o.Name, err)
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 50 * time.Millisecond
	}
	if o.Backoff.Initial <= 0 {
		o.Backoff.Initial = 100 * time.Millisecond
	}
	if o.Backoff.Max < o.Backoff.Initial {
		o.Backoff.Max = max(5*time.Second, o.Backoff.Initial)
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.PathCheck <= 0 {
		o.PathCheck = time.Second
	}
	o.Clock = clock.Or(o.Clock)
	if o.Open == nil {
		rt := o.ReadTimeout
		o.Open = func(path string, so SerialOptions) (io.ReadWriteCloser, error) { return OpenSerial(path, so, rt) }
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reader{
		o: o, handle: h, asm: frame.New(o.Frame),
		log:    log.With("device", o.Name),
		health: device.NewHealthCounter(o.Name, o.Path),
	}
	return r, nil
}

// Name returns the device name.
func (r *Reader) Name() string { return r.o.Name }

// Health returns a snapshot of the device's health.
func (r *Reader) Health() device.Health { return r.health.Health() }

// Run reads the device until ctx is cancelled, calling emit for every event
// (accepted or rejected). emit is called from Run's goroutine only; it
// should not block for long, or the device's bytes queue in the kernel.
// Run returns nil when ctx is cancelled.
func (r *Reader) Run(ctx context.Context, emit func(device.Event)) error {
	retry := backoff.Policy{Min: r.o.Backoff.Initial, Max: r.o.Backoff.Max}
	attempt := 0 // failed opens since the last successful one
	defer r.health.SetState(device.StateStopped)
	for {
		if ctx.Err() != nil {
			return nil
		}
		port, err := r.o.Open(r.o.Path, r.o.Serial)
		if err != nil {
			r.health.Fault(device.StateUnhealthy, err)
			attempt++
			delay := retry.Delay(attempt)
			r.log.Warn("device unavailable, will retry", "path", r.o.Path, "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-r.o.After(delay):
			}
			continue
		}
		attempt = 0
		r.health.Opened()
		r.log.Info("device open", "path", r.o.Path)
		err = r.readLoop(ctx, port, emit)
		if err == nil {
			return nil
		}
		r.health.Fault(device.StateUnhealthy, err)
		r.log.Warn("device lost, reopening", "path", r.o.Path, "err", err)
		// A half frame from before the unplug must not be glued to bytes
		// after it.
		r.asm.Reset()
	}
}

// readLoop returns nil when ctx is cancelled, or the error that ended the
// port.
func (r *Reader) readLoop(ctx context.Context, port io.ReadWriteCloser, emit func(device.Event)) error {
	var once sync.Once
	closePort := func() { once.Do(func() { port.Close() }) }
	defer closePort()
	stop := context.AfterFunc(ctx, closePort) // unblocks a Read without timeout
	defer stop()
	buf := make([]byte, 512)
	// Only watch a path that exists now (custom openers may use names
	// that are not files).
	_, serr := os.Stat(r.o.Path)
	watch := serr == nil
	lastCheck, lastHolders := time.Now(), time.Now()
	// root ignores TIOCEXCL: a `cat` started on the port after us would
	// take every other scan. Somebody opening the port makes us look for
	// other holders; if there are, let go and report busy.
	var ow *openWatch
	var recheck time.Time
	if watch {
		if ow = watchOpens(r.o.Path); ow != nil {
			defer ow.close()
			// The port was opened (and reported healthy) before the
			// watch existed: an opener in between sends no event, so
			// look once, as if one had been seen.
			recheck = time.Now().Add(200 * time.Millisecond)
		}
	}
	for {
		n, err := port.Read(buf)
		now := clock.Wall(r.o.Clock)
		if ow != nil && ow.opened() {
			// look a moment later: the opener's descriptor may not be in
			// /proc yet, and a short-lived opener (a second loyaltyd
			// refused by the lock, a udev probe) is gone by then
			recheck = time.Now().Add(200 * time.Millisecond)
		}
		if !recheck.IsZero() && time.Now().After(recheck) {
			recheck = time.Time{}
			if hs := Holders(r.o.Path); len(hs) > 0 {
				return heldError(r.o.Path, hs)
			}
		}
		if watch && n == 0 && err == nil && time.Since(lastCheck) >= r.o.PathCheck {
			lastCheck = time.Now()
			if _, serr := os.Stat(r.o.Path); errors.Is(serr, os.ErrNotExist) {
				return fmt.Errorf("%s vanished: %w", r.o.Path, device.ErrDeviceGone)
			}
			if ow == nil && time.Since(lastHolders) >= 5*time.Second {
				lastHolders = time.Now()
				if hs := Holders(r.o.Path); len(hs) > 0 {
					return heldError(r.o.Path, hs)
				}
			}
		}
		if n > 0 {
			r.out = r.asm.Feed(buf[:n], now, r.out[:0])
		} else {
			r.out = r.asm.Flush(now, r.out[:0])
		}
		r.deliver(emit)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w (%v)", r.o.Path, device.ErrDeviceGone, err)
		}
	}
}

// deliver emits the assembler's outputs in wire order.
func (r *Reader) deliver(emit func(device.Event)) {
	for _, o := range r.out {
		if o.Reject.Err != nil {
			r.count(device.Event{Kind: device.KindReject, Reason: o.Reject.Err}, emit, o.Reject.At)
			continue
		}
		r.count(r.handle(o.Frame), emit, o.Frame.At)
	}
}

func (r *Reader) count(ev device.Event, emit func(device.Event), at time.Time) {
	ev.Device = r.o.Name
	ev.At = at
	r.health.Count(ev)
	emit(ev)
}
