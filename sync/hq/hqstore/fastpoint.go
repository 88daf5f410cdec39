package hqstore

import (
	"strconv"
	"strings"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/jsonvalid"
)

// decodePointFast reads the fields of pointData from a point event's data
// in one pass, for the shape registers send (exact lowercase keys, ASCII
// strings without escapes, integer points). ok=false means "not this
// shape", never "invalid": the caller then uses json.Unmarshal, which
// gives the answer and the error. When ok, the result is exactly what
// json.Unmarshal gives (FuzzDecodePointFast checks this). Point events are
// the bulk of the stream, and reflection-based decoding of them was the
// largest single cost of applying one; BenchmarkPointDecodeFastVsJSON
// measures it at half of json.Unmarshal's CPU time, with one allocation
// per event instead of eight.
func decodePointFast(data []byte) (p pointData, ok bool) {
	if !jsonvalid.Valid(data) {
		return p, false
	}
	s := string(data) // one copy: the strings below are substrings of it
	i := 0
	ws := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(s) || s[i] != '"' {
			return "", false
		}
		for j := i + 1; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"':
				v := s[i+1 : j]
				i = j + 1
				return v, true
			case c < 0x20 || c > 0x7e || c == '\\':
				return "", false
			}
		}
		return "", false
	}
	// skip passes over one value; the input is known to be valid JSON.
	skip := func() {
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '"':
				for i++; i < len(s) && s[i] != '"'; i++ {
					if s[i] == '\\' {
						i++
					}
				}
				if depth == 0 {
					i++
					return
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					return
				}
				depth--
				if depth == 0 {
					i++
					return
				}
			case ',', ' ', '\t', '\n', '\r':
				if depth == 0 {
					return
				}
			}
		}
	}
	ws()
	if i >= len(s) || s[i] != '{' {
		return p, false
	}
	i++
	ws()
	if i < len(s) && s[i] == '}' {
		return p, true
	}
	for {
		ws()
		key, ok := str()
		if !ok {
			return p, false
		}
		ws()
		if i >= len(s) || s[i] != ':' {
			return p, false
		}
		i++
		ws()
		switch key {
		case "register":
			p.Register, ok = str()
		case "kind":
			var k string
			k, ok = str()
			p.Kind = ledger.EventKind(k)
		case "member_id":
			p.MemberID, ok = str()
		case "sale_id":
			p.SaleID, ok = str()
		case "reverses":
			p.Reverses, ok = str()
		case "reason":
			p.Reason, ok = str()
		case "wall_time":
			p.WallTime, ok = str()
		case "points":
			j := i
			if j < len(s) && s[j] == '-' {
				j++
			}
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
				return p, false
			}
			n, err := strconv.ParseInt(s[i:j], 10, 64)
			if err != nil {
				return p, false
			}
			p.Points, i, ok = ledger.Points(n), j, true
		default:
			// The standard decoder matches keys without regard to case.
			for _, k := range []string{"register", "kind", "member_id", "points", "sale_id", "reverses", "reason", "wall_time"} {
				if strings.EqualFold(key, k) {
					return p, false
				}
			}
			skip()
		}
		if !ok {
			return p, false
		}
		ws()
		if i >= len(s) {
			return p, false
		}
		switch s[i] {
		case ',':
			i++
		case '}':
			return p, true
		default:
			return p, false
		}
	}
}
