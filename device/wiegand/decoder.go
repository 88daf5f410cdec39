package wiegand

import (
	"fmt"
	"strconv"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
)

// Line is a Wiegand data line.
type Line int

// Lines: a low pulse on D0 is a 0 bit, on D1 a 1 bit.
const (
	D0 Line = 0
	D1 Line = 1
)

// Edge is a level change on a line.
type Edge int

// Edges. The line idles high, so a pulse starts with Falling.
const (
	Falling Edge = iota
	Rising
)

// DefaultFrameGap ends a frame: the gap between bits is 200 us to 20 ms, so
// 25 ms of silence means the frame is complete.
const DefaultFrameGap = 25 * time.Millisecond

// maxBits bounds a frame so a stuck line cannot grow it without end.
const maxBits = 64

// Card is a decoded Wiegand card.
type Card struct {
	Bits     int    // 26 or 34
	Facility uint32 // 8 bits (26) or 16 bits (34)
	Number   uint32 // 16 bits
}

// String is the member identifier used as event payload: facility and
// number in decimal, e.g. "123-45678".
func (c Card) String() string {
	return strconv.FormatUint(uint64(c.Facility), 10) + "-" + strconv.FormatUint(uint64(c.Number), 10)
}

// Decode checks and decodes a frame of bits (one byte per bit, 0 or 1).
func Decode(bits []byte) (Card, error) {
	n := len(bits)
	var half int
	switch n {
	case 26:
		half = 13
	case 34:
		half = 17
	default:
		return Card{}, fmt.Errorf("%w: %d bits", device.ErrBitCount, n)
	}
	// Even parity over the first half (leading parity bit included),
	// odd parity over the second half (trailing parity bit included).
	ones := 0
	for _, b := range bits[:half] {
		ones += int(b & 1)
	}
	if ones%2 != 0 {
		return Card{}, fmt.Errorf("%w: leading even parity, %d-bit frame", device.ErrParity, n)
	}
	ones = 0
	for _, b := range bits[half:] {
		ones += int(b & 1)
	}
	if ones%2 != 1 {
		return Card{}, fmt.Errorf("%w: trailing odd parity, %d-bit frame", device.ErrParity, n)
	}
	var v uint64
	for _, b := range bits[1 : n-1] {
		v = v<<1 | uint64(b&1)
	}
	return Card{Bits: n, Facility: uint32(v >> 16), Number: uint32(v & 0xffff)}, nil
}

// Encode builds the bit frame for a card (for simulators and tests); it
// returns nil unless c.Bits is 26 or 34. Facility is truncated to 8 bits
// for 26-bit frames.
func Encode(c Card) []byte {
	n := c.Bits
	if n != 26 && n != 34 {
		return nil
	}
	data := uint64(c.Facility)<<16 | uint64(c.Number&0xffff)
	data &= 1<<uint(n-2) - 1
	bits := make([]byte, n)
	for i := 0; i < n-2; i++ {
		bits[1+i] = byte(data >> (uint(n - 3 - i)) & 1)
	}
	half := n / 2
	ones := 0
	for _, b := range bits[1:half] {
		ones += int(b)
	}
	bits[0] = byte(ones % 2)
	ones = 0
	for _, b := range bits[half : n-1] {
		ones += int(b)
	}
	bits[n-1] = byte(1 - ones%2)
	return bits
}

// Result is a completed frame: a Card, or Err (ErrBitCount, ErrParity).
type Result struct {
	Card Card
	Err  error
	At   time.Time // time of the frame's last bit
}

// Decoder assembles bits into frames. Not safe for concurrent use.
type Decoder struct {
	gap  time.Duration
	bits []byte
	last time.Time
}

// NewDecoder returns a Decoder; frameGap <= 0 means DefaultFrameGap.
func NewDecoder(frameGap time.Duration) *Decoder {
	if frameGap <= 0 {
		frameGap = DefaultFrameGap
	}
	return &Decoder{gap: frameGap, bits: make([]byte, 0, maxBits)}
}

// Feed adds one edge. A falling edge is a bit; rising edges end pulses and
// carry no data. If the edge comes after a silent gap, the previous frame is
// completed first and returned with ok true.
func (d *Decoder) Feed(l Line, e Edge, at time.Time) (r Result, ok bool) {
	if e != Falling {
		return Result{}, false
	}
	if len(d.bits) > 0 && at.Sub(d.last) >= d.gap {
		r, ok = d.complete()
	}
	if len(d.bits) < maxBits+1 {
		d.bits = append(d.bits, byte(l&1))
	}
	d.last = at
	return r, ok
}

// Flush completes the pending frame if the gap has passed at now.
func (d *Decoder) Flush(now time.Time) (Result, bool) {
	if len(d.bits) == 0 || now.Sub(d.last) < d.gap {
		return Result{}, false
	}
	return d.complete()
}

// Pending is the number of bits of the frame in progress.
func (d *Decoder) Pending() int { return len(d.bits) }

func (d *Decoder) complete() (Result, bool) {
	c, err := Decode(d.bits)
	d.bits = d.bits[:0]
	return Result{Card: c, Err: err, At: d.last}, true
}
