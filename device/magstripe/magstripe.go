package magstripe

import (
	"fmt"
	"strings"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/device/frame"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
)

// Maximum track lengths (ISO/IEC 7813, 4909) including sentinels.
const (
	maxTrack1 = 79
	maxTrack2 = 40
	maxTrack3 = 107
)

// Swipe is a parsed swipe.
type Swipe struct {
	// Number is the member number read from track 2, or track 1 when
	// track 2 is missing or unreadable.
	Number string
	// Track is the track Number came from (1 or 2, or 3).
	Track int
	// BadTracks counts tracks sent as unreadable ('E').
	BadTracks int
}

// Error is a refused swipe. It never holds a card number: Error, %v, %+v,
// %#v and %q all print the same safe sentence.
type Error struct {
	Reason error // a device sentinel: ErrNotMemberCard, ErrHalfSwipe...
	Track  int   // 0 when not tied to one track
	Detail string
}

// Error is a safe sentence: reason, track and detail, never card data.
func (e *Error) Error() string {
	s := "magstripe"
	if e.Track > 0 {
		s += fmt.Sprintf(": track %d", e.Track)
	}
	s += ": " + e.Reason.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the sentinel reason.
func (e *Error) Unwrap() error { return e.Reason }

// Format prints Error() for every verb, so %+v or %#v cannot dump fields.
func (e *Error) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", e.Error())
		return
	}
	_, _ = f.Write([]byte(e.Error()))
}

// GoString is the same safe sentence.
func (e *Error) GoString() string { return e.Error() }

func fail(reason error, track int, detail string) (Swipe, error) {
	return Swipe{}, &Error{Reason: reason, Track: track, Detail: detail}
}

// Parse parses one reader frame (without its CR).
func Parse(data string) (Swipe, error) {
	if data == "" {
		return fail(device.ErrEmpty, 0, "")
	}
	// Refuse payment cards before anything else, whatever shape the rest
	// of the frame has: a half-swiped bank card still carries its PAN.
	if strings.Contains(data, "^") {
		return fail(device.ErrNotMemberCard, 1, "bank card track layout")
	}
	if cardsafe.ContainsPAN(data) {
		return fail(device.ErrNotMemberCard, 0, "payment card number")
	}
	var sw Swipe
	var t1, t2, t3 string
	have1, have2, have3 := false, false, false
	rest := data
	for rest != "" {
		start := rest[0]
		if start != '%' && start != ';' {
			return fail(device.ErrBadTrack, 0, "data outside a track")
		}
		end := strings.IndexByte(rest, '?')
		if end < 0 {
			return fail(device.ErrHalfSwipe, trackNo(start, have2), "no end sentinel")
		}
		body := rest[1:end]
		if strings.ContainsAny(body, "%;") {
			return fail(device.ErrHalfSwipe, trackNo(start, have2), "track cut short")
		}
		rest = rest[end+1:]
		// An LRC byte may follow the end sentinel on some readers; it is
		// never a start sentinel, so skip one byte that is not.
		if rest != "" && rest[0] != '%' && rest[0] != ';' {
			rest = rest[1:]
		}
		switch {
		case start == '%' && !have1 && !have2:
			if len(body)+2 > maxTrack1 {
				return fail(device.ErrBadTrack, 1, "too long")
			}
			t1, have1 = body, true
		case start == ';' && !have2:
			if len(body)+2 > maxTrack2 {
				return fail(device.ErrBadTrack, 2, "too long")
			}
			t2, have2 = body, true
		case start == ';' && !have3:
			if len(body)+2 > maxTrack3 {
				return fail(device.ErrBadTrack, 3, "too long")
			}
			t3, have3 = body, true
		default:
			return fail(device.ErrBadTrack, 0, "unexpected track order")
		}
	}
	for _, t := range []struct {
		have bool
		body string
	}{{have1, t1}, {have2, t2}, {have3, t3}} {
		if t.have && t.body == "E" {
			sw.BadTracks++
		}
	}
	if have2 && t2 != "E" {
		n, err := track2Number(t2)
		if err != nil {
			return Swipe{}, err
		}
		sw.Number, sw.Track = n, 2
		return sw, nil
	}
	if have1 && t1 != "E" {
		n, err := track1Number(t1)
		if err != nil {
			return Swipe{}, err
		}
		sw.Number, sw.Track = n, 1
		return sw, nil
	}
	if have3 && t3 != "E" {
		n, err := track2Number(t3)
		if err != nil {
			return Swipe{}, err
		}
		sw.Number, sw.Track = n, 3
		return sw, nil
	}
	return fail(device.ErrTrackError, 0, "no readable track")
}

func trackNo(start byte, have2 bool) int {
	if start == '%' {
		return 1
	}
	if have2 {
		return 3
	}
	return 2
}

// track2Number takes the digits before the field separator '='.
func track2Number(body string) (string, error) {
	n, _, _ := strings.Cut(body, "=")
	if !cardsafe.IsDigits(n) {
		return "", &Error{Reason: device.ErrBadTrack, Track: 2, Detail: "number is not numeric"}
	}
	return n, nil
}

// track1Number takes the field after the format code letter.
func track1Number(body string) (string, error) {
	if len(body) < 2 || body[0] < 'A' || body[0] > 'Z' {
		return "", &Error{Reason: device.ErrBadTrack, Track: 1, Detail: "no format code"}
	}
	return body[1:], nil
}

// FrameOptions are the framing defaults for magstripe readers: CR-ended,
// room for three full tracks.
func FrameOptions() frame.Options {
	return frame.Options{Terminator: frame.CR, MaxLen: maxTrack1 + maxTrack2 + maxTrack3 + 8}
}

// Handler parses frames as swipes and accepts only member cards known to c.
func Handler(c *classify.Classifier) serialdev.Handler {
	return func(f frame.Frame) device.Event {
		sw, err := Parse(f.Data)
		if err != nil {
			return device.Event{Kind: device.KindReject, Symbology: device.SymMagTrack, Reason: err}
		}
		r, err := c.Member(device.SymMagTrack, sw.Number)
		if err != nil {
			return device.Event{Kind: device.KindReject, Symbology: device.SymMagTrack, Reason: err}
		}
		return device.Event{Kind: device.KindMember, Symbology: device.SymMagTrack, Payload: r.Code}
	}
}

// New returns a magstripe reader device. o.Frame is replaced by
// FrameOptions when its MaxLen is zero.
func New(o serialdev.Options, c *classify.Classifier) (*serialdev.Reader, error) {
	if o.Frame.MaxLen == 0 {
		o.Frame = FrameOptions()
	}
	return serialdev.New(o, Handler(c))
}
