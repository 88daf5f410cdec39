package ledger

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

func pointEventsToEncode() []PointEvent {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	jer := time.FixedZone("IST", 2*3600)
	return []PointEvent{
		{},
		{ID: "r1-1", Register: "r1", Seq: 1, Kind: KindEarn, MemberID: "m1", Points: 12, SaleID: "s1", Line: 2, ExpiresAt: at.AddDate(1, 0, 0), RuleVersion: 3, WallTime: at, ClockTrusted: true, TimeRef: TimeRef{BootID: "b", SinceBoot: 99, ClockFault: "ahead"}},
		{ID: "r1-2", Register: "r1", Seq: 2, Kind: KindRedeem, MemberID: "m<1>&\"x\\", Points: -50, Reason: "coffee\u2028\n\x01é", Operator: "op", WallTime: at.In(jer)},
		{ID: "r1-3", Register: "r1", Seq: 3, Kind: KindReverse, MemberID: "m1", Points: -7, Reverses: "r1-1", Reason: "refund r\xff", WallTime: time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC)},
		{ID: "x", WallTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "x", ExpiresAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
}

// TestEncodePointEventMatchesJSON: the hand-written encoder writes what
// encoding/json writes, escapes, zones and refused times included.
func TestEncodePointEventMatchesJSON(t *testing.T) {
	for i, ev := range pointEventsToEncode() {
		want, wantErr := json.Marshal(ev)
		got, err := encodePointEvent(&ev)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("event %d:\n got %s %v\nwant %s %v", i, got, err, want, wantErr)
		}
	}
}

func FuzzEncodePointEvent(f *testing.F) {
	f.Add("r1-1", "m1", "s1", "reason", "boot", int64(5), int64(1_700_000_000_000_000_000), 3600, true)
	f.Add("r<1>", "m\u2028", "s\xff", "\x00", "", int64(-5), int64(-62_000_000_000_000_000), -7200, false)
	f.Fuzz(func(t *testing.T, id, member, sale, reason, boot string, pts, nanos int64, off int, trusted bool) {
		zone := time.FixedZone("z", off%(30*3600))
		ev := PointEvent{ID: id, Register: "r1", Seq: uint64(pts), Kind: KindBonus, MemberID: member, Points: Points(pts), SaleID: sale, Line: int(pts % 7), Reason: reason,
			ExpiresAt: time.Unix(0, nanos).In(zone).AddDate(1, 0, 0), WallTime: time.Unix(0, nanos).In(zone), ClockTrusted: trusted, TimeRef: TimeRef{BootID: boot, SinceBoot: pts}}
		want, wantErr := json.Marshal(ev)
		got, err := encodePointEvent(&ev)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("got %s %v\nwant %s %v", got, err, want, wantErr)
		}
	})
}

// BenchmarkEncodePointEvent holds the hand-written encoder against
// encoding/json on a sale's earn event.
func BenchmarkEncodePointEvent(b *testing.B) {
	ev := pointEventsToEncode()[1]
	benchcmp.Compare(b, benchcmp.Options{Ratio: "encodepointevent_vs_json", Unit: "event"},
		benchcmp.Case{Name: "hand", Op: func(b *testing.B) {
			if _, err := encodePointEvent(&ev); err != nil {
				b.Fatal(err)
			}
		}},
		benchcmp.Case{Name: "json", Op: func(b *testing.B) {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}})
}
