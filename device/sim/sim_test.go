package sim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/display"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
	"github.com/loyalty-terminal/loyalty/device/sim"
)

func waitBytes(t *testing.T, d *sim.Display, want []byte) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !bytes.Equal(d.Bytes(), want) {
		select {
		case <-d.Changed():
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("display got %q, want %q", d.Bytes(), want)
		}
	}
}

// TestSerialDisplayOverPTY drives the CD5220 and ESC/POS displays through
// the real serial code path and reads the bytes back from the pty master,
// including an unplug and replug of the display by its stable link.
func TestSerialDisplayOverPTY(t *testing.T) {
	for _, p := range []display.Protocol{display.CD5220{}, display.ESCPOS{}} {
		t.Run(p.Name(), func(t *testing.T) {
			link := filepath.Join(t.TempDir(), "display0")
			sd, err := sim.NewDisplay(sim.DisplayOptions{Link: link})
			if err != nil {
				t.Fatal(err)
			}
			defer sd.Close()
			open := func() (io.WriteCloser, error) {
				return serialdev.OpenSerial(link, serialdev.SerialOptions{Baud: 9600}, 0)
			}
			d, err := display.NewSerial(display.SerialOptions{Protocol: p, CodePage: display.CP866, Open: open})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			lines := [2]string{"Иван", "Баллы: 120"}
			if err := d.Show(ctx, lines); err != nil {
				t.Fatal(err)
			}
			want := append(p.Init(display.CP866), p.Show(display.CP866, 20, lines)...)
			waitBytes(t, sd, want)
			scr, err := sd.Screen(p, display.CP866, 20)
			if err != nil || scr.Lines != [2]string{"Иван                ", "Баллы: 120          "} {
				t.Fatalf("screen %q %v", scr.Lines, err)
			}

			if err := sd.Unplug(); err != nil {
				t.Fatal(err)
			}
			// Writes fail while unplugged (EIO, then not found), never hang.
			failed := false
			for i := 0; i < 3 && !failed; i++ {
				failed = d.Show(ctx, lines) != nil
			}
			if !failed {
				t.Fatal("show to an unplugged display did not fail")
			}
			if err := sd.Replug(); err != nil {
				t.Fatal(err)
			}
			sd.Reset()
			if err := d.Show(ctx, lines); err != nil {
				t.Fatalf("after replug: %v", err)
			}
			waitBytes(t, sd, want) // re-initialised on reopen
		})
	}
}

func TestScannerLinkAndFIFOFiles(t *testing.T) {
	dir := t.TempDir()
	link, fifo := filepath.Join(dir, "dev", "scanner0"), filepath.Join(dir, "scanner0-in")
	s, err := sim.NewScanner(sim.ScannerOptions{Link: link, FIFO: fifo})
	if err != nil {
		t.Fatal(err)
	}
	target, err := os.Readlink(link)
	if err != nil || target != s.PTSPath() {
		t.Fatalf("link %q -> %q, pts %q", link, target, s.PTSPath())
	}
	if fi, err := os.Stat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("fifo: %v %v", fi, err)
	}
	if err := s.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link still there after unplug: %v", err)
	}
	if err := s.Inject("1"); err != sim.ErrUnplugged {
		t.Fatalf("inject while unplugged: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fifo); !os.IsNotExist(err) {
		t.Fatalf("fifo left behind: %v", err)
	}
}

func TestScanHelper(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "scanner0-in")
	if err := sim.Scan(fifo, "4006381333931"); !errors.Is(err, sim.ErrNotRunning) {
		t.Fatalf("no fifo: %v", err)
	}
	s, err := sim.NewScanner(sim.ScannerOptions{FIFO: fifo, Terminator: "\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Read what reaches the device side (the pty slave).
	port, err := serialdev.OpenSerial(s.Path(), serialdev.SerialOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if err := sim.Scan(fifo, "4006381333931"); err != nil {
		t.Fatal(err)
	}
	if err := sim.Scan(fifo, "two\nlines"); err == nil {
		t.Fatal("multi-line scan accepted")
	}
	got := make([]byte, 0, 15)
	buf := make([]byte, 64)
	for len(got) < 15 {
		n, err := port.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "4006381333931\r\n" {
		t.Fatalf("device got %q", got)
	}
}
