package hqreport

import (
	"math"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// floatCache remembers the text of floats formatted lately, by their
// bits: a population's purchase intervals take a few thousand distinct
// values over hundreds of thousands of rhythms, and formatting a float
// costs several times a lookup. One cache serves one format and one
// goroutine. It also remembers the text of days (YYYY-MM-DD), which the
// rhythms hold as day numbers: a population spans a few thousand days.
type floatCache struct {
	slots [1 << 12]floatText
	zero  floatText
	days  [1 << 12]dayText
	// oneDays holds the JSON of rhythms of one purchase day, by their
	// day (appendRhythm).
	oneDays [1 << 10]oneDayText
}

type oneDayText struct {
	day  retention.Day
	n    uint8 // 0: empty
	text [128]byte
}

type dayText struct {
	day  retention.Day
	ok   bool
	text [10]byte
}

// appendDay appends d as YYYY-MM-DD (retention.Day.AppendDate), from the
// cache when d was formatted before in the slot it maps to. A nil cache
// formats every time.
func (c *floatCache) appendDay(b []byte, d retention.Day) []byte {
	if c == nil {
		return d.AppendDate(b)
	}
	s := &c.days[uint(d)%uint(len(c.days))]
	if s.ok && s.day == d {
		return append(b, s.text[:]...)
	}
	start := len(b)
	b = d.AppendDate(b)
	if len(b)-start == len(s.text) {
		s.day, s.ok = d, true
		copy(s.text[:], b[start:])
	}
	return b
}

type floatText struct {
	bits uint64
	n    uint8 // 0: empty (no float formats to nothing)
	text [23]byte
}

// appendFloat appends format(f) to b, from the cache when f was formatted
// before in the slot it maps to. A nil cache formats every time.
func (c *floatCache) appendFloat(b []byte, f float64, format func([]byte, float64) []byte) []byte {
	if c == nil {
		return format(b, f)
	}
	bits := math.Float64bits(f)
	s := &c.zero // +0, the intervals of every rhythm with one purchase day
	if bits != 0 {
		s = &c.slots[(bits*0x9e3779b97f4a7c15)>>(64-12)]
	}
	if s.n > 0 && s.bits == bits {
		return append(b, s.text[:s.n]...)
	}
	start := len(b)
	b = format(b, f)
	if t := b[start:]; len(t) <= len(s.text) {
		s.bits, s.n = bits, uint8(copy(s.text[:], t))
	}
	return b
}
