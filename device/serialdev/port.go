package serialdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"

	"github.com/loyalty-terminal/loyalty/device"
)

// SerialOptions are the line settings of a serial port. The zero value is
// 9600 8N1.
type SerialOptions struct {
	Baud     int    // default 9600
	DataBits int    // 5-8, default 8
	Parity   string // "none" (default), "odd", "even", "mark", "space"
	StopBits string // "1" (default), "1.5", "2"
}

// Mode converts the options to a go.bug.st/serial mode.
func (s SerialOptions) Mode() (*serial.Mode, error) {
	m := &serial.Mode{BaudRate: s.Baud, DataBits: s.DataBits}
	if m.BaudRate == 0 {
		m.BaudRate = 9600
	}
	if m.DataBits == 0 {
		m.DataBits = 8
	}
	if m.BaudRate < 0 || m.DataBits < 5 || m.DataBits > 8 {
		return nil, fmt.Errorf("serial: bad baud %d or data bits %d", m.BaudRate, m.DataBits)
	}
	switch s.Parity {
	case "", "none", "N":
		m.Parity = serial.NoParity
	case "odd", "O":
		m.Parity = serial.OddParity
	case "even", "E":
		m.Parity = serial.EvenParity
	case "mark":
		m.Parity = serial.MarkParity
	case "space":
		m.Parity = serial.SpaceParity
	default:
		return nil, fmt.Errorf("serial: unknown parity %q", s.Parity)
	}
	switch s.StopBits {
	case "", "1":
		m.StopBits = serial.OneStopBit
	case "1.5":
		m.StopBits = serial.OnePointFiveStopBits
	case "2":
		m.StopBits = serial.TwoStopBits
	default:
		return nil, fmt.Errorf("serial: unknown stop bits %q", s.StopBits)
	}
	// Modem lines are left alone: ptys and many USB CDC devices have
	// none, and setting InitialStatusBits makes Open fail there.
	return m, nil
}

// Opener opens a port by path. Tests and the simulator can pass their own.
type Opener func(path string, o SerialOptions) (io.ReadWriteCloser, error)

// OpenSerial opens a serial port with go.bug.st/serial. Besides the
// library's TIOCEXCL (which root ignores), it takes an advisory flock on the
// device so that a second loyaltyd, or a second device entry for the same
// path, gets device.ErrDeviceBusy instead of stealing bytes. A missing path
// gives device.ErrDeviceNotFound. The port's reads time out after
// readTimeout (0 means block) so that callers can flush idle-gap frames.
func OpenSerial(path string, o SerialOptions, readTimeout time.Duration) (io.ReadWriteCloser, error) {
	mode, err := o.Mode()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", path, device.ErrDeviceNotFound)
	}
	lock, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, mapOpenErr(err))
	}
	if err := unix.Flock(lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(lock)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("open %s: %w", path, device.ErrDeviceBusy)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	p, err := serial.Open(path, mode)
	if err != nil {
		unix.Close(lock)
		return nil, fmt.Errorf("open %s: %w", path, mapOpenErr(err))
	}
	if readTimeout > 0 {
		if err := p.SetReadTimeout(readTimeout); err != nil {
			p.Close()
			unix.Close(lock)
			return nil, fmt.Errorf("set read timeout %s: %w", path, err)
		}
	}
	return &lockedPort{Port: p, lock: lock}, nil
}

func mapOpenErr(err error) error {
	var pe *serial.PortError
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("%w (%v)", device.ErrDeviceNotFound, err)
	case errors.Is(err, unix.EBUSY):
		return device.ErrDeviceBusy
	case errors.As(err, &pe) && pe.Code() == serial.PortBusy:
		return device.ErrDeviceBusy
	case errors.As(err, &pe) && pe.Code() == serial.PortNotFound:
		return device.ErrDeviceNotFound
	}
	return err
}

// lockedPort is a serial port plus the fd holding its flock.
type lockedPort struct {
	serial.Port
	lock int
	once sync.Once
	err  error
}

// Close closes the port and releases the lock, once.
func (p *lockedPort) Close() error {
	p.once.Do(func() {
		p.err = p.Port.Close()
		unix.Close(p.lock)
	})
	return p.err
}
