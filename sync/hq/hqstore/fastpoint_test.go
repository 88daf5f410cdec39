package hqstore

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

var pointSeeds = []string{
	`{"id":"r1-7","register":"r1","seq":7,"kind":"earn","member_id":"m1","points":25,"wall_time":"2026-11-27T10:00:00Z","clock_trusted":true}`,
	` { "member_id" : "m2", "points" : -40, "kind": "redeem", "extra": {"a": [1, {"b": "}"}], "c": null}, "z": "x\"y" } `,
	`{}`,
	`{"id":"r1-9","register":"r1","seq":9,"kind":"reverse","member_id":"m1","points":40,"sale_id":"s1","reverses":"r1-5","reason":"refund f1"}`,
	`{"points":1.5,"member_id":"m"}`,
	`{"points":1e3,"member_id":"m"}`,
	`{"points":99999999999999999999,"member_id":"m"}`,
	`{"Member_ID":"m1","member_id":"m2"}`,
	`{"member_id":"m1","member_id":"m2"}`,
	`{"member_id":"m\u00e9"}`,
	`{"member_id":null,"points":null}`,
	`{"member_id":5}`,
	`{"points":"5"}`,
	`[1,2]`,
	`null`,
	`{"member_id":"m1",}`,
	`{"a":true,"b":false,"c":-0,"member_id":"é"}`,
}

// TestDecodePointFastMatchesUnmarshal: on every seed the fast path either
// declines or gives exactly json.Unmarshal's result, and it does not
// decline what registers send.
func TestDecodePointFastMatchesUnmarshal(t *testing.T) {
	for i, s := range pointSeeds {
		got, ok := decodePointFast([]byte(s))
		if i <= 3 && !ok {
			t.Fatalf("seed %d %s: the fast path declined the registers' shape", i, s)
		}
		if ok {
			checkPointFast(t, []byte(s), got)
		}
	}
}

func checkPointFast(t *testing.T, b []byte, got pointData) {
	t.Helper()
	var want pointData
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: fast path accepted what json.Unmarshal refuses: %v", b, err)
	}
	if got != want {
		t.Fatalf("%s: fast path %+v, json.Unmarshal %+v", b, got, want)
	}
}

func FuzzDecodePointFast(f *testing.F) {
	for _, s := range pointSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, ok := decodePointFast(b); ok {
			checkPointFast(t, b, got)
		}
	})
}

// TestEncodeRecordRoundTrips: what encodeRecord stores is JSON that
// decodes to the record it was given (time in UTC), as json.Marshal's
// would.
func TestEncodeRecordRoundTrips(t *testing.T) {
	jerusalem := time.FixedZone("IST", 2*3600)
	for _, tc := range []struct {
		name string
		r    ledger.OutboxRecord
	}{
		{"point event", ledger.OutboxRecord{Seq: 7, ID: "r1-7", Type: ledger.OutPoints,
			WallTime: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), ClockTrusted: true,
			Data: json.RawMessage(`{"member_id":"m1","points":25}`)}},
		{"largest sequence, nanoseconds, other zone", ledger.OutboxRecord{Seq: math.MaxUint64, ID: "register.with-long_id-18446744073709551615",
			Type: "org.future.kind", WallTime: time.Date(1999, 12, 31, 23, 59, 59, 999999999, jerusalem),
			Data: json.RawMessage(`{ "nested" : [1, {"a": "}"}] }`)}},
		{"zero time", ledger.OutboxRecord{Seq: 1, ID: "r-1", Type: ledger.OutSale, Data: json.RawMessage(`{}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := encodeRecord(tc.r)
			var got ledger.OutboxRecord
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if !got.WallTime.Equal(tc.r.WallTime) || got.WallTime.Location() != time.UTC {
				t.Fatalf("wall time %v, want %v in UTC", got.WallTime, tc.r.WallTime)
			}
			got.WallTime, tc.r.WallTime = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tc.r) {
				t.Fatalf("decoded %+v, want %+v", got, tc.r)
			}
		})
	}
}
