package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrUnplugged is returned by Inject while the simulated device is
// unplugged.
var ErrUnplugged = errors.New("sim: device unplugged")

// ScannerOptions configure a simulated scanner. The zero value gives a
// CR-terminated scanner reachable only through its /dev/pts path.
type ScannerOptions struct {
	// Link, when set, is a symlink kept pointing at the current pty slave
	// (e.g. "var/dev/scanner0"): give this path to the daemon.
	Link string
	// FIFO, when set, is a named pipe; each line written to it becomes
	// one scan (e.g. "var/dev/scanner0-in").
	FIFO string
	// Terminator appended to each injected scan; default "\r".
	Terminator string
	// NoTerminator sends scans bare, for readers framing by idle gap.
	NoTerminator bool
}

// Scanner is a simulated serial scanner.
type Scanner struct {
	o      ScannerOptions
	mu     sync.Mutex
	master *os.File
	slave  *os.File
	fifo   *os.File
	done   chan struct{}
}

// NewScanner creates the pty (and link and FIFO when configured).
func NewScanner(o ScannerOptions) (*Scanner, error) {
	if o.NoTerminator {
		o.Terminator = ""
	} else if o.Terminator == "" {
		o.Terminator = "\r"
	}
	s := &Scanner{o: o, done: make(chan struct{})}
	if err := s.Replug(); err != nil {
		return nil, err
	}
	if o.FIFO != "" {
		_ = os.Remove(o.FIFO)
		if err := unix.Mkfifo(o.FIFO, 0o600); err != nil {
			s.Close()
			return nil, fmt.Errorf("sim: mkfifo %s: %w", o.FIFO, err)
		}
		// O_RDWR keeps a writer open ourselves, so the reader never sees
		// EOF between two `echo`s.
		f, err := os.OpenFile(o.FIFO, os.O_RDWR, 0)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sim: open fifo: %w", err)
		}
		s.fifo = f
		go s.pumpFIFO(f)
	}
	return s, nil
}

func (s *Scanner) pumpFIFO(f *os.File) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		_ = s.Inject(line) // unplugged: the scan is lost, as on hardware
	}
}

// Path is the path the daemon should open: the link when configured,
// otherwise the current /dev/pts/N.
func (s *Scanner) Path() string {
	if s.o.Link != "" {
		return s.o.Link
	}
	return s.PTSPath()
}

// PTSPath is the current pty slave path (/dev/pts/N); it changes on Replug.
func (s *Scanner) PTSPath() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slave == nil {
		return ""
	}
	return s.slave.Name()
}

// Inject sends one scan: code plus the terminator.
func (s *Scanner) Inject(code string) error {
	return s.WriteRaw([]byte(code + s.o.Terminator))
}

// WriteRaw writes bytes as the scanner would send them, e.g. split frames
// or noise.
func (s *Scanner) WriteRaw(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == nil {
		return ErrUnplugged
	}
	_, err := s.master.Write(p)
	return err
}

// Master returns the master side for direct writes (benchmarks).
func (s *Scanner) Master() io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.master
}

// Unplug closes the pty (readers see the port closed) and removes the
// link, as when a USB scanner is pulled out.
func (s *Scanner) Unplug() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == nil {
		return nil
	}
	err := errors.Join(s.master.Close(), s.slave.Close())
	s.master, s.slave = nil, nil
	if s.o.Link != "" {
		if rerr := os.Remove(s.o.Link); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// Replug creates a new pty (a new /dev/pts/N) and points the link at it.
func (s *Scanner) Replug() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master != nil {
		return nil
	}
	m, sl, err := openRaw()
	if err != nil {
		return err
	}
	if s.o.Link != "" {
		if err := relink(sl.Name(), s.o.Link); err != nil {
			m.Close()
			sl.Close()
			return err
		}
	}
	s.master, s.slave = m, sl
	return nil
}

// Close unplugs the device and removes the FIFO.
func (s *Scanner) Close() error {
	err := s.Unplug()
	if s.fifo != nil {
		err = errors.Join(err, s.fifo.Close(), os.Remove(s.o.FIFO))
	}
	return err
}

// ErrNotRunning is returned by Scan when nothing reads the FIFO (the
// daemon is not running in simulation mode).
var ErrNotRunning = errors.New("sim: no simulated device is reading this input (is loyaltyd running with simulated devices?)")

// Scan writes one code into a simulated device's input FIFO, the way
// `loyaltyctl scan` feeds a running daemon. It never blocks: with no
// reader it returns ErrNotRunning.
func Scan(fifo, code string) error {
	if code == "" || strings.ContainsAny(code, "\r\n") {
		return errors.New("sim: a scan is one non-empty line")
	}
	f, err := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", fifo, ErrNotRunning)
		}
		return fmt.Errorf("sim: open %s: %w", fifo, err)
	}
	defer f.Close()
	if _, err := f.WriteString(code + "\n"); err != nil {
		return fmt.Errorf("sim: write %s: %w", fifo, err)
	}
	return nil
}
