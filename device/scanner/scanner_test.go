package scanner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/device/frame"
	"github.com/loyalty-terminal/loyalty/device/scanner"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
	"github.com/loyalty-terminal/loyalty/device/sim"
	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// wait bounds every testkit.Eventually in this package.
const wait = 10 * time.Second

// sink collects events and lets a test wait for a condition with a deadline.
type sink struct {
	mu  sync.Mutex
	evs []device.Event
	ch  chan struct{}
}

func newSink() *sink { return &sink{ch: make(chan struct{}, 1)} }

func (s *sink) emit(e device.Event) {
	s.mu.Lock()
	s.evs = append(s.evs, e)
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

func (s *sink) events() []device.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]device.Event(nil), s.evs...)
}

func (s *sink) waitN(t *testing.T, n int) []device.Event {
	t.Helper()
	testkit.Eventually(t, wait, "events", func() bool { return len(s.events()) >= n })
	return s.events()
}

func startScanner(t *testing.T, o serialdev.Options) (*serialdev.Reader, *sink) {
	t.Helper()
	c, err := classify.New(classify.Options{Controls: map[string]string{"*TOTAL*": "TOTAL"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Name == "" {
		o.Name = "scanner0"
	}
	o.Backoff = serialdev.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	r, err := scanner.New(o, c)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, s.emit) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r, s
}

func newSim(t *testing.T, o sim.ScannerOptions) *sim.Scanner {
	t.Helper()
	sc, err := sim.NewScanner(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
}

func waitHealthy(t *testing.T, r *serialdev.Reader) {
	t.Helper()
	testkit.Eventually(t, wait, "healthy", func() bool { return r.Health().State == device.StateHealthy })
}

func TestScannerOverPTY(t *testing.T) {
	sc := newSim(t, sim.ScannerOptions{Terminator: "\r\n"})
	r, s := startScanner(t, serialdev.Options{Path: sc.Path(), Frame: frame.Options{Terminator: frame.CRLF}})
	waitHealthy(t, r)

	// A frame split over three writes, with pauses so it arrives in
	// separate reads.
	for _, part := range []string{"4006", "3813339", "31\r\n"} {
		if err := sc.WriteRaw([]byte(part)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	evs := s.waitN(t, 1)
	if evs[0].Kind != device.KindItem || evs[0].Payload != "4006381333931" || evs[0].Device != "scanner0" || evs[0].At.IsZero() {
		t.Fatalf("split frame: %+v", evs[0])
	}
	// Back to back in one write, with noise and a bad check digit.
	if err := sc.WriteRaw([]byte("96385074\r\n\x00\xff*TOTAL*\r\n4006381333933\r\n4111111111111111\r\n")); err != nil {
		t.Fatal(err)
	}
	// (the two noise bytes are one run: one reject)
	evs = s.waitN(t, 6)
	type kp struct {
		k device.Kind
		p string
	}
	want := []kp{{device.KindItem, "4006381333931"}, {device.KindItem, "96385074"}, {device.KindReject, ""},
		{device.KindControl, "*TOTAL*"}, {device.KindReject, ""}, {device.KindReject, ""}}
	for i, w := range want {
		if evs[i].Kind != w.k || evs[i].Payload != w.p {
			t.Errorf("event %d = %v %q, want %v %q", i, evs[i].Kind, evs[i].Payload, w.k, w.p)
		}
	}
	if !errors.Is(evs[4].Reason, device.ErrBadCheckDigit) || !errors.Is(evs[5].Reason, device.ErrNotMemberCard) {
		t.Errorf("reasons %v / %v", evs[4].Reason, evs[5].Reason)
	}
	h := r.Health()
	if h.Frames != 3 || h.Rejects["noise"] != 1 || h.Rejects["bad_check_digit"] != 1 || h.Rejects["not_member_card"] != 1 {
		t.Errorf("health %+v", h)
	}
}

func TestUnplugReplugByLink(t *testing.T) {
	link := filepath.Join(t.TempDir(), "dev", "scanner0")
	sc := newSim(t, sim.ScannerOptions{Link: link})
	r, s := startScanner(t, serialdev.Options{Path: link})
	waitHealthy(t, r)
	first := sc.PTSPath()
	if err := sc.Inject("96385074"); err != nil {
		t.Fatal(err)
	}
	s.waitN(t, 1)

	// Half a frame, then the cable is pulled.
	if err := sc.WriteRaw([]byte("4006")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := sc.Unplug(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "unhealthy", func() bool { return r.Health().State == device.StateUnhealthy })
	if h := r.Health(); h.Faults["gone"] == 0 || h.LastError == "" {
		t.Errorf("after unplug: %+v", h)
	}
	// While unplugged the path is gone: reopen attempts fail with not found.
	testkit.Eventually(t, wait, "reopen attempts", func() bool { return r.Health().Faults["not_found"] >= 2 })

	if err := sc.Replug(); err != nil {
		t.Fatal(err)
	}
	if sc.PTSPath() == first {
		t.Logf("kernel reused %s", first)
	}
	waitHealthy(t, r)
	if err := sc.Inject("4006381333931"); err != nil {
		t.Fatal(err)
	}
	evs := s.waitN(t, 2)
	// The half frame from before the unplug must not be glued on.
	if evs[1].Payload != "4006381333931" || len(evs) != 2 {
		t.Fatalf("after replug: %+v", evs)
	}
	if h := r.Health(); h.Reopens != 1 || h.Frames != 2 {
		t.Errorf("health %+v", h)
	}
}

func TestMissingPathKeepsRetrying(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope")
	r, _ := startScanner(t, serialdev.Options{Path: path})
	testkit.Eventually(t, wait, "not found faults", func() bool { return r.Health().Faults["not_found"] >= 3 })
	h := r.Health()
	if h.State != device.StateUnhealthy || h.LastError == "" {
		t.Fatalf("health %+v", h)
	}
}

func TestBusyPort(t *testing.T) {
	sc := newSim(t, sim.ScannerOptions{})
	r1, s1 := startScanner(t, serialdev.Options{Name: "a", Path: sc.Path()})
	waitHealthy(t, r1)
	r2, _ := startScanner(t, serialdev.Options{Name: "b", Path: sc.Path()})
	testkit.Eventually(t, wait, "busy fault", func() bool { return r2.Health().Faults["busy"] >= 1 })
	if r2.Health().State != device.StateBusy {
		t.Fatalf("second opener: %+v", r2.Health())
	}
	// The first opener carries on.
	if err := sc.Inject("96385074"); err != nil {
		t.Fatal(err)
	}
	if evs := s1.waitN(t, 1); evs[0].Payload != "96385074" {
		t.Fatalf("first opener: %+v", evs)
	}
}

func TestFIFOInjection(t *testing.T) {
	dir := t.TempDir()
	sc := newSim(t, sim.ScannerOptions{Link: filepath.Join(dir, "scanner0"), FIFO: filepath.Join(dir, "scanner0-in")})
	r, s := startScanner(t, serialdev.Options{Path: sc.Path()})
	waitHealthy(t, r)
	// What a person types: echo 4006381333931 > var/dev/scanner0-in
	if err := writeFile(filepath.Join(dir, "scanner0-in"), "4006381333931\n96385074\n"); err != nil {
		t.Fatal(err)
	}
	evs := s.waitN(t, 2)
	if evs[0].Payload != "4006381333931" || evs[1].Payload != "96385074" {
		t.Fatalf("events %+v", evs)
	}
}

func TestIdleGapFraming(t *testing.T) {
	sc := newSim(t, sim.ScannerOptions{Terminator: ""})
	r, s := startScanner(t, serialdev.Options{Path: sc.Path(), ReadTimeout: 10 * time.Millisecond,
		Frame: frame.Options{Terminator: frame.IdleGap, IdleGap: 30 * time.Millisecond}})
	waitHealthy(t, r)
	if err := sc.WriteRaw([]byte("4006381333931")); err != nil {
		t.Fatal(err)
	}
	evs := s.waitN(t, 1)
	if evs[0].Payload != "4006381333931" {
		t.Fatalf("events %+v", evs)
	}
}

// TestPathVanishes removes the stable link while the old pty stays open
// (no read error): the reader notices the name is gone, reports the device
// unhealthy, and reopens when the name is back.
func TestPathVanishes(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner0")
	sc := newSim(t, sim.ScannerOptions{Link: link})
	r, s := startScanner(t, serialdev.Options{Path: link, ReadTimeout: 5 * time.Millisecond, PathCheck: 10 * time.Millisecond})
	waitHealthy(t, r)
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "gone", func() bool { return r.Health().Faults["gone"] == 1 })
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "reopened", func() bool { h := r.Health(); return h.Reopens == 1 && h.State == device.StateHealthy })
	if err := sc.Inject("96385074"); err != nil {
		t.Fatal(err)
	}
	if evs := s.waitN(t, 1); evs[0].Payload != "96385074" {
		t.Fatalf("events %+v", evs)
	}
}

// FuzzScanPipeline runs arbitrary bytes through framing and classification
// as the port loop does: no event may carry a payment card number, and no
// reject reason may quote one.
func FuzzScanPipeline(f *testing.F) {
	for _, s := range []string{"4006381333931\r\n", "4111111111111111\r", "]C0X4111111111111111\r", "\x00\xff96385074\n", "*TOTAL*\r"} {
		f.Add([]byte(s), false)
	}
	c, _ := classify.New(classify.Options{
		Members:  []classify.MemberPattern{{Prefix: "990", Length: 16, Check: classify.CheckLuhn}, {Prefix: "4", Length: 16}},
		Controls: map[string]string{"*TOTAL*": "TOTAL"},
	})
	h := scanner.Handler(c)
	f.Fuzz(func(t *testing.T, b []byte, aim bool) {
		a := frame.New(frame.Options{Terminator: frame.CRLF, AIM: aim, MaxLen: 64})
		for _, o := range a.Feed(b, time.Time{}, nil) {
			ev := device.Event{Kind: device.KindReject, Reason: o.Reject.Err}
			if o.Reject.Err == nil {
				ev = h(o.Frame)
			}
			if ev.Reason != nil && cardsafe.ContainsPAN(ev.Reason.Error()) {
				t.Fatalf("reason quotes a card number: %v", ev.Reason)
			}
			if ev.Kind == device.KindReject {
				if ev.Payload != "" {
					t.Fatal("reject with payload")
				}
				continue
			}
			if cardsafe.ContainsPAN(ev.Payload) && !(ev.Kind == device.KindItem && len(ev.Payload) == 13 && cardsafe.GS1Valid(ev.Payload)) {
				t.Fatalf("%v event carries a card number", ev.Kind)
			}
		}
	})
}

// TestRecordedStreamOverPTY replays a recorded stream through a real pty in
// uneven chunks.
func TestRecordedStreamOverPTY(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "scanner-crlf.bin"))
	if err != nil {
		t.Fatal(err)
	}
	sc := newSim(t, sim.ScannerOptions{})
	r, s := startScanner(t, serialdev.Options{Path: sc.Path(), Frame: frame.Options{Terminator: frame.CRLF, MaxLen: 32}})
	waitHealthy(t, r)
	for i, n := 0, 3; i < len(b); i, n = i+n, n%11+2 {
		if err := sc.WriteRaw(b[i:min(i+n, len(b))]); err != nil {
			t.Fatal(err)
		}
	}
	// 4 scans; 2 runs of noise bytes; an ESC inside a frame (refused,
	// its tail refused by its check digit); 1 over-long: 9 events.
	evs := s.waitN(t, 9)
	var items []string
	for _, e := range evs {
		if e.Kind == device.KindItem {
			items = append(items, e.Payload)
		}
	}
	if got := strings.Join(items, "|"); got != "4006381333931|96385074|0036000291452|4006381333931" {
		t.Fatalf("items %s", got)
	}
	if h := r.Health(); h.Frames != 4 || h.Rejects["noise"] != 2 || h.Rejects["bad_terminator"] != 1 || h.Rejects["bad_check_digit"] != 1 || h.Rejects["too_long"] != 1 {
		t.Fatalf("health %+v", h)
	}
}
