package ledger

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
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
	v := encodeEventRow(&ev)
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
	for _, ev := range evs {
		eventRowRoundTrip(t, ev)
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
	})
}
