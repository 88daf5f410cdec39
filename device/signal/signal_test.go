package signal_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/loyalty-terminal/loyalty/device/signal"
)

// recorder is a fake clock plus a log of output changes at fake times.
type recorder struct {
	now time.Duration
	log []string
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.now += d
	return nil
}

// pin wraps a gpiotest.Pin to record every Out with the fake time.
type pin struct {
	*gpiotest.Pin
	r *recorder
}

func (p pin) Out(l gpio.Level) error {
	if p.Pin.Read() == l {
		return nil // log changes only
	}
	p.r.log = append(p.r.log, fmt.Sprintf("%d:%s=%v", p.r.now/time.Millisecond, p.N, l))
	return p.Pin.Out(l)
}

func setup() (*recorder, map[string]*gpiotest.Pin, *signal.Outputs) {
	r := &recorder{}
	raw := map[string]*gpiotest.Pin{}
	pins := map[string]gpio.PinOut{}
	for _, n := range []string{signal.Buzzer, signal.Green, signal.Red} {
		raw[n] = &gpiotest.Pin{N: n}
		pins[n] = pin{raw[n], r}
	}
	return r, raw, signal.New(pins, r.sleep)
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		name string
		p    signal.Pattern
		want string
	}{
		{"ok", signal.OK, "0:buzzer=High 0:green=High 80:buzzer=Low 500:green=Low"},
		{"error", signal.Error, "0:buzzer=High 0:red=High 100:buzzer=Low 100:red=Low 200:buzzer=High 200:red=High 300:buzzer=Low 300:red=Low 400:buzzer=High 400:red=High 500:buzzer=Low 500:red=Low"},
		{"offline", signal.Offline, "0:red=High 500:red=Low"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, raw, o := setup()
			if err := o.Play(context.Background(), tt.p); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(r.log, " ")
			if sortSameTime(got) != sortSameTime(tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			for n, p := range raw {
				if p.Read() != gpio.Low {
					t.Errorf("%s left %v", n, p.Read())
				}
			}
		})
	}
}

// sortSameTime orders entries with equal times by name, since a step sets
// its outputs in map order.
func sortSameTime(s string) string {
	f := strings.Fields(s)
	for i := 1; i < len(f); i++ {
		for j := i; j > 0; j-- {
			ti, _, _ := strings.Cut(f[j], ":")
			tj, _, _ := strings.Cut(f[j-1], ":")
			if ti == tj && f[j] < f[j-1] {
				f[j], f[j-1] = f[j-1], f[j]
			}
		}
	}
	return strings.Join(f, " ")
}

func TestCancelLeavesOutputsLow(t *testing.T) {
	_, raw, _ := setup()
	ctx, cancel := context.WithCancel(context.Background())
	pins := map[string]gpio.PinOut{signal.Buzzer: raw[signal.Buzzer]}
	o := signal.New(pins, func(ctx context.Context, d time.Duration) error {
		cancel() // the register shuts down mid-beep
		return ctx.Err()
	})
	if err := o.Play(ctx, signal.Error); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if raw[signal.Buzzer].Read() != gpio.Low {
		t.Fatal("buzzer left on")
	}
}

func TestMissingOutputSkipped(t *testing.T) {
	r := &recorder{}
	g := &gpiotest.Pin{N: signal.Green}
	o := signal.New(map[string]gpio.PinOut{signal.Green: pin{g, r}}, r.sleep)
	if err := o.Play(context.Background(), signal.OK); err != nil {
		t.Fatal(err)
	}
	if r.now != 500*time.Millisecond || len(r.log) < 2 {
		t.Fatalf("now %v log %v", r.now, r.log)
	}
}
