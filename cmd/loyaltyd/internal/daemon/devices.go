package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/device/manager"
	"github.com/loyalty-terminal/loyalty/device/signal"
)

// managerConfig maps the daemon's config onto the device manager's; each
// device's simulate is its own (a simulated scanner next to a real one).
func managerConfig(cfg *config.Config, simDir string) manager.Config {
	mc := manager.Config{SimDir: simDir}
	serial := func(name string, s config.Serial, aim bool) manager.SerialDevice {
		return manager.SerialDevice{Simulate: s.Simulate, Name: name, Path: s.Path, Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits,
			Terminator: s.Terminator, IdleGap: s.IdleGap, Prefix: s.Prefix, AIM: aim, MaxLen: s.MaxFrame}
	}
	for _, sc := range cfg.Devices.Scanners {
		mc.Scanners = append(mc.Scanners, serial(sc.Name, sc.Serial, sc.AIM))
	}
	for _, ms := range cfg.Devices.Magstripe {
		mc.Magstripes = append(mc.Magstripes, serial(ms.Name, ms.Serial, false))
	}
	for _, w := range cfg.Devices.Wiegand {
		// simulated: the real decoder on in-memory lines; cards come from
		// loyaltyctl scan -device NAME FACILITY-NUMBER
		mc.Wiegand = append(mc.Wiegand, manager.Wiegand{Name: w.Name, D0: w.D0, D1: w.D1, Simulate: w.Simulate})
	}
	for _, b := range cfg.Devices.Buttons {
		mc.Buttons = append(mc.Buttons, manager.Button{Name: firstNonEmpty(b.Name, b.Pin), Pin: b.Pin, Action: b.Action})
	}
	o := cfg.Devices.Outputs
	mc.Outputs = map[string]string{}
	for role, pin := range map[string]string{signal.Buzzer: o.Buzzer, signal.Green: o.OKLED, signal.Red: firstNonEmpty(o.ErrorLED, o.OfflineLED)} {
		if pin != "" {
			mc.Outputs[role] = pin
		}
	}
	dc := cfg.Devices.Display
	mc.Display = manager.Display{Type: firstNonEmpty(dc.Kind, "log"), Path: dc.Path, Baud: dc.Baud, CodePage: dc.CodePage, Width: dc.Width,
		Brightness: dc.Brightness, WriteTimeout: dc.WriteTimeout, Simulate: dc.Simulate}
	for _, p := range cfg.MemberCards.Patterns {
		mc.Classify.Members = append(mc.Classify.Members, classify.MemberPattern{Name: p.Name, Prefix: p.Prefix, Length: p.Length, Check: classify.Check(p.Check)})
	}
	for _, r := range cfg.MemberCards.Ranges {
		mc.Classify.Members = append(mc.Classify.Members, classify.MemberPattern{Name: r.Name, From: r.From, To: r.To})
	}
	for _, e := range cfg.InstorePrefixes {
		mc.Classify.Embedded = append(mc.Classify.Embedded, classify.EmbeddedLabel{Prefix: e.Prefix, ArticleDigits: e.ArticleDigits,
			InnerCheck: e.InnerCheck, ValueDigits: e.ValueDigits, Weight: e.Kind == "weight"})
	}
	mc.Classify.Controls = cfg.ControlCodes
	return mc
}

// deviceInput is how device events become checkout events: weight labels
// by the configured weight layouts, price labels against the catalogue.
func deviceInput(cfg *config.Config, catalog checkout.Catalog) checkout.DeviceInput {
	in := checkout.DeviceInput{Catalog: catalog}
	for _, p := range cfg.InstorePrefixes {
		if p.Kind == "weight" {
			in.Weighed = append(in.Weighed, checkout.WeightLabel{Prefix: p.Prefix, ArticleDigits: p.ArticleDigits})
		}
	}
	return in
}

func (r *register) openDevices() error {
	mgr, err := manager.New(managerConfig(r.cfg, r.o.RunDir), manager.Options{
		Logger: r.log, Pins: manager.PeriphPins(), Stdout: r.o.Out,
	})
	if err != nil {
		return fmt.Errorf("%w: devices: %w", ErrConfig, err)
	}
	r.mgr = mgr
	r.input = deviceInput(r.cfg, r.led)
	r.disp = mgr.Display()
	if r.disp == nil {
		r.disp = noDisplay{}
	}
	r.outputs = mgr.Outputs()
	return nil
}

// noDisplay stands in when no customer display is configured.
type noDisplay struct{}

func (noDisplay) Show(context.Context, [2]string) error { return nil }
func (noDisplay) Clear(context.Context) error           { return nil }
func (noDisplay) Brightness(context.Context, int) error { return nil }

// degraded lists the devices that are present but not working, for
// /healthz (the register still takes sales).
func (r *register) degraded() map[string]string { return manager.Degraded(r.mgr.Health()) }

// cardFirstFor maps the config's 0s ("never") onto the checkout's option,
// where zero means the default.
func cardFirstFor(d time.Duration) time.Duration {
	if d == 0 {
		return time.Nanosecond
	}
	return d
}
