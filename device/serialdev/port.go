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

var errBusy = device.ErrDeviceBusy

// OpenSerial opens a serial port with go.bug.st/serial. Besides the
// library's TIOCEXCL (which root ignores), it takes an advisory flock on the
// device so that a second loyaltyd, or a second device entry for the same
// path, gets device.ErrDeviceBusy instead of stealing bytes; a port that
// another process already has open (`cat` or `screen` on it, see Holders)
// is busy too, and the error names the holder's PID. A missing path
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
	if hs := Holders(path); len(hs) > 0 {
		unix.Close(lock)
		return nil, heldError(path, hs)
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

// WritePort is a port opened for writing with a write deadline (an
// *os.File on a non-blocking descriptor).
type WritePort interface {
	io.WriteCloser
	SetWriteDeadline(t time.Time) error
}

// OpenWriter opens a serial port for output only (a pole display): raw
// 8-bit mode at the options' baud, exclusive like OpenSerial (TIOCEXCL,
// flock, no other holder), on a non-blocking descriptor so writes take a
// deadline instead of hanging on a display that stopped taking bytes.
// Close discards output still queued in the kernel, so it never waits for
// a stuck line to drain.
func OpenWriter(path string, o SerialOptions) (WritePort, error) {
	mode, err := o.Mode()
	if err != nil {
		return nil, err
	}
	speed, ok := bauds[mode.BaudRate]
	if !ok {
		return nil, fmt.Errorf("serial: baud %d is not a standard rate", mode.BaudRate)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", path, device.ErrDeviceNotFound)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, mapOpenErr(err))
	}
	fail := func(err error) (WritePort, error) { unix.Close(fd); return nil, err }
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fail(fmt.Errorf("open %s: %w", path, device.ErrDeviceBusy))
		}
		return fail(fmt.Errorf("lock %s: %w", path, err))
	}
	if hs := Holders(path); len(hs) > 0 {
		return fail(heldError(path, hs))
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fail(fmt.Errorf("open %s: not a serial port: %w", path, err))
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CBAUD | unix.CRTSCTS
	t.Cflag |= unix.CREAD | unix.CLOCAL | speed | map[int]uint32{5: unix.CS5, 6: unix.CS6, 7: unix.CS7, 8: unix.CS8}[mode.DataBits]
	switch mode.Parity {
	case serial.OddParity:
		t.Cflag |= unix.PARENB | unix.PARODD
	case serial.EvenParity:
		t.Cflag |= unix.PARENB
	}
	if mode.StopBits == serial.TwoStopBits {
		t.Cflag |= unix.CSTOPB
	}
	t.Ispeed, t.Ospeed = speed, speed
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fail(fmt.Errorf("set line %s: %w", path, err))
	}
	_ = unix.IoctlSetInt(fd, unix.TIOCEXCL, 0)
	// A non-blocking descriptor goes through Go's poller: write deadlines
	// work and Close wakes a blocked Write.
	return &writePort{File: os.NewFile(uintptr(fd), path), fd: fd}, nil
}

type writePort struct {
	*os.File
	fd   int
	once sync.Once
	err  error
}

func (p *writePort) Close() error {
	p.once.Do(func() {
		_ = unix.IoctlSetInt(p.fd, unix.TCFLSH, unix.TCOFLUSH)
		p.err = p.File.Close()
	})
	return p.err
}

var bauds = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600, 19200: unix.B19200,
	38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400,
	460800: unix.B460800, 921600: unix.B921600,
}
