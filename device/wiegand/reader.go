package wiegand

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/clock"
)

// Options configure a Reader. Name, D0 and D1 are required.
type Options struct {
	Name   string
	D0, D1 gpio.PinIn
	// FrameGap is the silence that ends a frame; default DefaultFrameGap.
	FrameGap time.Duration
	// Poll is the WaitForEdge timeout. It must be positive: periph's
	// gpioioctl driver treats 0 as "wait forever" (the opposite of the
	// interface doc and gpiotest), which would make shutdown hang.
	// Default 100 ms.
	Poll time.Duration
	// Facilities, when not empty, are the only facility codes accepted
	// as member cards; other cards are refused as not member cards.
	Facilities []uint32
	Clock      clock.Clock
	Logger     *slog.Logger
}

// Reader decodes a Wiegand reader on two GPIO input lines.
//
// Each line is watched by its own goroutine that stamps an edge with the
// clock when WaitForEdge returns. periph's PinIn drops the kernel
// timestamp, so bit order across the two lines relies on the wake-up
// latency being far below the reader's 200 us-20 ms bit gap; the bit count
// and parity checks catch the rare frame where it is not.
type Reader struct {
	o      Options
	mu     sync.Mutex // guards dec
	dec    *Decoder
	health *device.HealthCounter
}

// NewReader checks options and returns a Reader.
func NewReader(o Options) (*Reader, error) {
	if o.Name == "" || o.D0 == nil || o.D1 == nil {
		return nil, errors.New("wiegand: name, D0 and D1 are required")
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.FrameGap <= 0 {
		o.FrameGap = DefaultFrameGap
	}
	o.Clock = clock.Or(o.Clock)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reader{o: o, dec: NewDecoder(o.FrameGap), health: device.NewHealthCounter(o.Name, o.D0.String()+","+o.D1.String())}, nil
}

// Health returns a snapshot.
func (r *Reader) Health() device.Health { return r.health.Health() }

// Pending is the number of bits received for the frame in progress.
func (r *Reader) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dec.Pending()
}

type pulse struct {
	l  Line
	at time.Time
}

// Run watches both lines until ctx is cancelled and calls emit for each
// card or rejected frame. It returns an error only if the pins cannot be
// set up as inputs.
func (r *Reader) Run(ctx context.Context, emit func(device.Event)) error {
	for _, p := range []gpio.PinIn{r.o.D0, r.o.D1} {
		if err := p.In(gpio.PullUp, gpio.FallingEdge); err != nil {
			r.health.Fault(device.StateUnhealthy, err) // counted as "other"
			return fmt.Errorf("wiegand %s: set up %s: %w", r.o.Name, p, err)
		}
	}
	r.health.SetState(device.StateHealthy)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pulses := make(chan pulse, 2*maxBits)
	var wg sync.WaitGroup
	for l, p := range []gpio.PinIn{r.o.D0, r.o.D1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if p.WaitForEdge(r.o.Poll) {
					select {
					case pulses <- pulse{Line(l), clock.Wall(r.o.Clock)}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	defer wg.Wait()
	defer r.health.SetState(device.StateStopped)
	gap := time.NewTimer(r.o.FrameGap)
	defer gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-pulses:
			r.mu.Lock()
			res, ok := r.dec.Feed(p.l, Falling, p.at)
			r.mu.Unlock()
			if ok {
				r.deliver(res, emit)
			}
			gap.Reset(r.o.FrameGap)
		case <-gap.C:
			r.mu.Lock()
			res, ok := r.dec.Flush(clock.Wall(r.o.Clock))
			r.mu.Unlock()
			if ok {
				r.deliver(res, emit)
			}
			gap.Reset(r.o.FrameGap)
		}
	}
}

func (r *Reader) deliver(res Result, emit func(device.Event)) {
	ev := device.Event{Device: r.o.Name, Symbology: device.SymWiegand, At: res.At}
	switch {
	case res.Err != nil:
		ev.Kind, ev.Reason = device.KindReject, res.Err
	case len(r.o.Facilities) > 0 && !slices.Contains(r.o.Facilities, res.Card.Facility):
		ev.Kind = device.KindReject
		ev.Reason = fmt.Errorf("%w: facility code not configured", device.ErrNotMemberCard)
	default:
		ev.Kind, ev.Payload = device.KindMember, res.Card.String()
	}
	r.health.Count(ev)
	emit(ev)
}
