package serialdev_test

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/loyalty-terminal/loyalty/device"
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
