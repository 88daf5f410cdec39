package hqreport

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// appendProfile appends p as json.Marshal writes it, without reflection:
// the JSON export writes one line per member, and on a million purchases
// encoding/json took most of the report's writing time. ok is false when
// p holds something only encoding/json can say (a float that is not
// finite, a time it refuses); the caller then asks json.Marshal, which
// returns its error. TestProfileJSONMatchesEncodingJSON holds the two
// together, field by field.
//
// fc, when not nil, remembers the text of the rhythms' intervals.
func appendProfile(b []byte, p *retention.Profile, fc *floatCache) ([]byte, bool) {
	b = append(b, `{"member_id":`...)
	b = appendString(b, p.MemberID)
	if p.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
	}
	b = append(b, `,"consent":`...)
	b = strconv.AppendBool(b, p.Consent)
	if len(p.Channels) > 0 {
		b = append(b, `,"channels":[`...)
		for i := range p.Channels {
			c := &p.Channels[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"channel":`...)
			b = appendString(b, c.Channel)
			if c.Address != "" {
				b = append(b, `,"address":`...)
				b = appendString(b, c.Address)
			}
			if !c.Since.IsZero() {
				t, err := c.Since.MarshalJSON()
				if err != nil {
					return b, false
				}
				b = append(append(b, `,"since":`...), t...)
			}
			if c.How != "" {
				b = append(b, `,"how":`...)
				b = appendString(b, c.How)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if p.Birthday != "" {
		b = append(b, `,"birthday":`...)
		b = appendString(b, p.Birthday)
	}
	ok := true
	b = append(b, `,"rhythm":`...)
	b, ok = appendRhythm(b, &p.Rhythm, fc)
	if !ok {
		return b, false
	}
	if len(p.Categories) > 0 {
		b = append(b, `,"categories":{`...)
		for i := range p.Categories {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p.Categories[i].Category)
			b = append(b, ':')
			if b, ok = appendRhythm(b, &p.Categories[i].Rhythm, fc); !ok {
				return b, false
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"spend":`...)
	b = appendInt(b, int64(p.Spend))
	b = append(b, `,"first_spend":`...)
	b = appendInt(b, int64(p.FirstSpend))
	b = append(b, `,"segment":`...)
	b = appendString(b, string(p.Segment))
	b = append(b, `,"status":`...)
	b = appendString(b, string(p.Status))
	b = append(b, `,"days_since_last":`...)
	b = appendInt(b, int64(p.DaysSince))
	b = append(b, `,"p_alive":`...)
	if b, ok = appendFloat(b, p.PAlive); !ok {
		return b, false
	}
	b = append(b, `,"p_no_purchase":`...)
	if b, ok = appendFloat(b, p.PNone); !ok {
		return b, false
	}
	b = append(b, `,"expected_purchases":`...)
	if b, ok = appendFloat(b, p.Expected); !ok {
		return b, false
	}
	b = append(b, `,"value":`...)
	b = appendString(b, p.Value)
	return append(b, '}'), true
}

// appendRhythm appends r as json.Marshal writes it. A rhythm of one
// purchase day (42% of the benchmark population's 641,000 rhythms, most
// of them a category bought once) is written from fc when fc has that
// day's: its text depends on nothing else.
func appendRhythm(b []byte, r *retention.Rhythm, fc *floatCache) ([]byte, bool) {
	if fc == nil || !oneDayRhythm(r) {
		return appendRhythmText(b, r, fc)
	}
	s := &fc.oneDays[uint(r.First)%uint(len(fc.oneDays))]
	if s.n > 0 && s.day == r.First {
		return append(b, s.text[:s.n]...), true
	}
	start := len(b)
	b, ok := appendRhythmText(b, r, fc)
	if t := b[start:]; ok && len(t) <= len(s.text) {
		s.day, s.n = r.First, uint8(copy(s.text[:], t))
	}
	return b, ok
}

// oneDayRhythm reports whether r is the rhythm of one purchase day as
// retention makes it: its text is then a function of its day alone.
func oneDayRhythm(r *retention.Rhythm) bool {
	return r.PurchaseDays == 1 && r.Last == r.First && !r.HasInterval &&
		math.Float64bits(r.MeanInterval) == 0 && math.Float64bits(r.MedianInterval) == 0
}

// appendRhythmText is appendRhythm without the cache of one-day rhythms.
func appendRhythmText(b []byte, r *retention.Rhythm, fc *floatCache) ([]byte, bool) {
	b = append(b, `{"purchase_days":`...)
	b = appendInt(b, int64(r.PurchaseDays))
	b = append(b, `,"first":"`...)
	if r.PurchaseDays > 0 {
		b = fc.appendDay(b, r.First)
	}
	b = append(b, `","last":"`...)
	if r.PurchaseDays > 0 {
		b = fc.appendDay(b, r.Last)
	}
	b = append(b, '"')
	b = append(b, `,"has_interval":`...)
	b = strconv.AppendBool(b, r.HasInterval)
	if !finite(r.MeanInterval) || !finite(r.MedianInterval) {
		return b, false
	}
	b = append(b, `,"mean_interval_days":`...)
	b = fc.appendFloat(b, r.MeanInterval, appendFiniteFloat)
	b = append(b, `,"median_interval_days":`...)
	b = fc.appendFloat(b, r.MedianInterval, appendFiniteFloat)
	if r.HasInterval {
		// A date is digits and dashes (a year beyond 9999 or before 0
		// too): nothing to escape.
		b = append(b, `,"expected_next":"`...)
		b = append(fc.appendDay(b, r.ExpectedNext), '"')
	}
	return append(b, '}'), true
}

// appendFloat writes f as encoding/json does: the shortest form that
// reads back, in exponent form below 1e-6 and from 1e21, with the
// exponent unpadded. Infinities and NaN are not JSON: ok is false.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if !finite(f) {
		return b, false
	}
	return appendFiniteFloat(b, f), true
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// appendFiniteFloat is appendFloat of a finite f.
func appendFiniteFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		// Whole numbers (days, counts): the same digits, faster.
		if f == 0 && math.Signbit(f) {
			return append(b, "-0"...)
		}
		return appendInt(b, int64(f))
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b = strconv.AppendFloat(b, f, 'e', -1, 64)
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	return appendShortestF(b, f)
}

// appendShortestF appends f as strconv.AppendFloat(b, f, 'f', -1, 64)
// does (TestAppendShortestF), for a finite f. The digits are the same
// shortest ones in either form; strconv writes the 'f' form's fraction
// digit by digit (a third of the JSON's float formatting, which was a
// quarter of its CPU), the 'e' form's in one copy, which is rearranged
// here.
func appendShortestF(b []byte, f float64) []byte {
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±dd[d]
	if e[0] == '-' {
		b = append(b, '-')
		e = e[1:]
	}
	// The exponent has two digits, or three from 1e100 and below 1e-99.
	k := len(e) - 4
	exp := int(e[k+2]-'0')*10 + int(e[k+3]-'0')
	if e[k] != 'e' {
		k--
		exp += int(e[k+2]-'0') * 100
	}
	if e[k+1] == '-' {
		exp = -exp
	}
	// The digits d[0] d[1:], with the decimal point after dp of them.
	first, rest := e[:1], e[min(2, k):k]
	dp, nd := exp+1, 1+len(rest)
	if first[0] == '0' {
		return append(b, '0') // zero: "0e+00"
	}
	// Zeros to pad with, in one copy: a report's floats are at least
	// 1e-6 and below 1e21 (appendFiniteFloat), any other in a loop.
	const zeros = "0.0000000000000000000000"
	switch {
	case dp <= 0:
		// 0.000ddd
		if z := 2 - dp; z <= len(zeros) {
			b = append(b, zeros[:z]...)
		} else {
			b = append(b, zeros[:2]...)
			for range -dp {
				b = append(b, '0')
			}
		}
		b = append(b, first...)
		return append(b, rest...)
	case dp >= nd:
		// ddd000, no fraction
		b = append(b, first...)
		b = append(b, rest...)
		z := dp - nd
		for ; z > len(zeros)-2; z-- {
			b = append(b, '0')
		}
		return append(b, zeros[2:2+z]...)
	}
	// dd.ddd
	b = append(b, first...)
	b = append(b, rest[:dp-1]...)
	b = append(b, '.')
	return append(b, rest[dp-1:]...)
}

// appendInt appends v in decimal, as strconv.AppendInt(b, v, 10) does
// (TestAppendInt): the exports write a dozen counts, days and amounts a
// member, nearly all below 100,000, which are written here without
// strconv's general path (half the time).
func appendInt(b []byte, v int64) []byte {
	switch {
	case v < 0:
	case v < 10:
		return append(b, byte('0'+v))
	case v < 100:
		return append(b, byte('0'+v/10), byte('0'+v%10))
	case v < 1000:
		return append(b, byte('0'+v/100), byte('0'+v/10%10), byte('0'+v%10))
	case v < 10000:
		return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	case v < 100000:
		return append(b, byte('0'+v/10000), byte('0'+v/1000%10), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	return strconv.AppendInt(b, v, 10)
}

// jsonPlain marks the bytes appendString copies as they are: printable
// ASCII except '"', '\\', '<', '>' and '&'.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s as a JSON string the way encoding/json does (with
// <, > and & escaped for HTML). Plain printable ASCII, which ids, dates
// and segment names are, is copied; anything else goes through
// encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
