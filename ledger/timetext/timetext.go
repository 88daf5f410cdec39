package timetext

import "time"

// Text is the text of the last second written. The zero Text holds
// none; a Text is not safe for concurrent use.
type Text struct {
	sec  int64
	off  int
	n    int // bytes of text in use; 0: nothing kept
	text [32]byte
}

// Kept reports whether Text holds the second sec (Unix seconds) in the
// zone offset off (seconds east of UTC).
func (c *Text) Kept(sec int64, off int) bool {
	return c.n != 0 && c.sec == sec && c.off == off
}

// AppendKept appends the kept second with nsec nanoseconds (0 to
// 999,999,999) as RFC3339Nano writes it: a point and nine digits without
// their trailing zeros, nothing for none, then the zone. Only after Kept.
func (c *Text) AppendKept(b []byte, nsec int) []byte {
	b = append(b, c.text[:19]...)
	if nsec != 0 {
		var d [10]byte
		d[0] = '.'
		for i := 9; i > 0; i-- {
			d[i] = byte('0' + nsec%10)
			nsec /= 10
		}
		n := len(d)
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return append(b, c.text[19:c.n]...)
}

// Keep keeps the second and the zone of s, the RFC3339Nano text of a
// time of second sec in zone offset off. Text it cannot read as that
// keeps nothing.
func (c *Text) Keep(sec int64, off int, s []byte) {
	c.n = 0
	if len(s) < 20 {
		return
	}
	z := 19
	if s[z] == '.' {
		for z++; z < len(s) && s[z] >= '0' && s[z] <= '9'; z++ {
		}
	}
	if z == len(s) || 19+len(s)-z > len(c.text) {
		return
	}
	copy(c.text[:19], s)
	c.n = 19 + copy(c.text[19:], s[z:])
	c.sec, c.off = sec, off
}

// Append appends t, whose zone offset is off, as t.AppendFormat(b,
// time.RFC3339Nano) does, from the kept text when t is of the kept second
// and zone, and keeps t's otherwise. t must be a time JSON takes (years 0
// to 9999, an offset under a day).
func (c *Text) Append(b []byte, t time.Time, off int) []byte {
	sec := t.Unix()
	if c.Kept(sec, off) {
		return c.AppendKept(b, t.Nanosecond())
	}
	start := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	c.Keep(sec, off, b[start:])
	return b
}
