package signal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Output names used by the built-in patterns.
const (
	Buzzer = "buzzer"
	Green  = "green"
	Red    = "red"
)

// Step sets some outputs, then holds for a while.
type Step struct {
	Set  map[string]gpio.Level
	Hold time.Duration
}

// Pattern is a sequence of steps. Every output a pattern touches is left
// Low when it ends or is interrupted.
type Pattern []Step

// Built-in patterns.
var (
	// OK: one short beep with the green LED (a good scan).
	OK = Pattern{
		{Set: map[string]gpio.Level{Buzzer: gpio.High, Green: gpio.High}, Hold: 80 * time.Millisecond},
		{Set: map[string]gpio.Level{Buzzer: gpio.Low}, Hold: 420 * time.Millisecond},
		{Set: map[string]gpio.Level{Green: gpio.Low}},
	}
	// Error: three beeps with the red LED (a refused scan or card).
	Error = Pattern{
		{Set: map[string]gpio.Level{Buzzer: gpio.High, Red: gpio.High}, Hold: 100 * time.Millisecond},
		{Set: map[string]gpio.Level{Buzzer: gpio.Low, Red: gpio.Low}, Hold: 100 * time.Millisecond},
		{Set: map[string]gpio.Level{Buzzer: gpio.High, Red: gpio.High}, Hold: 100 * time.Millisecond},
		{Set: map[string]gpio.Level{Buzzer: gpio.Low, Red: gpio.Low}, Hold: 100 * time.Millisecond},
		{Set: map[string]gpio.Level{Buzzer: gpio.High, Red: gpio.High}, Hold: 100 * time.Millisecond},
		{Set: map[string]gpio.Level{Buzzer: gpio.Low, Red: gpio.Low}},
	}
	// Offline: one slow silent red blink; repeat it while offline.
	Offline = Pattern{
		{Set: map[string]gpio.Level{Red: gpio.High}, Hold: 500 * time.Millisecond},
		{Set: map[string]gpio.Level{Red: gpio.Low}, Hold: 1500 * time.Millisecond},
	}
)

// Sleep waits d or until ctx is done.
type Sleep func(ctx context.Context, d time.Duration) error

// RealSleep is Sleep on the real clock.
func RealSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Outputs plays patterns on named pins. A missing output (e.g. no red LED
// fitted) is skipped, so one pattern serves every register build.
type Outputs struct {
	mu    sync.Mutex // one pattern at a time: two beeps must not interleave
	pins  map[string]gpio.PinOut
	sleep Sleep
}

// New returns Outputs for the named pins; sleep nil means RealSleep.
func New(pins map[string]gpio.PinOut, sleep Sleep) *Outputs {
	if sleep == nil {
		sleep = RealSleep
	}
	return &Outputs{pins: pins, sleep: sleep}
}

// Play runs p to its end or until ctx is cancelled; either way the outputs
// it touched are left Low, so a cancelled beep never keeps buzzing.
// Concurrent calls play one after the other.
func (o *Outputs) Play(ctx context.Context, p Pattern) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	touched := map[string]bool{}
	var errs []error
	defer func() {
		for name := range touched {
			_ = o.pins[name].Out(gpio.Low)
		}
	}()
	for _, s := range p {
		for name, l := range s.Set {
			pin, ok := o.pins[name]
			if !ok || pin == nil {
				continue
			}
			touched[name] = true
			if err := pin.Out(l); err != nil {
				errs = append(errs, fmt.Errorf("signal %s: %w", name, err))
			}
		}
		if s.Hold > 0 {
			if err := o.sleep(ctx, s.Hold); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}
