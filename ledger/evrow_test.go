package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/timetext"
)

// eventRowRoundTrip: an event row decodes to what the JSON row decoded to,
// and gives head office the JSON the row used to hold, byte for byte.
func eventRowRoundTrip(t *testing.T, ev PointEvent) {
	t.Helper()
	want, err := json.Marshal(ev)
	if err != nil {
		if eventRowTimesOK(&ev) {
			t.Fatalf("json refuses %+v (%v), the row check does not", ev, err)
		}
		return
	}
	if !eventRowTimesOK(&ev) {
		t.Fatalf("the row check refuses %+v, json does not", ev)
	}
	k := rowKey(rowEvent, ev.MemberID, ev.Seq)
	v := encodeEventRow(&ev, nil)
	var got, old PointEvent
	if err := decodeEventRow(k, v, &got); err != nil {
		t.Fatalf("decode %+v: %v", ev, err)
	}
	if err := decodeEventRow(k, want, &old); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, old) {
		t.Fatalf("binary row decodes to\n%+v\nthe JSON row to\n%+v", got, old)
	}
	js, err := eventRowJSON(k, v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, want) {
		// Only a string that is not UTF-8 may differ, and only in how
		// U+FFFD is written (encoding/json escapes the one it puts in).
		var a, b PointEvent
		if bytes.Contains(want, []byte(`\ufffd`)) && json.Unmarshal(js, &a) == nil && json.Unmarshal(want, &b) == nil && reflect.DeepEqual(a, b) {
			return
		}
		t.Fatalf("outbox JSON %s\nwant %s", js, want)
	}
	sameAppended(t, k, v)
	sameAppended(t, k, want)
	if p, err := eventRowPoints(v); err != nil || p != ev.Points {
		t.Fatalf("points %d %v, want %d", p, err, ev.Points)
	}
	if len(v) >= len(want) && len(want) > 100 {
		t.Errorf("binary row %d bytes, JSON %d", len(v), len(want))
	}
}

func TestEventRowRoundTrip(t *testing.T) {
	local := time.Date(2026, 7, 1, 10, 0, 0, 5, time.Local)
	evs := append(pointEventsToEncode(),
		PointEvent{ID: "other-7", Register: "r1", Seq: 7, Kind: KindAdjust, MemberID: "m1", Points: 1 << 40, WallTime: local, ExpiresAt: local.AddDate(1, 0, 0)},
		PointEvent{ID: "r1-8", Register: "r1", Seq: 8, Kind: KindExpire, MemberID: "m1", Points: -3, WallTime: time.Date(2026, 7, 1, 10, 0, 0, 0, time.FixedZone("X", -9000))},
	)
	// Ids close to the one the row leaves out (register-seq) are stored.
	for _, id := range []string{"r1-80", "r1-08", "r10-8", "r1_8", "r1-", "1-8", "r1-8 "} {
		evs = append(evs, PointEvent{ID: id, Register: "r1", Seq: 8, Kind: KindAdjust, MemberID: "m1", Points: 2, WallTime: local})
	}
	for _, ev := range evs {
		eventRowRoundTrip(t, ev)
	}
}

// TestJSONText: a string reads as encoding/json sends it: valid UTF-8 as
// it is, each byte of an invalid sequence as U+FFFD.
func TestJSONText(t *testing.T) {
	for _, s := range []string{"", "a", "4006381333931", "caf\u00e9", "\u00e9t\u00e9", "\xff", "a\xffb", "abc\xe2\x82", "\xe2\x82abc", "\u2028\xc0\xafz"} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back string
		if err := json.Unmarshal(want, &back); err != nil {
			t.Fatal(err)
		}
		if got := jsonText(s); got != back {
			t.Errorf("jsonText(%q) = %q, want %q", s, got, back)
		}
	}
}

func FuzzEventRow(f *testing.F) {
	f.Add("r1-1", "m1", "s1", "reason", "boot", int64(5), int64(1_700_000_000_000_000_000), 3600, true)
	f.Add("r<1>", "m\u2028", "s\xff", "\x00", "", int64(-5), int64(-62_000_000_000_000_000), -7200, false)
	f.Fuzz(func(t *testing.T, id, member, sale, reason, boot string, pts, nanos int64, off int, trusted bool) {
		// RFC 3339 writes whole minutes of a zone's offset, so JSON rows
		// moved a time in a zone with seconds in its offset; real zones
		// have none since 1972.
		off %= 30 * 3600
		zone := time.FixedZone("z", off-off%60)
		member = jsonText(member) // a member id is valid UTF-8 (validID): it is the row's key
		ev := PointEvent{ID: id, Register: "r1", Seq: uint64(pts), Kind: KindBonus, MemberID: member, Points: Points(pts), SaleID: sale, Line: int(pts % 7), Reason: reason,
			ExpiresAt: time.Unix(0, nanos).In(zone).AddDate(1, 0, 0), WallTime: time.Unix(0, nanos).In(zone), ClockTrusted: trusted, TimeRef: TimeRef{BootID: boot, SinceBoot: pts}}
		eventRowRoundTrip(t, ev)
		// Any bytes after the mark decode or fail; they never panic.
		var got PointEvent
		_ = decodeEventRow(rowKey(rowEvent, "m", 1), append([]byte{eventRowMark, byte(pts)}, reason...), &got)
		sameAppended(t, rowKey(rowEvent, "m", 1), append([]byte{eventRowMark, byte(pts)}, reason...))
		sameAppended(t, rowKey(rowEvent, member, uint64(pts)), append(encodeEventRow(&ev, nil)[:2], boot...))
	})
}

// sameAppended: appendEventRowJSON appends what eventRowJSON returns for
// the row k, v, byte for byte, or fails alike, leaving what it appends to
// as it was.
func sameAppended(t *testing.T, k, v []byte) {
	t.Helper()
	want, werr := eventRowJSON(k, v)
	prefix := []byte(`[{"x":1},`)
	if werr != nil {
		want = nil
	}
	// Without the text of a second kept, then with it (the second
	// append finds it), and after a time of another second.
	var tt rowTimes
	other := rowTime{sec: 1_700_000_000, nsec: 5, off: 3600}
	for i, c := range []*rowTimes{nil, &tt, &tt, &tt} {
		if i == 3 {
			_, _ = appendRowTimeJSON(nil, &tt.wall, other, true)
			_, _ = appendRowTimeJSON(nil, &tt.expires, other, true)
		}
		got, err := appendEventRowJSON(append([]byte(nil), prefix...), k, v, c)
		if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Fatalf("row %q %x (%d): appended error %v, eventRowJSON %v", k, v, i, err, werr)
		}
		if !bytes.Equal(got, append(prefix, want...)) {
			t.Fatalf("row %q %x (%d): appended\n%s\neventRowJSON\n%s", k, v, i, got[len(prefix):], want)
		}
	}
}

// TestTimeTextMatchesAppendJSONTime: times written through a kept second
// are appendJSONTime's bytes: whole seconds, trailing zeros, offsets, the
// same second again, years at and beyond the ends JSON takes.
func TestTimeTextMatchesAppendJSONTime(t *testing.T) {
	var tt timetext.Text
	cases := []rowTime{
		{sec: 1_764_697_928, nsec: 123_456_789}, {sec: 1_764_697_928, nsec: 120_000_000}, {sec: 1_764_697_928},
		{sec: 1_764_697_928, nsec: 1}, {sec: 1_764_697_929, nsec: 999_999_999}, {sec: 1_764_697_929, nsec: 5, off: 3600},
		{sec: 1_764_697_929, nsec: 5, off: -9000}, {sec: 1_764_697_929, nsec: 5, off: 3600 + 30}, {sec: -62_135_596_800, nsec: 7},
		{sec: -62_135_596_801, nsec: 7}, {sec: 253_402_300_799, nsec: 70}, {sec: 253_402_300_800}, {sec: 0, off: 86400},
		{sec: 0, off: 86399, nsec: 10}, {sec: 1_764_697_928, nsec: 123_456_789},
	}
	for _, c := range cases {
		want, wok := c.appendJSON([]byte("x"), true)
		got, ok := appendRowTimeJSON([]byte("x"), &tt, c, true)
		if ok != wok || ok && !bytes.Equal(got, want) {
			t.Errorf("%+v: kept second wrote %s %v, appendJSON %s %v", c, got, ok, want, wok)
		}
	}
}

// TestAppendEventRowJSON: the rows of every kind of point event and a
// few a ledger never writes (strings that need escaping, times JSON
// refuses, rows cut short or too long) append as eventRowJSON reads them.
func TestAppendEventRowJSON(t *testing.T) {
	local := time.Date(2026, 7, 1, 10, 0, 0, 5, time.Local)
	evs := append(pointEventsToEncode(),
		PointEvent{ID: "r1-9", Register: "r1", Seq: 9, Kind: KindAdjust, MemberID: "m<1>", Points: -1 << 40, Reason: "a \"b\" & <c>", Operator: "\u2028", WallTime: local},
		PointEvent{ID: "x\xff", Register: "r\x01", Seq: 10, Kind: KindEarn, MemberID: "m1", SaleID: "s\t", Line: -3, Reverses: "r1-2", WallTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		PointEvent{ID: "r1-11", Register: "r1", Seq: 11, Kind: KindExpire, MemberID: "m1", WallTime: local, ExpiresAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 25*3600))},
		PointEvent{ID: "r1-12", Register: "r1", Seq: 1<<64 - 1, Kind: KindBonus, MemberID: "m1", RuleVersion: 7, WallTime: time.Date(2026, 7, 1, 10, 0, 0, 0, time.FixedZone("Y", 3*3600+30*60)), ClockTrusted: true, TimeRef: TimeRef{BootID: "b", SinceBoot: -9, ClockFault: "ahead"}},
	)
	for _, ev := range evs {
		k := rowKey(rowEvent, ev.MemberID, ev.Seq)
		v := encodeEventRow(&ev, nil)
		sameAppended(t, k, v)
		for n := range v {
			sameAppended(t, k, v[:n]) // cut short
		}
		sameAppended(t, k, append(v, 0)) // a byte left over
		sameAppended(t, k[:9], v)        // key too short
		if js, err := json.Marshal(ev); err == nil {
			sameAppended(t, k, js) // a JSON row (before schema 7)
		}
	}
}

// TestRowDecoderVarints holds rowDecoder's one-byte paths to
// encoding/binary: every value around the one-byte edges and a few large
// ones, then the bytes cut short.
func TestRowDecoderVarints(t *testing.T) {
	var us []uint64
	var is []int64
	for v := range uint64(300) {
		us, is = append(us, v), append(is, int64(v), -int64(v))
	}
	us = append(us, 1<<14-1, 1<<14, 1<<63, 1<<64-1)
	is = append(is, 1<<62, -1<<63, 1<<63-1)
	for _, v := range us {
		b := binary.AppendUvarint(nil, v)
		d := rowDecoder{b: append(b, 0xaa)}
		if got := d.uvarint(); got != v || d.err != nil || len(d.b) != 1 {
			t.Errorf("uvarint %x: %d %v, %d bytes left; want %d", b, got, d.err, len(d.b), v)
		}
		for n := range b {
			d := rowDecoder{b: b[:n]}
			if _, err := d.uvarint(), d.err; err == nil {
				t.Errorf("uvarint %x: no error", b[:n])
			}
		}
	}
	for _, v := range is {
		b := binary.AppendVarint(nil, v)
		d := rowDecoder{b: append(b, 0xaa)}
		if got := d.varint(); got != v || d.err != nil || len(d.b) != 1 {
			t.Errorf("varint %x: %d %v, %d bytes left; want %d", b, got, d.err, len(d.b), v)
		}
		for n := range b {
			d := rowDecoder{b: b[:n]}
			if _, err := d.varint(), d.err; err == nil {
				t.Errorf("varint %x: no error", b[:n])
			}
		}
	}
}
