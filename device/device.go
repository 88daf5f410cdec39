package device

import (
	"errors"
	"time"
)

// Kind says what an Event means to the register.
type Kind int

// Event kinds.
const (
	// KindItem is a product code (EAN-13, UPC-A, EAN-8, in-store label).
	KindItem Kind = iota + 1
	// KindMember is a member card number (barcode, magstripe or Wiegand).
	KindMember
	// KindControl is a cashier control code from the cashier sheet.
	KindControl
	// KindButton is a press of a GPIO button.
	KindButton
	// KindReject is input that was refused; Reason says why.
	KindReject
)

var kindNames = [...]string{"", "item", "member", "control", "button", "reject"}

// String names the kind for logs ("item", "member"...).
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) || k == 0 {
		return "unknown"
	}
	return kindNames[k]
}

// Symbology names the barcode symbology (or card technology) of a scan.
type Symbology string

// Symbologies known from AIM identifiers, structure, or the source device.
const (
	SymUnknown  Symbology = ""
	SymEAN13    Symbology = "EAN-13"
	SymUPCA     Symbology = "UPC-A"
	SymEAN8     Symbology = "EAN-8"
	SymEANAddOn Symbology = "EAN-add-on"
	SymCode128  Symbology = "Code128"
	SymGS1128   Symbology = "GS1-128"
	SymCode39   Symbology = "Code39"
	SymITF      Symbology = "ITF"
	SymMagTrack Symbology = "magstripe"
	SymWiegand  Symbology = "wiegand"
)

// Event is one input from a device, already classified. A payment card
// number never appears in an Event: such input becomes a KindReject with
// ErrNotMemberCard and no payload.
type Event struct {
	Device    string    // configured device name, e.g. "scanner0"
	Kind      Kind      // what the input means
	Symbology Symbology // barcode symbology or card technology
	// Payload is the code: the item code, the member number, the control
	// code as scanned, or the button name. Empty for rejects.
	Payload string
	// Action is the cashier action of a control code or button
	// (e.g. "TOTAL", "show_points").
	Action string
	// Item details for in-store price or weight embedded labels.
	Item *ItemInfo
	// Reason is set for KindReject: one of the sentinel errors below,
	// possibly wrapped with a safe detail. It never contains a card number.
	Reason error
	// At is when the input completed (last byte or edge), from the
	// injected clock.Clock. Devices use only durations between such times
	// (the trust flag does not matter to them); values from time.Now carry
	// a monotonic reading, so those durations do not jump when the wall
	// clock is set (a Raspberry Pi boots in 1970 until NTP answers).
	At time.Time
}

// ItemInfo describes an in-store (GS1 prefix 20-29) label.
type ItemInfo struct {
	// InStore is true for restricted-circulation (prefix 20-29) codes.
	InStore bool
	// Article is the in-store article number carried by an embedded label.
	Article string
	// PriceMinor is the embedded price in minor currency units, if any.
	PriceMinor int64
	// WeightGrams is the embedded weight, if any.
	WeightGrams int64
}

// Sentinel reasons for rejected input. Counters are labelled with
// ReasonLabel, never with the input itself.
var (
	ErrNoise          = errors.New("noise bytes")
	ErrTooLong        = errors.New("frame too long")
	ErrEmpty          = errors.New("empty frame")
	ErrMissingAIM     = errors.New("missing AIM symbology identifier")
	ErrBadCheckDigit  = errors.New("wrong check digit")
	ErrUnknownCode    = errors.New("unknown code")
	ErrNotMemberCard  = errors.New("not a member card")
	ErrHalfSwipe      = errors.New("incomplete card swipe")
	ErrTrackError     = errors.New("unreadable card track")
	ErrBadTrack       = errors.New("malformed card track")
	ErrBitCount       = errors.New("wrong wiegand bit count")
	ErrParity         = errors.New("wrong wiegand parity")
	ErrBounce         = errors.New("button bounce")
	ErrDeviceNotFound = errors.New("device path does not exist")
	ErrDeviceBusy     = errors.New("device is busy")
	ErrDeviceGone     = errors.New("device disconnected")
	// ErrDeviceStuck: the device stopped taking bytes (a display whose
	// write did not finish within its timeout).
	ErrDeviceStuck = errors.New("device not taking data")
	// ErrBadTerminator: a frame ended with a control byte that is not the
	// configured terminator (a scanner set up for TAB, ETX...).
	ErrBadTerminator = errors.New("frame ended by an unexpected byte")
)

var reasonLabels = []struct {
	err   error
	label string
}{
	{ErrNoise, "noise"},
	{ErrTooLong, "too_long"},
	{ErrEmpty, "empty"},
	{ErrMissingAIM, "missing_aim"},
	{ErrBadCheckDigit, "bad_check_digit"},
	{ErrUnknownCode, "unknown_code"},
	{ErrNotMemberCard, "not_member_card"},
	{ErrHalfSwipe, "half_swipe"},
	{ErrTrackError, "track_error"},
	{ErrBadTrack, "bad_track"},
	{ErrBitCount, "bit_count"},
	{ErrParity, "parity"},
	{ErrBounce, "bounce"},
	{ErrDeviceNotFound, "not_found"},
	{ErrDeviceBusy, "busy"},
	{ErrDeviceGone, "gone"},
	{ErrDeviceStuck, "stuck"},
	{ErrBadTerminator, "bad_terminator"},
}

// ReasonLabel maps a reject reason to a short fixed label for counters and
// metrics. Unknown errors map to "other", so a label can never carry input.
func ReasonLabel(err error) string {
	for _, r := range reasonLabels {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}

// State is the health state of a device.
type State string

// Device states.
const (
	StateStarting  State = "starting"
	StateHealthy   State = "healthy"
	StateUnhealthy State = "unhealthy"
	// StateBusy: another process holds the device (LastError names its
	// PID when it can be found); retried with backoff.
	StateBusy    State = "busy"
	StateStopped State = "stopped"
)

// Health is a snapshot of one device's health.
type Health struct {
	Name      string
	Path      string
	State     State
	LastError string // safe to show: never contains input data
	Reopens   int    // successful reopens after the first open
	Frames    int64  // accepted inputs
	// Rejects counts refused inputs by ReasonLabel.
	Rejects map[string]int64
	// Faults counts device-level failures by ReasonLabel: "not_found",
	// "busy", "gone" (unplugged) or "other".
	Faults map[string]int64
}
