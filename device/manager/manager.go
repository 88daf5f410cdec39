package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/button"
	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/device/display"
	"github.com/loyalty-terminal/loyalty/device/frame"
	"github.com/loyalty-terminal/loyalty/device/magstripe"
	"github.com/loyalty-terminal/loyalty/device/scanner"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
	"github.com/loyalty-terminal/loyalty/device/signal"
	"github.com/loyalty-terminal/loyalty/device/sim"
	"github.com/loyalty-terminal/loyalty/device/wiegand"
)

// ErrPinNotFound is returned by a PinFunc for a GPIO name this host lacks.
var ErrPinNotFound = errors.New("gpio pin not found on this host")

// PinFunc looks up a GPIO pin by name (e.g. "GPIO17").
type PinFunc func(name string) (gpio.PinIO, error)

// Options are the manager's dependencies. The zero value logs nothing,
// uses the system clock, and has no GPIO (GPIO devices are reported as
// skipped); the daemon passes PeriphPins() on a Raspberry Pi.
type Options struct {
	Logger *slog.Logger
	Clock  clock.Clock
	Pins   PinFunc
	// Stdout receives the "log" display; default os.Stdout.
	Stdout io.Writer
	// EventBuffer is the events channel capacity; default 64.
	EventBuffer int
}

// SimDevice tells a person how to feed a simulated device.
type SimDevice struct {
	Name string
	Path string // what the device opens (a symlink to /dev/pts/N)
	FIFO string // echo a code into this file to scan it
}

type runner interface {
	Run(ctx context.Context, emit func(device.Event)) error
}

// Manager runs the devices.
type Manager struct {
	cfg          Config
	o            Options
	log          *slog.Logger
	events       chan device.Event
	readers      []*serialdev.Reader
	wieg         []*wiegand.Reader
	buttons      *button.Watcher
	outputs      *signal.Outputs
	disp         display.Display
	serDisp      *display.Queued
	closeDisplay func() error
	simScan      map[string]*sim.Scanner
	simWieg      map[string]*simWiegand
	simDisp      *sim.Display
	simLock      *os.File // SimDir's lock while simulators exist (simlock.go)
	sims         []SimDevice
	mu           sync.Mutex
	closed       bool
	skipped      []device.Health
}

// New validates cfg and prepares every device. Simulators (when
// cfg.Simulate) are created here so their paths can be printed before Run.
func New(cfg Config, o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.Or(o.Clock)
	if o.Pins == nil {
		o.Pins = func(string) (gpio.PinIO, error) { return nil, ErrPinNotFound }
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 64
	}
	if cfg.SimDir == "" {
		cfg.SimDir = filepath.Join("var", "dev")
	}
	m := &Manager{cfg: cfg, o: o, log: o.Logger.With("subsystem", "device"), events: make(chan device.Event, o.EventBuffer),
		simScan: map[string]*sim.Scanner{}, simWieg: map[string]*simWiegand{}}
	ok := false
	defer func() {
		if !ok {
			m.closeSims()
		}
	}()
	cl, err := classify.New(classify.Options{Members: cfg.Classify.Members, Embedded: cfg.Classify.Embedded, Controls: cfg.Classify.Controls})
	if err != nil {
		return nil, fmt.Errorf("device config: %w", err)
	}
	names := map[string]bool{}
	unique := func(n string) error {
		if n == "" {
			return errors.New("device config: a device has no name")
		}
		if names[n] {
			return fmt.Errorf("device config: name %q used twice", n)
		}
		names[n] = true
		return nil
	}
	for _, list := range []struct {
		devs []SerialDevice
		mag  bool
	}{{cfg.Scanners, false}, {cfg.Magstripes, true}} {
		for _, d := range list.devs {
			if err := unique(d.Name); err != nil {
				return nil, err
			}
			so, err := m.serialOptions(d, list.mag)
			if err != nil {
				return nil, err
			}
			var r *serialdev.Reader
			if list.mag {
				r, err = magstripe.New(so, cl)
			} else {
				r, err = scanner.New(so, cl)
			}
			if err != nil {
				return nil, fmt.Errorf("device %s: %w", d.Name, err)
			}
			m.readers = append(m.readers, r)
		}
	}
	for _, w := range cfg.Wiegand {
		if err := unique(w.Name); err != nil {
			return nil, err
		}
		var d0, d1 gpio.PinIO
		var sw *simWiegand
		gap := w.FrameGap
		if w.Simulate {
			if gap == 0 {
				gap = 100 * time.Millisecond // room for a loaded machine between simulated bits
			}
			sw = newSimWiegand(w.Name)
			d0, d1 = sw.d0, sw.d1
			m.sims = append(m.sims, SimDevice{Name: w.Name, Path: "gpiotest:" + w.Name})
		} else {
			var err0, err1 error
			d0, err0 = o.Pins(w.D0)
			d1, err1 = o.Pins(w.D1)
			if err := errors.Join(err0, err1); err != nil {
				m.skip(w.Name, w.D0+","+w.D1, err)
				continue
			}
		}
		r, err := wiegand.NewReader(wiegand.Options{Name: w.Name, D0: d0, D1: d1, FrameGap: gap,
			Facilities: w.Facilities, Clock: o.Clock, Logger: m.log})
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", w.Name, err)
		}
		if sw != nil {
			sw.r = r
			m.simWieg[w.Name] = sw
		}
		m.wieg = append(m.wieg, r)
	}
	var bs []button.Button
	for _, b := range cfg.Buttons {
		if err := unique(b.Name); err != nil {
			return nil, err
		}
		p, err := o.Pins(b.Pin)
		if err != nil {
			m.skip(b.Name, b.Pin, err)
			continue
		}
		bs = append(bs, button.Button{Name: b.Name, Pin: p, Action: b.Action, ActiveHigh: b.ActiveHigh})
	}
	if len(bs) > 0 {
		if m.buttons, err = button.New(button.Options{Buttons: bs, Clock: o.Clock, Logger: m.log}); err != nil {
			return nil, fmt.Errorf("device config: %w", err)
		}
	}
	outs := map[string]gpio.PinOut{}
	for name, pin := range cfg.Outputs {
		p, err := o.Pins(pin)
		if err != nil {
			m.skip(name, pin, err)
			continue
		}
		outs[name] = p
	}
	m.outputs = signal.New(outs, nil)
	if err := m.setupDisplay(); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

func (m *Manager) skip(name, path string, err error) {
	m.log.Warn("device skipped", "device", name, "err", err)
	m.skipped = append(m.skipped, device.Health{Name: name, Path: path, State: device.StateUnhealthy,
		LastError: "skipped: " + err.Error(), Rejects: map[string]int64{}, Faults: map[string]int64{"not_found": 1}})
}

func (m *Manager) serialOptions(d SerialDevice, mag bool) (serialdev.Options, error) {
	term, err := frame.ParseTerminator(d.Terminator)
	if err != nil {
		return serialdev.Options{}, fmt.Errorf("device %s: %w", d.Name, err)
	}
	so := serialdev.Options{
		Name: d.Name, Path: d.Path,
		Serial:  serialdev.SerialOptions{Baud: d.Baud, DataBits: d.DataBits, Parity: d.Parity, StopBits: d.StopBits},
		Frame:   frame.Options{Terminator: term, IdleGap: d.IdleGap, Prefix: d.Prefix, AIM: d.AIM, MaxLen: d.MaxLen},
		Backoff: serialdev.Backoff{Initial: m.cfg.Backoff.Initial, Max: m.cfg.Backoff.Max},
		Clock:   m.o.Clock, Logger: m.log,
	}
	if mag && d.MaxLen == 0 {
		so.Frame.MaxLen = magstripe.FrameOptions().MaxLen
	}
	if m.cfg.Simulate || d.Simulate {
		if err := m.lockSimDir(); err != nil {
			return serialdev.Options{}, err
		}
		t := map[frame.Terminator]string{frame.CR: "\r", frame.LF: "\n", frame.CRLF: "\r\n"}[term]
		fifo := filepath.Join(m.cfg.SimDir, d.Name+"-in")
		s, err := sim.NewScanner(sim.ScannerOptions{Link: filepath.Join(m.cfg.SimDir, d.Name), FIFO: fifo,
			Terminator: t, NoTerminator: term == frame.IdleGap})
		if err != nil {
			return serialdev.Options{}, fmt.Errorf("device %s: %w", d.Name, err)
		}
		m.simScan[d.Name] = s
		m.sims = append(m.sims, SimDevice{Name: d.Name, Path: s.Path(), FIFO: fifo})
		so.Path = s.Path()
	}
	if so.Path == "" {
		return serialdev.Options{}, fmt.Errorf("device %s: no path", d.Name)
	}
	return so, nil
}

func (m *Manager) setupDisplay() error {
	c := m.cfg.Display
	switch c.Type {
	case "":
		return nil
	case "log":
		m.disp = display.NewLog(m.o.Stdout, c.Width)
		return nil
	}
	p, err := display.ParseProtocol(c.Type)
	if err != nil {
		return fmt.Errorf("device config: %w", err)
	}
	cp, err := display.ParseCodePage(c.CodePage)
	if err != nil {
		return fmt.Errorf("device config: %w", err)
	}
	path := c.Path
	if m.cfg.Simulate || c.Simulate {
		if err := m.lockSimDir(); err != nil {
			return err
		}
		sd, err := sim.NewDisplay(sim.DisplayOptions{Link: filepath.Join(m.cfg.SimDir, "display")})
		if err != nil {
			return fmt.Errorf("display: %w", err)
		}
		m.simDisp = sd
		path = sd.Path()
		m.sims = append(m.sims, SimDevice{Name: "display", Path: path})
	}
	if path == "" {
		return errors.New("device config: display has no path")
	}
	so := serialdev.SerialOptions{Baud: c.Baud}
	if so.Baud == 0 {
		so.Baud = 9600
	}
	d, err := display.NewSerial(display.SerialOptions{Protocol: p, CodePage: cp, Width: c.Width, Name: "display", Path: path,
		Brightness: c.Brightness, WriteTimeout: c.WriteTimeout,
		Open: func() (io.WriteCloser, error) { return serialdev.OpenWriter(path, so) }})
	if err != nil {
		return fmt.Errorf("device config: display: %w", err)
	}
	// The display gets its own writer: the checkout never waits for it.
	q := display.NewQueued(d, display.QueuedOptions{Baud: so.Baud, StuckAfter: c.WriteTimeout, Watch: path, Logger: m.log.With("device", "display")})
	m.disp, m.serDisp, m.closeDisplay = q, q, q.Close
	return nil
}

// Events delivers every device's events, in order per device. The channel
// is never closed; stop reading when Run returns.
func (m *Manager) Events() <-chan device.Event { return m.events }

// Display is the customer display, or nil when none is configured.
func (m *Manager) Display() display.Display { return m.disp }

// Outputs plays buzzer/LED patterns (outputs missing on this host are
// skipped).
func (m *Manager) Outputs() *signal.Outputs { return m.outputs }

// Simulated lists the simulated devices and how to feed them.
func (m *Manager) Simulated() []SimDevice { return append([]SimDevice(nil), m.sims...) }

// SimDisplay returns the simulated display (nil unless simulating a serial
// display), so tests and tools can read back its bytes.
func (m *Manager) SimDisplay() *sim.Display { return m.simDisp }

// SimScanner returns the simulator behind serial device name, or nil.
func (m *Manager) SimScanner(name string) *sim.Scanner { return m.simScan[name] }

// ErrNoSimulator is returned by Inject for a device that is not simulated.
var ErrNoSimulator = errors.New("no simulated device")

// Inject scans code on the simulated serial device name, or presents the
// card code ("facility-number") to the simulated Wiegand reader name
// (tests, demos). For a Wiegand reader it returns once the reader has
// taken every bit.
func (m *Manager) Inject(name, code string) error {
	if w, ok := m.simWieg[name]; ok {
		return w.inject(code)
	}
	s, ok := m.simScan[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrNoSimulator, name)
	}
	return s.Inject(code)
}

// SimWiegand reports whether name is a simulated Wiegand reader.
func (m *Manager) SimWiegand(name string) bool { return m.simWieg[name] != nil }

// Health returns a snapshot of every device, in configuration order.
func (m *Manager) Health() []device.Health {
	var out []device.Health
	for _, r := range m.readers {
		out = append(out, r.Health())
	}
	for _, w := range m.wieg {
		out = append(out, w.Health())
	}
	if m.buttons != nil {
		out = append(out, m.buttons.Health()...)
	}
	if m.serDisp != nil {
		out = append(out, m.serDisp.Health())
	}
	return append(out, m.skipped...)
}

// Run runs every device until ctx is cancelled, then closes the display and
// simulators. One device's failure never stops the others.
func (m *Manager) Run(ctx context.Context) error {
	defer m.closeSims()
	emit := func(e device.Event) {
		select {
		case m.events <- e:
		case <-ctx.Done():
		}
	}
	var runners []runner
	for _, r := range m.readers {
		runners = append(runners, r)
	}
	for _, w := range m.wieg {
		runners = append(runners, w)
	}
	if m.buttons != nil {
		runners = append(runners, m.buttons)
	}
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx, emit); err != nil {
				m.log.Error("device stopped", "err", err)
			}
		}()
	}
	wg.Wait()
	return nil
}

func (m *Manager) closeSims() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	if m.closeDisplay != nil {
		_ = m.closeDisplay()
	}
	for _, s := range m.simScan {
		_ = s.Close()
	}
	if m.simDisp != nil {
		_ = m.simDisp.Close()
	}
	if m.simLock != nil {
		_ = m.simLock.Close() // closing the file lets the flock go
	}
}
