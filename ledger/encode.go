package ledger

import (
	"encoding/json"
	"strconv"
	"time"
)

// Hand-written JSON for the rows every sale writes several of (point
// events). encoding/json walks the struct by reflection for each event,
// which BenchmarkSaleCPU showed as the largest share of the committer's
// CPU per sale. The output is byte for byte what json.Marshal gives
// (TestEncodePointEventMatchesJSON, FuzzEncodePointEvent): a string that
// needs escaping, or a time json.Marshal would refuse, falls back to
// encoding/json for that value or the whole event.

// safeJSON reports whether s can be written between quotes as it is:
// printable ASCII without the characters encoding/json escapes.
func safeJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

func appendJSONString(b []byte, s string) []byte {
	if safeJSON(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// appendJSONTime appends t as json.Marshal does; ok is false for a time
// it refuses (year outside 0..9999, a zone offset of a day or more).
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	if !jsonTimeOK(t) {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// jsonTimeOK reports whether encoding/json can write t (years 0-9999, a
// zone offset under a day), without writing it.
func jsonTimeOK(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	_, off := t.Zone()
	return off > -24*3600 && off < 24*3600
}

// encodePointEvent is json.Marshal(ev) without reflection.
func encodePointEvent(ev *PointEvent) ([]byte, error) {
	b := make([]byte, 0, 384)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, ev.ID)
	b = append(b, `,"register":`...)
	b = appendJSONString(b, ev.Register)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, ev.Seq, 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(ev.Kind))
	b = append(b, `,"member_id":`...)
	b = appendJSONString(b, ev.MemberID)
	b = append(b, `,"points":`...)
	b = strconv.AppendInt(b, int64(ev.Points), 10)
	if ev.SaleID != "" {
		b = append(b, `,"sale_id":`...)
		b = appendJSONString(b, ev.SaleID)
	}
	if ev.Line != 0 {
		b = append(b, `,"line":`...)
		b = strconv.AppendInt(b, int64(ev.Line), 10)
	}
	if ev.Reverses != "" {
		b = append(b, `,"reverses":`...)
		b = appendJSONString(b, ev.Reverses)
	}
	if ev.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, ev.Reason)
	}
	if ev.Operator != "" {
		b = append(b, `,"operator":`...)
		b = appendJSONString(b, ev.Operator)
	}
	ok := true
	if !ev.ExpiresAt.IsZero() {
		b = append(b, `,"expires_at":`...)
		if b, ok = appendJSONTime(b, ev.ExpiresAt); !ok {
			return json.Marshal(ev)
		}
	}
	if ev.RuleVersion != 0 {
		b = append(b, `,"rule_version":`...)
		b = strconv.AppendInt(b, int64(ev.RuleVersion), 10)
	}
	b = append(b, `,"wall_time":`...)
	if b, ok = appendJSONTime(b, ev.WallTime); !ok {
		return json.Marshal(ev)
	}
	b = append(b, `,"clock_trusted":`...)
	b = strconv.AppendBool(b, ev.ClockTrusted)
	if ev.BootID != "" {
		b = append(b, `,"boot_id":`...)
		b = appendJSONString(b, ev.BootID)
	}
	if ev.SinceBoot != 0 {
		b = append(b, `,"since_boot_ns":`...)
		b = strconv.AppendInt(b, ev.SinceBoot, 10)
	}
	if ev.ClockFault != "" {
		b = append(b, `,"clock_fault":`...)
		b = appendJSONString(b, ev.ClockFault)
	}
	return append(b, '}'), nil
}

// encodeSale is json.Marshal(s) without reflection: the sale's payload,
// which every sale encodes once in the committer (its outbox data and
// the sale row hold it).
func encodeSale(s *Sale) ([]byte, error) {
	b := make([]byte, 0, 256+96*len(s.Lines))
	b = append(b, `{"id":`...)
	b = appendJSONString(b, s.ID)
	b = append(b, `,"register":`...)
	b = appendJSONString(b, s.Register)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, s.Seq, 10)
	if s.MemberID != "" {
		b = append(b, `,"member_id":`...)
		b = appendJSONString(b, s.MemberID)
	}
	b = append(b, `,"lines":`...)
	b = appendLinesJSON(b, s.Lines)
	b = append(b, `,"tenders":`...)
	b = appendTendersJSON(b, s.Tenders)
	if len(s.Redemptions) > 0 {
		b = append(b, `,"redemptions":[`...)
		for i, r := range s.Redemptions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"reward_id":`...)
			b = appendJSONString(b, r.RewardID)
			b = append(b, `,"points":`...)
			b = strconv.AppendInt(b, int64(r.Points), 10)
			b = append(b, `,"discount":`...)
			b = strconv.AppendInt(b, int64(r.Discount), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(s.Total), 10)
	b = append(b, `,"wall_time":`...)
	var ok bool
	if b, ok = appendJSONTime(b, s.WallTime); !ok {
		return json.Marshal(s)
	}
	b = append(b, `,"clock_trusted":`...)
	b = strconv.AppendBool(b, s.ClockTrusted)
	b = append(b, `,"rule_version":`...)
	b = strconv.AppendInt(b, int64(s.RuleVersion), 10)
	if s.BootID != "" {
		b = append(b, `,"boot_id":`...)
		b = appendJSONString(b, s.BootID)
	}
	if s.SinceBoot != 0 {
		b = append(b, `,"since_boot_ns":`...)
		b = strconv.AppendInt(b, s.SinceBoot, 10)
	}
	if s.ClockFault != "" {
		b = append(b, `,"clock_fault":`...)
		b = appendJSONString(b, s.ClockFault)
	}
	return append(b, '}'), nil
}

// appendLinesJSON appends json.Marshal(lines) to b (null for nil): the
// sale's JSON (encodeSale) and its fingerprint (appendSaleShape) share it.
func appendLinesJSON(b []byte, lines []Line) []byte {
	if lines == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, ln := range lines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"no":`...)
		b = strconv.AppendInt(b, int64(ln.No), 10)
		b = append(b, `,"sku":`...)
		b = appendJSONString(b, ln.SKU)
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, ln.Quantity, 10)
		b = append(b, `,"unit_price":`...)
		b = strconv.AppendInt(b, int64(ln.UnitPrice), 10)
		if ln.Discount != 0 {
			b = append(b, `,"discount":`...)
			b = strconv.AppendInt(b, int64(ln.Discount), 10)
		}
		if ln.Category != "" {
			b = append(b, `,"category":`...)
			b = appendJSONString(b, ln.Category)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendTendersJSON appends json.Marshal(tenders) to b (null for nil).
func appendTendersJSON(b []byte, tenders []Tender) []byte {
	if tenders == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, t := range tenders {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"kind":`...)
		b = appendJSONString(b, t.Kind)
		b = append(b, `,"amount":`...)
		b = strconv.AppendInt(b, int64(t.Amount), 10)
		b = append(b, '}')
	}
	return append(b, ']')
}
