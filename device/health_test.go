package device_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/loyalty-terminal/loyalty/device"
)

func TestHealthCounter(t *testing.T) {
	c := device.NewHealthCounter("scanner0", "/dev/ttyACM0")
	if h := c.Health(); h.State != device.StateStarting || h.Name != "scanner0" || h.Path != "/dev/ttyACM0" || h.Rejects == nil || h.Faults == nil {
		t.Fatalf("new: %+v", h)
	}
	c.Fault(device.StateUnhealthy, fmt.Errorf("open: %w", device.ErrDeviceNotFound))
	c.Opened()
	c.Count(device.Event{Kind: device.KindItem})
	c.Count(device.Event{Kind: device.KindMember})
	c.Count(device.Event{Kind: device.KindReject, Reason: device.ErrNoise})
	c.Fault(device.StateUnhealthy, fmt.Errorf("read: %w", device.ErrDeviceGone))
	c.Opened()
	if h := c.Health(); h.LastError != "" || h.State != device.StateHealthy || h.Reopens != 1 {
		t.Errorf("after a reopen: %+v", h)
	}
	c.Fault(device.StateUnhealthy, fmt.Errorf("open: %w (held by pid 42)", device.ErrDeviceBusy))
	if h := c.Health(); h.State != device.StateBusy {
		t.Errorf("busy port: state %q, want %q", h.State, device.StateBusy)
	}
	c.Fault(device.StateUnhealthy, errors.New("gpio: pin busy elsewhere"))
	h := c.Health()
	if h.State != device.StateUnhealthy || h.LastError != "gpio: pin busy elsewhere" || h.Reopens != 1 || h.Frames != 2 {
		t.Errorf("health %+v", h)
	}
	if h.Rejects["noise"] != 1 || len(h.Rejects) != 1 {
		t.Errorf("rejects %v", h.Rejects)
	}
	if h.Faults["not_found"] != 1 || h.Faults["gone"] != 1 || h.Faults["busy"] != 1 || h.Faults["other"] != 1 || len(h.Faults) != 4 {
		t.Errorf("faults %v", h.Faults)
	}
	// A snapshot is a copy: counting on does not change it.
	c.Count(device.Event{Kind: device.KindReject, Reason: device.ErrNoise})
	c.SetState(device.StateStopped)
	if h.Rejects["noise"] != 1 || h.State != device.StateUnhealthy {
		t.Errorf("snapshot changed: %+v", h)
	}
	if h := c.Health(); h.Rejects["noise"] != 2 || h.State != device.StateStopped {
		t.Errorf("health %+v", h)
	}
}

func TestHealthCounterConcurrent(t *testing.T) {
	c := device.NewHealthCounter("w", "GPIO5,GPIO6")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Count(device.Event{Kind: device.KindMember})
				_ = c.Health()
			}
		}()
	}
	wg.Wait()
	if h := c.Health(); h.Frames != 400 {
		t.Errorf("frames %d, want 400", h.Frames)
	}
}
