package display_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/display"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
	"github.com/loyalty-terminal/loyalty/device/sim"
	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// gateWriter blocks every Write while closed (a display that stopped
// taking bytes on a port without deadlines).
type gateWriter struct {
	mu   sync.Mutex
	open chan struct{}
	buf  bytes.Buffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}
func (g *gateWriter) Close() error { return nil }
func (g *gateWriter) Bytes() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return bytes.Clone(g.buf.Bytes())
}

// wait bounds every testkit.Eventually in this file.
const wait = 10 * time.Second

// TestQueuedNeverBlocksAndKeepsNewest: with the display blocked, Show
// returns at once every time, Health says stuck, and once the display
// takes bytes again only the newest screen follows the one in flight.
func TestQueuedNeverBlocksAndKeepsNewest(t *testing.T) {
	g := &gateWriter{open: make(chan struct{})}
	s, err := display.NewSerial(display.SerialOptions{Protocol: display.CD5220{}, Open: func() (io.WriteCloser, error) { return g, nil }})
	if err != nil {
		t.Fatal(err)
	}
	q := display.NewQueued(s, display.QueuedOptions{StuckAfter: 50 * time.Millisecond})
	defer q.Close()
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 500 {
			_ = q.Show(ctx, [2]string{fmt.Sprint("item ", i), "total"})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Show blocked on a stuck display")
	}
	testkit.Eventually(t, wait, "stuck in health", func() bool {
		h := q.Health()
		return h.State == device.StateUnhealthy && h.Faults["stuck"] == 1
	})
	close(g.open)
	testkit.Eventually(t, wait, "queue drained", q.Idle)
	// Init and the screen that was in flight, then the newest: nothing
	// in between.
	got := g.Bytes()
	n := bytes.Count(got, []byte("\x1bQA"))
	if (n != 1 && n != 2) || !bytes.HasPrefix(got, display.CD5220{}.Init(display.CP437)) ||
		!bytes.HasSuffix(got, display.CD5220{}.Show(display.CP437, 20, [2]string{"item 499", "total"})) {
		t.Fatalf("display got %q", got)
	}
	if q.Superseded() != int64(500-n) {
		t.Errorf("superseded %d, want %d", q.Superseded(), 500-n)
	}
	if h := q.Health(); h.State != device.StateHealthy || h.LastError != "" || h.Faults["stuck"] != 1 {
		t.Errorf("after recovery: %+v", h)
	}
}

// TestQueuedStuckPTY: a real pty whose reader stops: writes time out, the
// display shows as stuck, and when the reader drains it the display is
// re-initialised and shows the newest screen.
func TestQueuedStuckPTY(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	s, err := display.NewSerial(display.SerialOptions{Protocol: display.CD5220{}, Brightness: 2, WriteTimeout: 100 * time.Millisecond,
		Open: func() (io.WriteCloser, error) {
			return serialdev.OpenWriter(slave.Name(), serialdev.SerialOptions{Baud: 115200})
		}})
	if err != nil {
		t.Fatal(err)
	}
	// StuckAfter well above the write timeout: only a real timeout (the
	// pty's buffers full) counts here, not a write slowed by a busy machine
	q := display.NewQueued(s, display.QueuedOptions{StuckAfter: time.Minute, Retry: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	defer q.Close()
	ctx := context.Background()
	// Nobody reads the master: the pty's buffers fill up.
	for i := 0; q.Health().Faults["stuck"] == 0; i++ {
		if i > 100000 {
			t.Fatal("the display never got stuck")
		}
		_ = q.Show(ctx, [2]string{fmt.Sprintf("line %06d", i), "x"})
		if i%64 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if h := q.Health(); h.State != device.StateUnhealthy {
		t.Fatalf("stuck display: %+v", h)
	}
	_ = q.Show(ctx, [2]string{"newest", "screen"})
	// The reader comes back.
	var mu sync.Mutex
	var got []byte
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			mu.Lock()
			got = append(got, b[:n]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	p := display.CD5220{}
	br, _ := p.Brightness(2)
	tail := append(append(p.Init(display.CP437), br...), p.Show(display.CP437, 20, [2]string{"newest", "screen"})...)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		ok := bytes.HasSuffix(got, tail)
		n := len(got)
		last := got[max(0, n-80):]
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no redraw after the reader came back: %d bytes, ending %q; health %+v", n, last, q.Health())
		}
	}
	testkit.Eventually(t, wait, "healthy again", func() bool { h := q.Health(); return h.State == device.StateHealthy && h.LastError == "" })
}

// TestQueuedRedrawsReturningDisplay: a display unplugged while nothing
// changes is noticed by its path, and redrawn as soon as it is back,
// without waiting for the next screen.
func TestQueuedRedrawsReturningDisplay(t *testing.T) {
	link := filepath.Join(t.TempDir(), "display0")
	sd, err := sim.NewDisplay(sim.DisplayOptions{Link: link})
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	s, err := display.NewSerial(display.SerialOptions{Protocol: display.ESCPOS{}, CodePage: display.CP866, Brightness: 1,
		Open: func() (io.WriteCloser, error) { return serialdev.OpenWriter(link, serialdev.SerialOptions{Baud: 9600}) }})
	if err != nil {
		t.Fatal(err)
	}
	q := display.NewQueued(s, display.QueuedOptions{Baud: 9600, Watch: link, Retry: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	defer q.Close()
	lines := [2]string{"Иван", "120 pts"}
	_ = q.Show(context.Background(), lines)
	p := display.ESCPOS{}
	br, _ := p.Brightness(1)
	want := append(append(p.Init(display.CP866), br...), p.Show(display.CP866, 20, lines)...)
	testkit.Eventually(t, wait, "first screen", func() bool { return bytes.Equal(sd.Bytes(), want) })
	if err := sd.Unplug(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "unplug noticed", func() bool { return q.Health().State == device.StateUnhealthy })
	sd.Reset()
	if err := sd.Replug(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "redrawn on return", func() bool { return bytes.Equal(sd.Bytes(), want) })
	if h := q.Health(); h.Reopens != 1 || h.Faults["gone"] == 0 {
		t.Errorf("health %+v", h)
	}
}

// TestOpenWriterBusy: a display port another process holds is busy, with
// the holder named.
func TestOpenWriterBusy(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	w, err := serialdev.OpenWriter(slave.Name(), serialdev.SerialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := serialdev.OpenWriter(slave.Name(), serialdev.SerialOptions{}); err == nil {
		t.Fatal("second open of a held display succeeded")
	}
	if _, err := os.Stat(slave.Name()); err != nil {
		t.Fatal(err)
	}
}
