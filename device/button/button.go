package button

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/clock"
)

// DefaultDebounce is how long a level must hold before it counts: push
// buttons bounce for 1-10 ms; 30 ms is still instant for a person.
const DefaultDebounce = 30 * time.Millisecond

// Debouncer turns raw samples of a button into presses. Not safe for
// concurrent use.
type Debouncer struct {
	delay     time.Duration
	stable    bool // debounced state: true = pressed
	candidate bool
	since     time.Time
	changing  bool
	bounces   int64
}

// NewDebouncer starts in the released state.
func NewDebouncer(delay time.Duration) *Debouncer {
	if delay <= 0 {
		delay = DefaultDebounce
	}
	return &Debouncer{delay: delay}
}

// Sample records the raw state at time at and reports whether a press
// (released to pressed, held for the debounce delay) completed.
func (d *Debouncer) Sample(pressed bool, at time.Time) bool {
	if pressed != d.candidate {
		if d.changing {
			// The level flipped back before it settled.
			d.bounces++
		}
		d.candidate, d.since = pressed, at
		d.changing = d.candidate != d.stable
		return false
	}
	if d.changing && at.Sub(d.since) >= d.delay {
		d.stable, d.changing = d.candidate, false
		return d.stable
	}
	return false
}

// Remaining is how long until a pending change settles, or 0 if none is
// pending. Callers sample again after it.
func (d *Debouncer) Remaining(now time.Time) time.Duration {
	if !d.changing {
		return 0
	}
	return max(d.delay-now.Sub(d.since), 0)
}

// Bounces counts level flips that did not settle.
func (d *Debouncer) Bounces() int64 { return d.bounces }

// Button is one configured button.
type Button struct {
	Name   string
	Pin    gpio.PinIn
	Action string // e.g. "show_points", "complete", "cancel", "redeem"
	// ActiveHigh says pressed is High (button to 3.3 V with pull-down).
	// The default is pressed = Low with the internal pull-up, the usual
	// wiring of a button to ground.
	ActiveHigh bool
}

// Options configure a Watcher.
type Options struct {
	Buttons  []Button
	Debounce time.Duration // default DefaultDebounce
	// Poll is the WaitForEdge timeout; always positive (periph's
	// gpioioctl treats 0 as forever). Default 100 ms.
	Poll   time.Duration
	Clock  clock.Clock
	Logger *slog.Logger
}

// Watcher watches buttons.
type Watcher struct {
	o      Options
	mu     sync.Mutex
	health map[string]*device.Health
}

// New checks options and returns a Watcher.
func New(o Options) (*Watcher, error) {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	o.Clock = clock.Or(o.Clock)
	w := &Watcher{o: o, health: map[string]*device.Health{}}
	for i, b := range o.Buttons {
		if b.Name == "" || b.Pin == nil || b.Action == "" {
			return nil, fmt.Errorf("button %d: name, pin and action are required", i)
		}
		if _, dup := w.health[b.Name]; dup {
			return nil, fmt.Errorf("button %q configured twice", b.Name)
		}
		w.health[b.Name] = &device.Health{Name: b.Name, Path: b.Pin.String(), State: device.StateStarting,
			Rejects: map[string]int64{}, Faults: map[string]int64{}}
	}
	return w, nil
}

// Health returns one snapshot per button.
func (w *Watcher) Health() []device.Health {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]device.Health, 0, len(w.o.Buttons))
	for _, b := range w.o.Buttons {
		h := *w.health[b.Name]
		h.Rejects = map[string]int64{"bounce": w.health[b.Name].Rejects["bounce"]}
		h.Faults = map[string]int64{}
		for k, v := range w.health[b.Name].Faults {
			h.Faults[k] = v
		}
		out = append(out, h)
	}
	return out
}

// Run watches every button until ctx is cancelled. A button whose pin
// cannot be set up is reported unhealthy; the others carry on.
func (w *Watcher) Run(ctx context.Context, emit func(device.Event)) error {
	var wg sync.WaitGroup
	var emu sync.Mutex
	safeEmit := func(e device.Event) { emu.Lock(); defer emu.Unlock(); emit(e) }
	for _, b := range w.o.Buttons {
		wg.Add(1)
		go func() { defer wg.Done(); w.watch(ctx, b, safeEmit) }()
	}
	wg.Wait()
	return nil
}

func (w *Watcher) update(name string, f func(h *device.Health)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w.health[name])
}

func (w *Watcher) watch(ctx context.Context, b Button, emit func(device.Event)) {
	pull := gpio.PullUp
	if b.ActiveHigh {
		pull = gpio.PullDown
	}
	if err := b.Pin.In(pull, gpio.BothEdges); err != nil {
		w.update(b.Name, func(h *device.Health) {
			h.State, h.LastError = device.StateUnhealthy, err.Error()
			h.Faults["other"]++
		})
		return
	}
	w.update(b.Name, func(h *device.Health) { h.State = device.StateHealthy })
	defer w.update(b.Name, func(h *device.Health) { h.State = device.StateStopped })
	d := NewDebouncer(w.o.Debounce)
	pressed := func() bool { return (b.Pin.Read() == gpio.High) == b.ActiveHigh }
	d.Sample(pressed(), clock.Wall(w.o.Clock))
	var bounces int64
	for ctx.Err() == nil {
		timeout := w.o.Poll
		if r := d.Remaining(clock.Wall(w.o.Clock)); r > 0 {
			timeout = min(timeout, r+time.Millisecond)
		}
		b.Pin.WaitForEdge(timeout) // edge or timeout: sample either way
		now := clock.Wall(w.o.Clock)
		if d.Sample(pressed(), now) {
			w.update(b.Name, func(h *device.Health) { h.Frames++ })
			emit(device.Event{Device: b.Name, Kind: device.KindButton, Payload: b.Name, Action: b.Action, At: now})
		}
		if n := d.Bounces(); n != bounces {
			bounces = n
			w.update(b.Name, func(h *device.Health) { h.Rejects["bounce"] = n })
		}
	}
}
