package serialdev_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/frame"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
)

// TestHolders: a process reading a pty's slave is a holder; this
// process, which holds the master, is not (it is the device side), and
// neither is a process only holding another pty.
func TestHolders(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	if hs := serialdev.Holders(slave.Name()); len(hs) != 0 {
		t.Fatalf("holders before cat: %v", hs)
	}
	cat := exec.Command("cat", slave.Name())
	cat.Stdout = io.Discard
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cat.Process.Kill(); _ = cat.Wait() }()
	var hs []serialdev.Holder
	for deadline := time.Now().Add(5 * time.Second); len(hs) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		hs = serialdev.Holders(slave.Name())
	}
	if len(hs) != 1 || hs[0].PID != cat.Process.Pid || hs[0].Comm != "cat" {
		t.Fatalf("holders %v, want the cat (pid %d)", hs, cat.Process.Pid)
	}
	_, err = serialdev.OpenSerial(slave.Name(), serialdev.SerialOptions{}, 0)
	if !errors.Is(err, device.ErrDeviceBusy) || !strings.Contains(err.Error(), fmt.Sprintf("held by pid %d (cat)", cat.Process.Pid)) {
		t.Fatalf("open of a held port: %v", err)
	}
	_, err = serialdev.OpenWriter(slave.Name(), serialdev.SerialOptions{})
	if !errors.Is(err, device.ErrDeviceBusy) {
		t.Fatalf("writer open of a held port: %v", err)
	}
	if hs := serialdev.Holders("/nonexistent/tty"); hs != nil {
		t.Fatalf("holders of a missing path: %v", hs)
	}
}

// TestReaderSeesHolderFromBeforeItsWatch: a process that opens the port
// after the reader opened it but before the reader watches for opens (the
// gap between Opened and the read loop) sends no open event; the reader
// still finds it and reports busy naming it.
func TestReaderSeesHolderFromBeforeItsWatch(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	var cat *exec.Cmd
	defer func() {
		if cat != nil {
			_ = cat.Process.Kill()
			_ = cat.Wait()
		}
	}()
	open := func(path string, so serialdev.SerialOptions) (io.ReadWriteCloser, error) {
		port, err := serialdev.OpenSerial(path, so, 50*time.Millisecond)
		if err != nil || cat != nil {
			return port, err
		}
		// Widen the gap: the cat opens the port and is seen in /proc
		// before the read loop starts.
		cat = exec.Command("cat", path)
		cat.Stdout = io.Discard
		if err := cat.Start(); err != nil {
			port.Close()
			return nil, err
		}
		for deadline := time.Now().Add(10 * time.Second); len(serialdev.Holders(path)) == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("the cat never held the port")
				break
			}
		}
		return port, nil
	}
	h := func(frame.Frame) device.Event { return device.Event{} }
	r, err := serialdev.New(serialdev.Options{Name: "s", Path: slave.Name(), Open: open,
		PathCheck: time.Hour}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, func(device.Event) {}) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		hl := r.Health()
		if hl.State == device.StateBusy {
			if want := fmt.Sprintf("held by pid %d (cat)", cat.Process.Pid); !strings.Contains(hl.LastError, want) {
				t.Fatalf("busy with %q, want it to name %q", hl.LastError, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader state %s (%s), want busy with the cat that opened before its watch", hl.State, hl.LastError)
		}
	}
}
