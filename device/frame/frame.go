package frame

import (
	"bytes"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
)

// Terminator says how a frame ends on the wire.
type Terminator int

// Terminators.
const (
	// CR ends a frame with '\r'. The default, and what most scanners and
	// magstripe readers send. A stray '\n' is tolerated as noise-free
	// whitespace so CRLF streams also work.
	CR Terminator = iota
	// LF ends a frame with '\n' (a stray '\r' before it is ignored).
	LF
	// CRLF ends a frame with "\r\n"; either byte alone also ends the frame,
	// and an empty frame between them is ignored.
	CRLF
	// IdleGap ends a frame when no byte arrived for Options.IdleGap. A CR
	// or LF also ends it, so a scanner that does send one still works.
	IdleGap
)

// ParseTerminator parses "cr", "lf", "crlf" or "none" (idle gap).
func ParseTerminator(s string) (Terminator, error) {
	switch s {
	case "", "cr", "CR":
		return CR, nil
	case "lf", "LF":
		return LF, nil
	case "crlf", "CRLF":
		return CRLF, nil
	case "none", "idle", "gap":
		return IdleGap, nil
	}
	return 0, fmt.Errorf("frame: unknown terminator %q (want cr, lf, crlf or none)", s)
}

// Options configure an Assembler. The zero value is CR-terminated frames of
// at most 256 bytes, no prefix, no AIM identifiers.
type Options struct {
	Terminator Terminator
	// IdleGap ends a frame with Terminator IdleGap; default 50 ms
	// (a scanner sends a whole code in one burst, well under that).
	IdleGap time.Duration
	// Prefix is stripped from the start of a frame when present.
	Prefix string
	// AIM says frames start with an AIM symbology identifier (]Xm).
	AIM bool
	// MaxLen is the longest accepted frame in bytes; default 256.
	MaxLen int
	// AllowBinary accepts any byte inside a frame. By default only
	// printable ASCII (0x20-0x7E) is accepted and anything else is noise;
	// set it for readers that send GS1-128 FNC1 (0x1D) separators.
	AllowBinary bool
	// StaleAfter rejects a frame still waiting for its terminator after
	// this long without a byte (device.ErrBadTerminator), so a cut-off
	// scan is refused at once instead of being glued to the next one;
	// default 500ms (a scan arrives in one burst of a few ms). Not used
	// with IdleGap framing.
	StaleAfter time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxLen <= 0 {
		o.MaxLen = 256
	}
	if o.IdleGap <= 0 {
		o.IdleGap = 50 * time.Millisecond
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 500 * time.Millisecond
	}
	return o
}

// Frame is one complete input.
type Frame struct {
	// Symbology from the AIM identifier, or SymUnknown.
	Symbology device.Symbology
	// AIM is the raw identifier (e.g. "]E0") when AIM is on.
	AIM string
	// Data is the payload after prefix and AIM identifier were stripped.
	Data string
	// At is the arrival time of the frame's last byte.
	At time.Time
}

// Reject is input that did not make a frame. Err is one of the device
// sentinels (ErrNoise, ErrTooLong, ErrMissingAIM, ErrEmpty), possibly
// wrapped with a safe detail; it never carries the input bytes.
type Reject struct {
	Err error
	At  time.Time
}

// Output is one result of the assembler in wire order: a Frame, or a
// Reject when Reject.Err is non-nil.
type Output struct {
	Frame  Frame
	Reject Reject
}

// Split separates outputs into frames and rejects (for tests and callers
// that do not care about their interleaving).
func Split(out []Output) (frames []Frame, rejects []Reject) {
	for _, o := range out {
		if o.Reject.Err != nil {
			rejects = append(rejects, o.Reject)
		} else {
			frames = append(frames, o.Frame)
		}
	}
	return frames, rejects
}

// Assembler assembles frames. It is not safe for concurrent use; each port
// loop owns one.
type Assembler struct {
	o        Options
	buf      []byte
	last     time.Time
	dropping bool // over-long frame: discard until the next terminator
	dropLen  int
	noise    bool // current frame contains a non-printable byte
	inNoise  bool // within a run of noise bytes between frames (one reject per run)
}

// New returns an Assembler.
func New(o Options) *Assembler {
	o = o.withDefaults()
	return &Assembler{o: o, buf: make([]byte, 0, o.MaxLen)}
}

// Options returns the effective options (defaults applied).
func (a *Assembler) Options() Options { return a.o }

// Feed adds bytes that arrived at time now. It returns completed frames and
// rejects in the order they ended on the wire. With IdleGap framing, bytes
// arriving after a gap first complete the pending frame.
func (a *Assembler) Feed(p []byte, now time.Time, out []Output) []Output {
	if a.o.Terminator == IdleGap {
		if len(a.buf) > 0 || a.dropping {
			if now.Sub(a.last) >= a.o.IdleGap {
				out = a.end(a.last, out)
			}
		}
		for _, c := range p {
			if a.isTerminator(c) {
				out = a.end(now, out)
				continue
			}
			out = a.add(c, now, out)
		}
		if len(p) > 0 {
			a.last = now
		}
		return out
	}
	if len(a.buf) > 0 && len(p) > 0 && now.Sub(a.last) >= a.o.StaleAfter {
		out = a.stale(out)
	}
	for _, c := range p {
		if a.isTerminator(c) {
			out = a.end(now, out)
			continue
		}
		out = a.add(c, now, out)
	}
	if len(p) > 0 {
		a.last = now
	}
	return out
}

// stale refuses a frame that never got its terminator.
func (a *Assembler) stale(out []Output) []Output {
	at := a.last
	a.buf = a.buf[:0]
	a.dropping, a.dropLen, a.noise = false, 0, false
	return append(out, Output{Reject: Reject{Err: fmt.Errorf("%w: no terminator after %s", device.ErrBadTerminator, a.o.StaleAfter), At: at}})
}

// Flush ends a pending idle-gap frame when the gap has passed at now. With
// terminated framing it refuses a half frame that got no byte for
// StaleAfter (device.ErrBadTerminator).
func (a *Assembler) Flush(now time.Time, out []Output) []Output {
	if a.o.Terminator != IdleGap {
		if len(a.buf) > 0 && now.Sub(a.last) >= a.o.StaleAfter {
			return a.stale(out)
		}
		return out
	}
	if len(a.buf) == 0 && !a.dropping {
		return out
	}
	if now.Sub(a.last) < a.o.IdleGap {
		return out
	}
	return a.end(a.last, out)
}

// Pending reports how many bytes wait for a frame end.
func (a *Assembler) Pending() int { return len(a.buf) }

// Reset drops any partial frame, e.g. after the device was unplugged: a half
// frame from before an unplug must not be glued to bytes after it.
func (a *Assembler) Reset() {
	a.buf = a.buf[:0]
	a.dropping, a.dropLen, a.noise, a.inNoise = false, 0, false, false
}

func (a *Assembler) isTerminator(c byte) bool {
	switch a.o.Terminator {
	case CR:
		return c == '\r' || c == '\n'
	case LF:
		return c == '\n' || c == '\r'
	case CRLF, IdleGap:
		return c == '\r' || c == '\n'
	}
	return false
}

func (a *Assembler) add(c byte, now time.Time, out []Output) []Output {
	if a.dropping {
		a.dropLen++
		return out
	}
	if !a.o.AllowBinary && (c < 0x20 || c > 0x7e) {
		if len(a.buf) == 0 {
			// Line noise between frames (power-on garbage, a NUL from a
			// reset): dropped, one reject per run of noise bytes, and the
			// next frame is unaffected.
			if a.inNoise {
				return out
			}
			a.inNoise = true
			return append(out, Output{Reject: Reject{Err: device.ErrNoise, At: now}})
		}
		// Resynchronisation: a control byte inside a frame ends it (a
		// scanner sending TAB or ETX instead of the configured terminator,
		// a glitch). What came before is refused; what follows starts a
		// new frame, so one bad frame never swallows the next good one.
		a.buf = a.buf[:0]
		a.noise = false
		a.inNoise = true
		return append(out, Output{Reject: Reject{Err: fmt.Errorf("%w (0x%02x)", device.ErrBadTerminator, c), At: now}})
	}
	a.inNoise = false
	if len(a.buf) >= a.o.MaxLen {
		a.dropping = true
		a.dropLen = len(a.buf) + 1
		a.buf = a.buf[:0]
		return out
	}
	a.buf = append(a.buf, c)
	return out
}

func (a *Assembler) end(at time.Time, out []Output) []Output {
	defer func() {
		a.buf = a.buf[:0]
		a.dropping, a.dropLen, a.noise = false, 0, false
	}()
	if a.dropping {
		return append(out, Output{Reject: Reject{
			Err: fmt.Errorf("%w: %d bytes, limit %d", device.ErrTooLong, a.dropLen, a.o.MaxLen),
			At:  at,
		}})
	}
	a.inNoise = false
	if len(a.buf) == 0 {
		// CRLF pairs and blank lines end nothing.
		return out
	}
	if a.noise {
		return append(out, Output{Reject: Reject{Err: fmt.Errorf("%w inside a frame", device.ErrNoise), At: at}})
	}
	data := a.buf
	if a.o.Prefix != "" {
		data = bytes.TrimPrefix(data, []byte(a.o.Prefix))
	}
	f := Frame{At: at}
	if a.o.AIM {
		if len(data) < 3 || data[0] != ']' {
			return append(out, Output{Reject: Reject{Err: device.ErrMissingAIM, At: at}})
		}
		f.AIM = string(data[:3])
		f.Symbology = SymbologyOf(f.AIM)
		data = data[3:]
	}
	if len(data) == 0 {
		return append(out, Output{Reject: Reject{Err: device.ErrEmpty, At: at}})
	}
	f.Data = string(data)
	return append(out, Output{Frame: f})
}

// SymbologyOf maps an AIM identifier such as "]E0" to a symbology.
func SymbologyOf(aim string) device.Symbology {
	if len(aim) != 3 || aim[0] != ']' {
		return device.SymUnknown
	}
	switch aim[1] {
	case 'E':
		switch aim[2] {
		case '0':
			return device.SymEAN13
		case '4':
			return device.SymEAN8
		case '1', '2':
			return device.SymEANAddOn
		}
		return device.SymUnknown
	case 'C':
		if aim[2] == '1' {
			return device.SymGS1128
		}
		return device.SymCode128
	case 'A':
		return device.SymCode39
	case 'I':
		return device.SymITF
	}
	return device.SymUnknown
}
