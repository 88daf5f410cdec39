package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loyalty-terminal/loyalty/ledger/timetext"
)

// Event rows in binary (schema 7). A point event's row was its JSON, about
// 300 bytes, three or more per sale: most of the rows bucket, which it
// took a level deeper and split every other sale. The row now holds the
// event in a compact binary form, about 60 bytes; the member and the
// sequence number are the row's key, and the id is the register's
// "<register>-<seq>" unless the row says otherwise:
//
//	0x02 | flags | kind | points | register | [id] | sale id | line |
//	reverses | reason | operator | [expires at] | rule version |
//	wall time | boot id | since boot | clock fault
//
// Strings are a uvarint length and the bytes, integers varints, a time
// its Unix seconds (varint), nanoseconds (uvarint) and zone offset in
// seconds (varint). flags: 1 the clock was trusted, 2 the id is stored,
// 4 the event has an expiry date. Rows written before schema 7 are JSON
// (they start with '{') and read alike. Head office still gets the JSON:
// an outbox record that names an event row is given the row's event as
// encodePointEvent writes it, byte for byte what the row used to hold.
const eventRowMark byte = 0x02

const (
	evTrusted  byte = 1
	evIDStored byte = 2
	evExpires  byte = 4
)

// eventRowTimesOK reports whether ev's times can be sent as JSON (years
// 0..9999, zone offsets under a day): a row head office could not be sent
// is refused when written, as the JSON row was.
func eventRowTimesOK(ev *PointEvent) bool {
	return jsonTimeOK(ev.WallTime) && (ev.ExpiresAt.IsZero() || jsonTimeOK(ev.ExpiresAt))
}

// jsonText is s as encoding/json sends it: each byte that is not valid
// UTF-8 becomes U+FFFD, so the row holds what the JSON row read back as.
func jsonText(s string) string {
	// Most strings are short and ASCII: a plain loop decides them, where
	// utf8.ValidString's setup cost more than the check.
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			if utf8.ValidString(s[i:]) {
				return s
			}
			return replaceInvalid(s)
		}
	}
	return s
}

// replaceInvalid is jsonText for a string that is not valid UTF-8.
func replaceInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// encodeEventRow encodes ev, whose MemberID and Seq are the row's key.
func encodeEventRow(ev *PointEvent, a *arena) []byte {
	b := a.make(64 + len(ev.Register) + len(ev.SaleID) + len(ev.Reason) + len(ev.BootID))
	var flags byte
	if ev.ClockTrusted {
		flags |= evTrusted
	}
	idStored := !isEventID(ev.ID, ev.Register, ev.Seq)
	if idStored {
		flags |= evIDStored
	}
	if !ev.ExpiresAt.IsZero() {
		flags |= evExpires
	}
	b = append(b, eventRowMark, flags)
	b = appendStr(b, string(ev.Kind))
	b = binary.AppendVarint(b, int64(ev.Points))
	b = appendStr(b, ev.Register)
	if idStored {
		b = appendStr(b, ev.ID)
	}
	b = appendStr(b, ev.SaleID)
	b = binary.AppendVarint(b, int64(ev.Line))
	b = appendStr(b, ev.Reverses)
	b = appendStr(b, ev.Reason)
	b = appendStr(b, ev.Operator)
	if !ev.ExpiresAt.IsZero() {
		b = appendTime(b, ev.ExpiresAt)
	}
	b = binary.AppendVarint(b, int64(ev.RuleVersion))
	b = appendTime(b, ev.WallTime)
	b = appendStr(b, ev.BootID)
	b = binary.AppendVarint(b, ev.SinceBoot)
	return appendStr(b, ev.ClockFault)
}

// isEventID reports whether id is register-seq, the id eventID gives,
// without building that string.
func isEventID(id, register string, seq uint64) bool {
	var n [20]byte
	digits := strconv.AppendUint(n[:0], seq, 10)
	return len(id) == len(register)+1+len(digits) && id[:len(register)] == register &&
		id[len(register)] == '-' && id[len(register)+1:] == string(digits)
}

// decodeEventRow decodes the event row k, v in either form.
func decodeEventRow(k, v []byte, ev *PointEvent) error {
	if len(v) == 0 || v[0] != eventRowMark {
		return json.Unmarshal(v, ev)
	}
	if len(k) < 10 {
		return fmt.Errorf("event row key %q too short", k)
	}
	if len(v) < 2 {
		return fmt.Errorf("event row %q: %w", k, errShortRow)
	}
	d := rowDecoder{b: v[2:]}
	flags := v[1]
	*ev = PointEvent{MemberID: rowMember(k), Seq: keySeq(k), ClockTrusted: flags&evTrusted != 0}
	ev.Kind = EventKind(d.str())
	ev.Points = Points(d.varint())
	ev.Register = d.str()
	if flags&evIDStored != 0 {
		ev.ID = d.str()
	} else {
		ev.ID = ev.Register + "-" + strconv.FormatUint(ev.Seq, 10)
	}
	ev.SaleID = d.str()
	ev.Line = int(d.varint())
	ev.Reverses = d.str()
	ev.Reason = d.str()
	ev.Operator = d.str()
	if flags&evExpires != 0 {
		ev.ExpiresAt = d.time()
	}
	ev.RuleVersion = int(d.varint())
	ev.WallTime = d.time()
	ev.BootID = d.str()
	ev.SinceBoot = d.varint()
	ev.ClockFault = d.str()
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("event row %q: %w", k, errors.Join(d.err, errTrailing(len(d.b))))
	}
	return nil
}

// eventRowPoints reads only the points of an event row (balances).
func eventRowPoints(v []byte) (Points, error) {
	if len(v) == 0 || v[0] != eventRowMark {
		var ev struct {
			Points Points `json:"points"`
		}
		err := json.Unmarshal(v, &ev)
		return ev.Points, err
	}
	if len(v) < 2 {
		return 0, errShortRow
	}
	d := rowDecoder{b: v[2:]}
	d.str()
	p := Points(d.varint())
	return p, d.err
}

// eventRowJSON is the event row's event as JSON (the outbox's payload).
func eventRowJSON(k, v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != eventRowMark {
		return append([]byte(nil), v...), nil
	}
	var ev PointEvent
	if err := decodeEventRow(k, v, &ev); err != nil {
		return nil, err
	}
	return encodePointEvent(&ev)
}

func errTrailing(n int) error {
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d bytes left over", n)
}

func appendStr(b []byte, s string) []byte {
	s = jsonText(s)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	_, off := t.Zone()
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	return binary.AppendVarint(b, int64(off))
}

// rowDecoder reads a binary row; the first error sticks.
type rowDecoder struct {
	b   []byte
	err error
}

var errShortRow = errors.New("row ends early")

func (d *rowDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) > 0 && d.b[0] < 0x80 {
		// One byte (string lengths, small numbers: most of a row's
		// fields), without binary.Uvarint's loop.
		v := uint64(d.b[0])
		d.b = d.b[1:]
		return v
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortRow
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *rowDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) > 0 && d.b[0] < 0x80 {
		// One byte, zigzag-decoded as binary.Varint does.
		ux := uint64(d.b[0])
		d.b = d.b[1:]
		v := int64(ux >> 1)
		if ux&1 != 0 {
			v = ^v
		}
		return v
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortRow
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *rowDecoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errShortRow
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// time reads a time as encoding/json would have decoded its RFC 3339
// text: UTC for a zero offset, the local zone when the offset is the
// local one at that instant, else a fixed zone.
func (d *rowDecoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	off := d.varint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.err = fmt.Errorf("nanoseconds %d out of range", nsec)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	if _, lo := t.Zone(); int64(lo) == off {
		return t
	}
	return t.In(time.FixedZone("", int(off)))
}

// appendEventRowJSON appends the event row k, v as JSON: the bytes
// eventRowJSON returns, without the PointEvent in between (no strings
// built, nothing allocated for a row of printable ASCII). The uplink
// sends a batch of them at a time (OutboxInto). Anything unusual (a
// string that needs escaping, a time JSON refuses) takes eventRowJSON's
// path for that row; TestAppendEventRowJSON and FuzzAppendEventRowJSON
// hold the two to the same bytes. tt, when given, writes the row's times
// (the text of the last second written kept from row to row).
func appendEventRowJSON(b, k, v []byte, tt *rowTimes) ([]byte, error) {
	if len(v) == 0 || v[0] != eventRowMark {
		return append(b, v...), nil
	}
	if len(k) < 10 {
		return b, fmt.Errorf("event row key %q too short", k)
	}
	if len(v) < 2 {
		return b, fmt.Errorf("event row %q: %w", k, errShortRow)
	}
	d := rowDecoder{b: v[2:]}
	flags := v[1]
	kind := d.bytes()
	points := d.varint()
	register := d.bytes()
	var id []byte
	if flags&evIDStored != 0 {
		id = d.bytes()
	}
	saleID := d.bytes()
	line := int64(int(d.varint()))
	reverses := d.bytes()
	reason := d.bytes()
	operator := d.bytes()
	var expires rowTime
	if flags&evExpires != 0 {
		expires = d.rowTime()
	}
	ruleVersion := int64(int(d.varint()))
	wall := d.rowTime()
	bootID := d.bytes()
	sinceBoot := d.varint()
	clockFault := d.bytes()
	if d.err != nil || len(d.b) != 0 {
		return b, fmt.Errorf("event row %q: %w", k, errors.Join(d.err, errTrailing(len(d.b))))
	}
	var digits [20]byte // the sequence number's, written twice
	seqText := strconv.AppendUint(digits[:0], keySeq(k), 10)
	start := len(b)
	ok := true
	b = append(b, `{"id":`...)
	if id != nil {
		b, ok = appendJSONPlain(b, id, ok)
	} else {
		b, ok = appendJSONPlain(b, register, ok)
		b = b[:len(b)-1]
		b = append(b, '-')
		b = append(b, seqText...)
		b = append(b, '"')
	}
	b = append(b, `,"register":`...)
	b, ok = appendJSONPlain(b, register, ok)
	b = append(b, `,"seq":`...)
	b = append(b, seqText...)
	b = append(b, `,"kind":`...)
	b, ok = appendJSONPlain(b, kind, ok)
	b = append(b, `,"member_id":`...)
	b, ok = appendJSONPlain(b, k[:len(k)-10], ok)
	b = append(b, `,"points":`...)
	b = strconv.AppendInt(b, points, 10)
	if len(saleID) != 0 {
		b = append(b, `,"sale_id":`...)
		b, ok = appendJSONPlain(b, saleID, ok)
	}
	if line != 0 {
		b = append(b, `,"line":`...)
		b = strconv.AppendInt(b, line, 10)
	}
	if len(reverses) != 0 {
		b = append(b, `,"reverses":`...)
		b, ok = appendJSONPlain(b, reverses, ok)
	}
	if len(reason) != 0 {
		b = append(b, `,"reason":`...)
		b, ok = appendJSONPlain(b, reason, ok)
	}
	if len(operator) != 0 {
		b = append(b, `,"operator":`...)
		b, ok = appendJSONPlain(b, operator, ok)
	}
	if flags&evExpires != 0 {
		b = append(b, `,"expires_at":`...)
		b, ok = appendRowTimeJSON(b, tt.expiresText(), expires, ok)
	}
	if ruleVersion != 0 {
		b = append(b, `,"rule_version":`...)
		b = strconv.AppendInt(b, ruleVersion, 10)
	}
	b = append(b, `,"wall_time":`...)
	b, ok = appendRowTimeJSON(b, tt.wallText(), wall, ok)
	b = append(b, `,"clock_trusted":`...)
	b = strconv.AppendBool(b, flags&evTrusted != 0)
	if len(bootID) != 0 {
		b = append(b, `,"boot_id":`...)
		b, ok = appendJSONPlain(b, bootID, ok)
	}
	if sinceBoot != 0 {
		b = append(b, `,"since_boot_ns":`...)
		b = strconv.AppendInt(b, sinceBoot, 10)
	}
	if len(clockFault) != 0 {
		b = append(b, `,"clock_fault":`...)
		b, ok = appendJSONPlain(b, clockFault, ok)
	}
	if !ok {
		j, err := eventRowJSON(k, v)
		if err != nil {
			return b[:start], err
		}
		return append(b[:start], j...), nil
	}
	return append(b, '}'), nil
}

// appendJSONPlain appends s between quotes when it needs no escaping
// (safeJSON); otherwise it appends nothing and ok turns false.
func appendJSONPlain(b, s []byte, ok bool) ([]byte, bool) {
	for _, c := range s {
		if !plainByte[c] {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), ok
}

// plainByte[c]: c goes between JSON quotes unchanged, printable ASCII
// but the characters encoding/json escapes (one load per byte instead of
// seven comparisons: the uplink checks every string of every event row it
// sends, safeJSON every string a sale encodes).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// rowTime is a time as a row holds it, not yet a time.Time.
type rowTime struct {
	sec, off int64
	nsec     uint64
}

// bytes reads a string without copying it.
func (d *rowDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShortRow
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

// rowTime reads a time as time does, without making it.
func (d *rowDecoder) rowTime() rowTime {
	t := rowTime{sec: d.varint(), nsec: d.uvarint(), off: d.varint()}
	if d.err == nil && t.nsec >= 1e9 {
		d.err = fmt.Errorf("nanoseconds %d out of range", t.nsec)
	}
	return t
}

// appendJSON appends the time as appendJSONTime writes the time.Time time
// would read; ok turns false where appendJSONTime refuses it.
func (t rowTime) appendJSON(b []byte, ok bool) ([]byte, bool) {
	tt := time.Unix(t.sec, int64(t.nsec))
	if t.off == 0 {
		tt = tt.UTC()
	} else if _, lo := tt.Zone(); int64(lo) != t.off {
		tt = tt.In(time.FixedZone("", int(t.off)))
	}
	b, tok := appendJSONTime(b, tt)
	return b, ok && tok
}

// rowTimes keeps the text of the last second of a row's times from row
// to row, each kind on its own (an earn's expiry is another second than
// its wall time): a batch read from the outbox holds many events of the
// same second, whose times then cost a copy and their nanoseconds
// instead of time.Time.AppendFormat (two or three times per event).
type rowTimes struct{ wall, expires timetext.Text }

func (t *rowTimes) wallText() *timetext.Text {
	if t == nil {
		return nil
	}
	return &t.wall
}

func (t *rowTimes) expiresText() *timetext.Text {
	if t == nil {
		return nil
	}
	return &t.expires
}

// appendRowTimeJSON is t.appendJSON written through c, the text of the
// last second written (nil: each time anew).
func appendRowTimeJSON(b []byte, c *timetext.Text, t rowTime, ok bool) ([]byte, bool) {
	if c == nil || !c.Kept(t.sec, int(t.off)) {
		start := len(b)
		b, ok = t.appendJSON(b, ok)
		if c != nil && len(b) > start {
			c.Keep(t.sec, int(t.off), b[start+1:len(b)-1])
		}
		return b, ok
	}
	b = append(b, '"')
	b = c.AppendKept(b, int(t.nsec))
	return append(b, '"'), ok
}
