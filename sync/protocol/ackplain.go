package protocol

import "math"

// decodeAckPlain decodes the acks head office writes (EncodeAck: its
// field order, no notice, strings of printable ASCII without '"' or '\',
// numbers as plain digits) without encoding/json, which costs a register
// more per ack than the rest of taking it. ok is false for anything else,
// and DecodeAck then decodes with encoding/json; whatever decodeAckPlain
// accepts, json.Unmarshal decodes to the same Ack (TestDecodeAckPlain,
// FuzzDecodeAckPlain).
func decodeAckPlain(b []byte) (a Ack, ok bool) {
	p := plainParser{b: b}
	if !p.lit(`{"v":`) {
		return Ack{}, false
	}
	v, ok := p.uint(9)
	a.V = int(v)
	ok = ok && p.lit(`,"register":`)
	a.Register, ok = p.str(ok)
	if ok && p.lit(`,"incarnation":`) {
		a.Incarnation, ok = p.str(ok)
	}
	ok = ok && p.lit(`,"watermark":`)
	if ok {
		a.Watermark, ok = p.uint(20)
	}
	if ok && p.lit(`,"gap":`) {
		a.Gap, ok = p.uint(20)
	}
	if ok && p.lit(`,"gap_to":`) {
		a.GapTo, ok = p.uint(20)
	}
	if !ok || !p.lit("}") || len(p.b) != 0 {
		return Ack{}, false
	}
	return a, true
}

// plainParser reads the plain forms decodeAckPlain accepts.
type plainParser struct{ b []byte }

// lit consumes s when the input starts with it.
func (p *plainParser) lit(s string) bool {
	if len(p.b) < len(s) || string(p.b[:len(s)]) != s {
		return false
	}
	p.b = p.b[len(s):]
	return true
}

// uint reads a number of 1 to max digits without a leading zero that
// fits a uint64.
func (p *plainParser) uint(max int) (uint64, bool) {
	var v uint64
	i := 0
	for ; i < len(p.b) && i < max && p.b[i] >= '0' && p.b[i] <= '9'; i++ {
		d := uint64(p.b[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if i == 0 || i > 1 && p.b[0] == '0' || i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' {
		return 0, false
	}
	p.b = p.b[i:]
	return v, true
}

// str reads a string of printable ASCII without '"' or '\' (when ok).
func (p *plainParser) str(ok bool) (string, bool) {
	if !ok || len(p.b) == 0 || p.b[0] != '"' {
		return "", false
	}
	for i := 1; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			s := string(p.b[1:i])
			p.b = p.b[i+1:]
			return s, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	return "", false
}
