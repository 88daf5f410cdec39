package sim

import (
	"bytes"
	"errors"
	"os"
	"sync"

	"github.com/loyalty-terminal/loyalty/device/display"
)

// DisplayOptions configure a simulated pole display.
type DisplayOptions struct {
	// Link, when set, is a symlink kept pointing at the pty slave
	// (e.g. "var/dev/display0").
	Link string
}

// Display is a simulated serial pole display: the daemon writes display
// commands to the pty slave, and the simulator keeps every byte that
// arrives on the master so tests (or a viewer) can read them back.
type Display struct {
	o       DisplayOptions
	mu      sync.Mutex
	master  *os.File
	slave   *os.File
	buf     bytes.Buffer
	changed chan struct{}
	wg      sync.WaitGroup
}

// NewDisplay creates the pty and starts collecting bytes.
func NewDisplay(o DisplayOptions) (*Display, error) {
	d := &Display{o: o, changed: make(chan struct{}, 1)}
	if err := d.Replug(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Display) collect(m *os.File) {
	defer d.wg.Done()
	b := make([]byte, 4096)
	for {
		n, err := m.Read(b)
		if n > 0 {
			d.mu.Lock()
			d.buf.Write(b[:n])
			d.mu.Unlock()
			select {
			case d.changed <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

// Path is the path the daemon should open (the link when configured).
func (d *Display) Path() string {
	if d.o.Link != "" {
		return d.o.Link
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.slave == nil {
		return ""
	}
	return d.slave.Name()
}

// Bytes returns a copy of everything received so far.
func (d *Display) Bytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.buf.Bytes())
}

// Reset forgets the bytes received so far.
func (d *Display) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf.Reset()
}

// Changed is signalled (without blocking, coalesced) when bytes arrive.
func (d *Display) Changed() <-chan struct{} { return d.changed }

// Unplug closes the pty: the daemon's next write fails.
func (d *Display) Unplug() error {
	d.mu.Lock()
	if d.master == nil {
		d.mu.Unlock()
		return nil
	}
	err := errors.Join(d.master.Close(), d.slave.Close())
	d.master, d.slave = nil, nil
	if d.o.Link != "" {
		if rerr := os.Remove(d.o.Link); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
	return err
}

// Replug creates a new pty and points the link at it.
func (d *Display) Replug() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.master != nil {
		return nil
	}
	m, s, err := openRaw()
	if err != nil {
		return err
	}
	if d.o.Link != "" {
		if err := relink(s.Name(), d.o.Link); err != nil {
			m.Close()
			s.Close()
			return err
		}
	}
	d.master, d.slave = m, s
	d.wg.Add(1)
	go d.collect(m)
	return nil
}

// Close unplugs the display.
func (d *Display) Close() error { return d.Unplug() }

// Screen renders the bytes received so far as the given display would show
// them (see display.Render).
func (d *Display) Screen(p display.Protocol, cp display.CodePage, width int) (display.Screen, error) {
	return display.Render(p, cp, width, d.Bytes())
}
