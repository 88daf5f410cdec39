package serialdev_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/frame"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
	"github.com/loyalty-terminal/loyalty/device/sim"
)

func TestSerialOptionsMode(t *testing.T) {
	good := []serialdev.SerialOptions{{}, {Baud: 115200, DataBits: 7, Parity: "even", StopBits: "2"}, {Parity: "odd", StopBits: "1.5"}}
	for _, o := range good {
		if _, err := o.Mode(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad := map[string]serialdev.SerialOptions{
		"parity": {Parity: "maybe"}, "stop bits": {StopBits: "3"}, "data bits": {DataBits: 9}, "baud": {Baud: -1},
	}
	for name, o := range bad {
		if _, err := o.Mode(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestOpenSerialErrors(t *testing.T) {
	if _, err := serialdev.OpenSerial(filepath.Join(t.TempDir(), "none"), serialdev.SerialOptions{}, 0); !errors.Is(err, device.ErrDeviceNotFound) {
		t.Fatalf("missing path: %v", err)
	}
	s, err := sim.NewScanner(sim.ScannerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p1, err := serialdev.OpenSerial(s.Path(), serialdev.SerialOptions{}, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := serialdev.OpenSerial(s.Path(), serialdev.SerialOptions{}, 0); !errors.Is(err, device.ErrDeviceBusy) {
		t.Fatalf("second open: %v", err)
	}
	p1.Close()
	p2, err := serialdev.OpenSerial(s.Path(), serialdev.SerialOptions{}, 0)
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	p2.Close()
}

// TestBackoff drives reopen attempts with an injected After and checks the
// delays double up to the maximum and reset after a successful open.
func TestBackoff(t *testing.T) {
	var mu sync.Mutex
	var delays []time.Duration
	fails := 5
	opened := make(chan struct{})
	open := func(string, serialdev.SerialOptions) (io.ReadWriteCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, device.ErrDeviceNotFound
		}
		close(opened)
		return blockingPort{make(chan struct{})}, nil
	}
	after := func(d time.Duration) <-chan time.Time {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	r, err := serialdev.New(serialdev.Options{Name: "s", Path: "/dev/x", Open: open, After: after,
		Backoff: serialdev.Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}},
		func(frame.Frame) device.Event { return device.Event{} })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, func(device.Event) {}); close(done) }()
	select {
	case <-opened:
	case <-time.After(5 * time.Second):
		t.Fatal("never opened")
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{10, 20, 40, 40, 40}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if len(delays) != len(want) {
		t.Fatalf("delays %v", delays)
	}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays %v, want %v", delays, want)
		}
	}
	if h := r.Health(); h.Faults["not_found"] != 5 || h.State != device.StateStopped {
		t.Fatalf("health %+v", h)
	}
}

// blockingPort blocks reads until closed, like an idle port.
type blockingPort struct{ c chan struct{} }

func (p blockingPort) Read([]byte) (int, error)    { <-p.c; return 0, io.EOF }
func (p blockingPort) Write(b []byte) (int, error) { return len(b), nil }
func (p blockingPort) Close() error                { close(p.c); return nil }

func TestNewValidates(t *testing.T) {
	h := func(frame.Frame) device.Event { return device.Event{} }
	if _, err := serialdev.New(serialdev.Options{Path: "/x"}, h); err == nil {
		t.Error("no name accepted")
	}
	if _, err := serialdev.New(serialdev.Options{Name: "a", Path: "/x", Serial: serialdev.SerialOptions{Parity: "x"}}, h); err == nil {
		t.Error("bad parity accepted")
	}
}
