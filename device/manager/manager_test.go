package manager_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.yaml.in/yaml/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/display"
	"github.com/loyalty-terminal/loyalty/device/manager"
	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// wait bounds every testkit.Eventually in this package.
const wait = 10 * time.Second

func loadConfig(t *testing.T) manager.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "devices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c manager.Config
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigYAML(t *testing.T) {
	c := loadConfig(t)
	if len(c.Scanners) != 2 || c.Scanners[0].Terminator != "crlf" || c.Backoff.Initial != 50*time.Millisecond ||
		c.Classify.Members[0].Check != "luhn" || c.Classify.Embedded[0].ArticleDigits != 5 || c.Display.CodePage != "cp862" {
		t.Fatalf("decoded %+v", c)
	}
}

func TestBadConfig(t *testing.T) {
	tests := map[string]manager.Config{
		"duplicate name":  {Scanners: []manager.SerialDevice{{Name: "a", Path: "/x"}, {Name: "a", Path: "/y"}}},
		"no name":         {Scanners: []manager.SerialDevice{{Path: "/x"}}},
		"no path":         {Scanners: []manager.SerialDevice{{Name: "a"}}},
		"bad terminator":  {Scanners: []manager.SerialDevice{{Name: "a", Path: "/x", Terminator: "tab"}}},
		"bad parity":      {Scanners: []manager.SerialDevice{{Name: "a", Path: "/x", Parity: "sometimes"}}},
		"bad display":     {Display: manager.Display{Type: "hologram", Path: "/x"}},
		"bad code page":   {Display: manager.Display{Type: "cd5220", Path: "/x", CodePage: "cp1255"}},
		"display no path": {Display: manager.Display{Type: "escpos"}},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := manager.New(c, manager.Options{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestManagerSimulated(t *testing.T) {
	c := loadConfig(t)
	c.SimDir = t.TempDir()
	c.Backoff = manager.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	pins := map[string]*gpiotest.Pin{}
	for _, n := range []string{"GPIO5", "GPIO6", "GPIO12", "GPIO13"} {
		pins[n] = &gpiotest.Pin{N: n, EdgesChan: make(chan gpio.Level)}
	}
	// GPIO17/27 (Wiegand) and GPIO19 are missing on this "host".
	m, err := manager.New(c, manager.Options{Pins: func(name string) (gpio.PinIO, error) {
		if p, ok := pins[name]; ok {
			return p, nil
		}
		return nil, manager.ErrPinNotFound
	}})
	if err != nil {
		t.Fatal(err)
	}
	sims := m.Simulated()
	if len(sims) != 4 || sims[0].Path != filepath.Join(c.SimDir, "scanner0") || sims[0].FIFO == "" {
		t.Fatalf("simulated %+v", sims)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	}()
	testkit.Eventually(t, wait, "serial devices healthy", func() bool {
		n := 0
		for _, h := range m.Health() {
			if h.State == device.StateHealthy {
				n++
			}
		}
		return n >= 5 // 3 serial + 2 buttons
	})
	next := func() device.Event {
		t.Helper()
		select {
		case e := <-m.Events():
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return device.Event{}
	}
	// A person scanning through the FIFO.
	if err := os.WriteFile(sims[0].FIFO, []byte("4006381333931\n"), 0); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Device != "scanner0" || e.Kind != device.KindItem || e.Payload != "4006381333931" {
		t.Fatalf("scanner0: %+v", e)
	}
	// scanner1 has AIM identifiers on.
	if err := m.Inject("scanner1", "]E096385074"); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Device != "scanner1" || e.Kind != device.KindReject || !errors.Is(e.Reason, device.ErrUnknownCode) {
		t.Fatalf("scanner1 EAN-8 data under an EAN-13 AIM id: %+v", e)
	}
	// A bank card swiped on the magstripe reader.
	if err := m.Inject("msr0", "%B4111111111111111^DOE/JOHN^2512101?;4111111111111111=2512101?"); err != nil {
		t.Fatal(err)
	}
	e := next()
	if e.Device != "msr0" || !errors.Is(e.Reason, device.ErrNotMemberCard) || strings.Contains(e.Reason.Error(), "4111") {
		t.Fatalf("msr0: %+v", e)
	}
	// scanner0 unplugged: scanner1 carries on.
	if err := m.SimScanner("scanner0").Unplug(); err != nil {
		t.Fatal(err)
	}
	if err := m.Inject("scanner1", "]E04006381333931"); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Device != "scanner1" || e.Payload != "4006381333931" {
		t.Fatalf("scanner1 after scanner0 unplug: %+v", e)
	}
	testkit.Eventually(t, wait, "scanner0 unhealthy", func() bool { return health(m, "scanner0").State == device.StateUnhealthy })
	if err := m.SimScanner("scanner0").Replug(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "scanner0 back", func() bool { return health(m, "scanner0").State == device.StateHealthy })
	if err := m.Inject("scanner0", "96385074"); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Device != "scanner0" || e.Payload != "96385074" {
		t.Fatalf("scanner0 after replug: %+v", e)
	}
	// Button press through the fake GPIO.
	pins["GPIO5"].EdgesChan <- gpio.Low
	if e := next(); e.Kind != device.KindButton || e.Action != "show_points" {
		t.Fatalf("button: %+v", e)
	}
	// Skipped GPIO devices are reported, not fatal.
	if h := health(m, "door"); h.State != device.StateUnhealthy || !strings.Contains(h.LastError, "skipped") {
		t.Fatalf("door: %+v", h)
	}
	// The simulated CD5220 display with CP862.
	if err := m.Display().Show(ctx, [2]string{"שלום", "120"}); err != nil {
		t.Fatal(err)
	}
	want := append(display.CD5220{}.Init(display.CP862), display.CD5220{}.Show(display.CP862, 20, [2]string{"שלום", "120"})...)
	testkit.Eventually(t, wait, "display bytes", func() bool { return bytes.Equal(m.SimDisplay().Bytes(), want) })
	if h := health(m, "display"); h.State != device.StateHealthy || h.Frames != 1 {
		t.Fatalf("display health %+v", h)
	}
}

func health(m *manager.Manager, name string) device.Health {
	for _, h := range m.Health() {
		if h.Name == name {
			return h
		}
	}
	return device.Health{}
}

// TestPerDeviceSimulate: simulate on one scanner makes only that one a
// simulator; the other opens its real port (here a pty the test holds),
// and a simulated Wiegand reader decodes an injected card through the real
// decoder.
func TestPerDeviceSimulate(t *testing.T) {
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer pts.Close()
	c := manager.Config{SimDir: t.TempDir(),
		Scanners: []manager.SerialDevice{{Name: "sim", Simulate: true}, {Name: "real", Path: pts.Name()}},
		Wiegand:  []manager.Wiegand{{Name: "door", Simulate: true}, {Name: "gate", D0: "GPIO17", D1: "GPIO27"}},
		Backoff:  manager.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}}
	m, err := manager.New(c, manager.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range m.Simulated() {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "sim,door" || m.SimScanner("real") != nil || !m.SimWiegand("door") || m.SimWiegand("gate") {
		t.Fatalf("simulated %v", names)
	}
	if h := health(m, "real"); h.Path != pts.Name() {
		t.Fatalf("real scanner path %q, want %q", h.Path, pts.Name())
	}
	if h := health(m, "gate"); h.State != device.StateUnhealthy {
		t.Fatalf("gate without GPIO: %+v", h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	next := func() device.Event {
		t.Helper()
		select {
		case e := <-m.Events():
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return device.Event{}
	}
	testkit.Eventually(t, wait, "real scanner open", func() bool { return health(m, "real").State == device.StateHealthy })
	if _, err := ptm.Write([]byte("4006381333931\r")); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Device != "real" || e.Payload != "4006381333931" {
		t.Fatalf("real: %+v", e)
	}
	if err := m.Inject("sim", "96385074"); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Device != "sim" || e.Payload != "96385074" {
		t.Fatalf("sim: %+v", e)
	}
	for _, card := range []string{"123-45678", "4000-65535"} {
		if err := m.Inject("door", card); err != nil {
			t.Fatal(err)
		}
		if e := next(); e.Device != "door" || e.Kind != device.KindMember || e.Payload != card {
			t.Fatalf("door %s: %+v", card, e)
		}
	}
	for _, bad := range []string{"12345", "1-70000", "x-1", ""} {
		if err := m.Inject("door", bad); !errors.Is(err, manager.ErrBadCard) {
			t.Errorf("Inject(door, %q) = %v, want ErrBadCard", bad, err)
		}
	}
	if err := m.Inject("real", "1"); !errors.Is(err, manager.ErrNoSimulator) {
		t.Errorf("Inject into a real device = %v", err)
	}
}

func TestMetricsAndDegraded(t *testing.T) {
	hs := []device.Health{
		{Name: "scanner0", State: device.StateHealthy, Frames: 3, Rejects: map[string]int64{"noise": 1}, Faults: map[string]int64{}},
		{Name: "display", State: device.StateUnhealthy, LastError: "display write: device not taking data", Faults: map[string]int64{"stuck": 2}},
		{Name: "scanner1", State: device.StateBusy, LastError: "held by pid 7 (cat)", Faults: map[string]int64{"busy": 1}},
		{Name: "door", State: device.StateUnhealthy, LastError: "skipped: gpio pin not found", Faults: map[string]int64{"not_found": 1}},
	}
	var b strings.Builder
	manager.WriteMetrics(&b, hs)
	for _, want := range []string{
		`loyalty_device_up{device="scanner0"} 1`,
		`loyalty_device_up{device="display"} 0`,
		`loyalty_device_state{device="scanner1",state="busy"} 1`,
		`loyalty_device_rejects_total{device="scanner0",reason="noise"} 1`,
		`loyalty_device_faults_total{device="display",kind="stuck"} 2`,
		`loyalty_device_frames_total{device="scanner0"} 3`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, b.String())
		}
	}
	d := manager.Degraded(hs)
	if len(d) != 2 || !strings.HasPrefix(d["display"], "unhealthy: display write") || !strings.HasPrefix(d["scanner1"], "busy: held by pid 7") {
		t.Fatalf("degraded %v", d)
	}
}

// TestSimDirHeldByOneManager: two registers whose simulated devices share a
// folder (two loyaltyd with their ledgers side by side) would replace each
// other's links, so one register's scans reached the other or it failed to
// start on a half-made link. The second is refused with ErrSimDirInUse and
// the first's links are untouched; once the first stops, the folder is free.
func TestSimDirHeldByOneManager(t *testing.T) {
	dir := t.TempDir()
	c := manager.Config{SimDir: dir, Scanners: []manager.SerialDevice{{Name: "scanner1", Simulate: true}}}
	first, err := manager.New(c, manager.Options{})
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "scanner1")
	before, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manager.New(c, manager.Options{}); !errors.Is(err, manager.ErrSimDirInUse) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second manager on the same folder: %v, want ErrSimDirInUse naming %s", err, dir)
	}
	if after, err := os.Readlink(link); err != nil || after != before {
		t.Fatalf("first manager's link now %q (%v), was %q", after, err, before)
	}
	// Real devices only: the folder is not touched, so it is not refused.
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer pts.Close()
	if _, err := manager.New(manager.Config{SimDir: dir, Scanners: []manager.SerialDevice{{Name: "real", Path: pts.Name()}}}, manager.Options{}); err != nil {
		t.Fatalf("manager without simulators refused: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	if err := first.Inject("scanner1", "96385074"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-first.Events():
		if e.Device != "scanner1" || e.Payload != "96385074" {
			t.Fatalf("first manager's scan: %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first manager's scan did not arrive")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	again, err := manager.New(c, manager.Options{})
	if err != nil {
		t.Fatalf("folder still held after the first manager stopped: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_ = again.Run(ctx2)
}
