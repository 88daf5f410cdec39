package display

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
)

// Display is a two-line customer display.
type Display interface {
	// Show replaces both lines.
	Show(ctx context.Context, lines [2]string) error
	// Clear blanks the display.
	Clear(ctx context.Context) error
	// Brightness sets the level, 1 (dim) to 4 (bright).
	Brightness(ctx context.Context, level int) error
}

// ErrBrightness is returned for a level outside 1-4.
var ErrBrightness = errors.New("display: brightness must be 1-4")

// Width is the columns of a standard 2 x 20 pole display.
const Width = 20

// Protocol encodes display commands to bytes. Implementations are pure.
type Protocol interface {
	Name() string
	Init(cp CodePage) []byte
	Clear() []byte
	Show(cp CodePage, width int, lines [2]string) []byte
	Brightness(level int) ([]byte, error)
}

const (
	esc = 0x1b
	us  = 0x1f
)

// CD5220 is the CD5220 command set.
type CD5220 struct{}

// Name is "cd5220".
func (CD5220) Name() string { return "cd5220" }

// Init resets the display (ESC @) and selects overwrite mode (ESC DC1).
// The CD5220 set has no code table command: its character table is chosen
// by DIP switch and must match the configured code page.
func (CD5220) Init(CodePage) []byte { return []byte{esc, '@', esc, 0x11} }

// Clear is 0x0C.
func (CD5220) Clear() []byte { return []byte{0x0c} }

// Show writes the upper line (ESC Q A text CR) and lower line (ESC Q B text CR).
func (CD5220) Show(cp CodePage, width int, lines [2]string) []byte {
	b := []byte{esc, 'Q', 'A'}
	b = append(b, cp.Line(lines[0], width)...)
	b = append(b, '\r', esc, 'Q', 'B')
	b = append(b, cp.Line(lines[1], width)...)
	return append(b, '\r')
}

// Brightness is ESC * n.
func (CD5220) Brightness(level int) ([]byte, error) {
	if level < 1 || level > 4 {
		return nil, ErrBrightness
	}
	return []byte{esc, '*', byte(level)}, nil
}

// ESCPOS is the Epson ESC/POS customer display command set (DM-D110 and
// clones).
type ESCPOS struct{}

// Name is "escpos".
func (ESCPOS) Name() string { return "escpos" }

// Init resets (ESC @), selects overwrite mode (US 01) and the code table
// (ESC t n, Epson's table numbers: 0 PC437, 15 PC862, 17 PC866).
func (ESCPOS) Init(cp CodePage) []byte {
	return []byte{esc, '@', us, 0x01, esc, 't', cp.escpos}
}

// Clear is 0x0C.
func (ESCPOS) Clear() []byte { return []byte{0x0c} }

// Show positions the cursor (US $ x y, 1-based) before each line.
func (ESCPOS) Show(cp CodePage, width int, lines [2]string) []byte {
	b := []byte{us, '$', 1, 1}
	b = append(b, cp.Line(lines[0], width)...)
	b = append(b, us, '$', 1, 2)
	return append(b, cp.Line(lines[1], width)...)
}

// Brightness is US X n.
func (ESCPOS) Brightness(level int) ([]byte, error) {
	if level < 1 || level > 4 {
		return nil, ErrBrightness
	}
	return []byte{us, 'X', byte(level)}, nil
}

// ParseProtocol returns "cd5220" or "escpos".
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "cd5220":
		return CD5220{}, nil
	case "escpos", "esc/pos", "epson":
		return ESCPOS{}, nil
	}
	return nil, fmt.Errorf("display: unknown command set %q (want cd5220 or escpos)", s)
}

// Opener opens the display's port; it is called again after a write
// fails, so an unplugged display comes back by itself. A port with a
// SetWriteDeadline method (serialdev.OpenWriter) gets one before each
// write (SerialOptions.WriteTimeout).
type Opener func() (io.WriteCloser, error)

type deadliner interface {
	SetWriteDeadline(t time.Time) error
}

// Serial is a pole display on a serial port. Its methods write at once
// and return the port's error; the daemon puts a Queued in front of it so
// the checkout never waits for the display.
type Serial struct {
	proto   Protocol
	cp      CodePage
	width   int
	open    Opener
	bright  int
	timeout time.Duration
	wmu     sync.Mutex // one write at a time
	mu      sync.Mutex // guards w and h (never held during a write)
	w       io.WriteCloser
	h       device.Health
	writing time.Time // when the write in progress started; zero: none
}

// SerialOptions configure a Serial display.
type SerialOptions struct {
	Protocol Protocol // required
	CodePage CodePage // default CP437
	Width    int      // default 20
	Open     Opener   // required
	// Brightness 1-4 is sent after every (re)initialisation; 0 leaves the
	// display's own setting.
	Brightness int
	// WriteTimeout bounds one write on a port that takes deadlines;
	// default 1s. A write that times out is a stuck display
	// (device.ErrDeviceStuck): the port is closed and reopened.
	WriteTimeout time.Duration
	// Name and Path label the display in Health.
	Name, Path string
}

// NewSerial returns a display; the port is opened on first use.
func NewSerial(o SerialOptions) (*Serial, error) {
	if o.Protocol == nil || o.Open == nil {
		return nil, errors.New("display: protocol and opener are required")
	}
	if o.CodePage.cm == nil {
		o.CodePage = CP437
	}
	if o.Width <= 0 {
		o.Width = Width
	}
	if o.Name == "" {
		o.Name = "display"
	}
	if o.Brightness != 0 {
		if _, err := o.Protocol.Brightness(o.Brightness); err != nil {
			return nil, err
		}
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = time.Second
	}
	return &Serial{proto: o.Protocol, cp: o.CodePage, width: o.Width, open: o.Open, bright: o.Brightness, timeout: o.WriteTimeout,
		h: device.Health{Name: o.Name, Path: o.Path, State: device.StateStarting,
			Rejects: map[string]int64{}, Faults: map[string]int64{}}}, nil
}

// Health returns the display's state: healthy after a successful write,
// unhealthy with the last error after a failed one (it is reopened on the
// next write).
func (s *Serial) Health() device.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.h
	h.Rejects = map[string]int64{}
	h.Faults = map[string]int64{}
	for k, v := range s.h.Faults {
		h.Faults[k] = v
	}
	return h
}

func (s *Serial) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.State = device.StateUnhealthy
	if errors.Is(err, device.ErrDeviceBusy) {
		s.h.State = device.StateBusy
	}
	s.h.LastError = err.Error()
	s.h.Faults[device.ReasonLabel(err)]++
	return err
}

// writingFor is how long the write in progress has taken (0: none).
func (s *Serial) writingFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing.IsZero() {
		return 0
	}
	return time.Since(s.writing)
}

// initBytes resets the display and sets the configured brightness.
func (s *Serial) initBytes() []byte {
	b := s.proto.Init(s.cp)
	if s.bright != 0 {
		br, _ := s.proto.Brightness(s.bright)
		b = append(b, br...)
	}
	return b
}

func (s *Serial) writeTimed(w io.WriteCloser, b []byte) error {
	if d, ok := w.(deadliner); ok {
		_ = d.SetWriteDeadline(time.Now().Add(s.timeout))
	}
	s.mu.Lock()
	s.writing = time.Now()
	s.mu.Unlock()
	_, err := w.Write(b)
	s.mu.Lock()
	s.writing = time.Time{}
	s.mu.Unlock()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: no byte taken for %s", device.ErrDeviceStuck, s.timeout)
	}
	if err != nil {
		return fmt.Errorf("%w (%v)", device.ErrDeviceGone, err)
	}
	return nil
}

// write sends b, opening (and initialising) the port when needed. On a
// write error the port is closed so the next call reopens it.
func (s *Serial) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	if w == nil {
		nw, err := s.open()
		if err != nil {
			return s.fail(fmt.Errorf("display open: %w", err))
		}
		if err := s.writeTimed(nw, s.initBytes()); err != nil {
			nw.Close()
			return s.fail(fmt.Errorf("display init: %w", err))
		}
		s.mu.Lock()
		if s.h.State != device.StateStarting {
			s.h.Reopens++
		}
		s.w = nw
		s.mu.Unlock()
		w = nw
	}
	if err := s.writeTimed(w, b); err != nil {
		s.mu.Lock()
		if s.w == w {
			s.w = nil
		}
		s.mu.Unlock()
		w.Close()
		return s.fail(fmt.Errorf("display write: %w", err))
	}
	s.mu.Lock()
	s.h.State = device.StateHealthy
	s.h.LastError = "" // recovered: the fault stays counted in Faults
	s.h.Frames++
	s.mu.Unlock()
	return nil
}

// Show implements Display.
func (s *Serial) Show(ctx context.Context, lines [2]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.write(s.proto.Show(s.cp, s.width, lines))
}

// Clear implements Display.
func (s *Serial) Clear(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.write(s.proto.Clear())
}

// Brightness implements Display.
func (s *Serial) Brightness(ctx context.Context, level int) error {
	b, err := s.proto.Brightness(level)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.write(b)
}

// Drop closes the port without waiting for a write in progress (a port
// that takes deadlines wakes it); the next write reopens and
// re-initialises the display.
func (s *Serial) Drop() error {
	s.mu.Lock()
	w := s.w
	s.w = nil
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	return w.Close()
}

// Close closes the port.
func (s *Serial) Close() error { return s.Drop() }

// Log is a development display that writes the two lines, padded to the
// width, as text to a writer (e.g. the terminal running `make run`).
type Log struct {
	mu    sync.Mutex
	w     io.Writer
	width int
}

// NewLog returns a Log display of the given width (0 means 20).
func NewLog(w io.Writer, width int) *Log {
	if width <= 0 {
		width = Width
	}
	return &Log{w: w, width: width}
}

func (l *Log) line(s string) string {
	rs := []rune(s)
	if len(rs) > l.width {
		rs = rs[:l.width]
	}
	return string(rs) + strings.Repeat(" ", l.width-len(rs))
}

// Show implements Display.
func (l *Log) Show(_ context.Context, lines [2]string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	bar := "+" + strings.Repeat("-", l.width+2) + "+\n"
	_, err := fmt.Fprintf(l.w, "%s| %s |\n| %s |\n%s", bar, l.line(lines[0]), l.line(lines[1]), bar)
	return err
}

// Clear implements Display.
func (l *Log) Clear(ctx context.Context) error { return l.Show(ctx, [2]string{}) }

// Brightness implements Display; a terminal has none, so it only checks
// the level.
func (l *Log) Brightness(_ context.Context, level int) error {
	if level < 1 || level > 4 {
		return ErrBrightness
	}
	return nil
}

var (
	_ Display = (*Serial)(nil)
	_ Display = (*Log)(nil)
)
