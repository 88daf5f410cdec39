package button_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/button"
	"github.com/loyalty-terminal/loyalty/device/testkit"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestDebouncer(t *testing.T) {
	type sample struct {
		pressed bool
		at      time.Duration
	}
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []sample
		presses int
		bounces int64
	}{
		{name: "clean press", samples: []sample{{true, 0}, {true, 30 * ms}}, presses: 1},
		{name: "press bouncing then settles", samples: []sample{{true, 0}, {false, 1 * ms}, {true, 2 * ms}, {false, 3 * ms}, {true, 4 * ms}, {true, 40 * ms}}, presses: 1, bounces: 2},
		{name: "glitch shorter than debounce", samples: []sample{{true, 0}, {false, 5 * ms}, {false, 100 * ms}}, presses: 0, bounces: 1},
		{name: "held press counts once", samples: []sample{{true, 0}, {true, 30 * ms}, {true, 60 * ms}, {true, 90 * ms}}, presses: 1},
		{name: "release then press again", samples: []sample{{true, 0}, {true, 30 * ms}, {false, 40 * ms}, {false, 80 * ms}, {true, 90 * ms}, {true, 130 * ms}}, presses: 2},
		{name: "release bounce is not a press", samples: []sample{{true, 0}, {true, 30 * ms}, {false, 40 * ms}, {true, 41 * ms}, {false, 42 * ms}, {false, 90 * ms}}, presses: 1, bounces: 1},
		{name: "not yet settled", samples: []sample{{true, 0}, {true, 29 * ms}}, presses: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := button.NewDebouncer(30 * ms)
			n := 0
			for _, s := range tt.samples {
				if d.Sample(s.pressed, t0.Add(s.at)) {
					n++
				}
			}
			if n != tt.presses || d.Bounces() != tt.bounces {
				t.Fatalf("presses %d bounces %d, want %d %d", n, d.Bounces(), tt.presses, tt.bounces)
			}
		})
	}
}

func TestRemaining(t *testing.T) {
	d := button.NewDebouncer(30 * time.Millisecond)
	if d.Remaining(t0) != 0 {
		t.Fatal("pending without change")
	}
	d.Sample(true, t0)
	if got := d.Remaining(t0.Add(10 * time.Millisecond)); got != 20*time.Millisecond {
		t.Fatalf("remaining %v", got)
	}
}

func TestWatcherWithGPIOTest(t *testing.T) {
	show := &gpiotest.Pin{N: "GPIO5", Num: 5, EdgesChan: make(chan gpio.Level)}
	cancelBtn := &gpiotest.Pin{N: "GPIO6", Num: 6, EdgesChan: make(chan gpio.Level)}
	broken := &gpiotest.Pin{N: "GPIO13", Num: 13} // no EdgesChan: setup fails
	w, err := button.New(button.Options{Debounce: 200 * time.Millisecond, Poll: 10 * time.Millisecond, Buttons: []button.Button{
		{Name: "show", Pin: show, Action: "show_points"},
		{Name: "cancel", Pin: cancelBtn, Action: "cancel"},
		{Name: "broken", Pin: broken, Action: "redeem"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var evs []device.Event
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx, func(e device.Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() })
		close(done)
	}()
	health := func(name string) device.Health {
		for _, h := range w.Health() {
			if h.Name == name {
				return h
			}
		}
		t.Fatalf("no health for %s", name)
		return device.Health{}
	}
	testkit.Eventually(t, 5*time.Second, "buttons set up", func() bool {
		return health("show").State == device.StateHealthy && health("cancel").State == device.StateHealthy
	})
	// A bouncing press of "show", then release; a clean press of cancel.
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low} {
		show.EdgesChan <- l
	}
	testkit.Eventually(t, 5*time.Second, "show press", func() bool { mu.Lock(); defer mu.Unlock(); return len(evs) == 1 })
	show.EdgesChan <- gpio.High
	cancelBtn.EdgesChan <- gpio.Low
	testkit.Eventually(t, 5*time.Second, "cancel press", func() bool { mu.Lock(); defer mu.Unlock(); return len(evs) == 2 })
	mu.Lock()
	if evs[0].Action != "show_points" || evs[0].Kind != device.KindButton || evs[1].Action != "cancel" {
		t.Errorf("events %+v", evs)
	}
	mu.Unlock()
	if h := health("show"); h.Frames != 1 || h.Rejects["bounce"] == 0 {
		t.Errorf("show health %+v", h)
	}
	if h := health("broken"); h.State != device.StateUnhealthy || h.LastError == "" {
		t.Errorf("broken health %+v", h)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(evs) != 2 {
		t.Fatalf("extra events %+v", evs)
	}
}

func TestNewRejectsBadButtons(t *testing.T) {
	p := &gpiotest.Pin{N: "X"}
	for name, bs := range map[string][]button.Button{
		"no action": {{Name: "a", Pin: p}},
		"no pin":    {{Name: "a", Action: "cancel"}},
		"duplicate": {{Name: "a", Pin: p, Action: "x"}, {Name: "a", Pin: p, Action: "y"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := button.New(button.Options{Buttons: bs}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
