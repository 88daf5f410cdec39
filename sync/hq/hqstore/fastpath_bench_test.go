package hqstore

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

// The hand-written paths of ingest against the encoding/json calls they
// replace, on the same records: point events as registers send them. One
// op handles benchN records, so -benchtime 1x (make bench) still times
// enough work to compare. Each prints a RATIO line: hand-written CPU time
// over encoding/json's (benchcmp).

const benchN = 256

func benchRecords() []ledger.OutboxRecord {
	rs := make([]ledger.OutboxRecord, benchN)
	for i := range rs {
		seq := uint64(1000 + i)
		id := fmt.Sprintf("r1-%d", seq)
		rs[i] = ledger.OutboxRecord{Seq: seq, ID: id, Type: ledger.OutPoints,
			WallTime: time.Date(2026, 11, 27, 10, 0, 0, int(seq)*1000, time.UTC), ClockTrusted: true,
			Data: fmt.Appendf(nil, `{"id":%q,"register":"r1","seq":%d,"kind":"earn","member_id":"m%d","points":%d,"wall_time":"2026-11-27T10:00:00.000001Z","clock_trusted":true}`,
				id, seq, i%1000, i%50+1)}
	}
	return rs
}

// BenchmarkPointDecodeFastVsJSON: decodePointFast against json.Unmarshal
// into pointData.
func BenchmarkPointDecodeFastVsJSON(b *testing.B) {
	rs := benchRecords()
	benchcmp.Compare(b, benchcmp.Options{Ratio: "pointdecode_vs_json", Items: benchN, Unit: "record"},
		benchcmp.Case{Name: "fast", Op: func(b *testing.B) {
			for _, r := range rs {
				if p, ok := decodePointFast(r.Data); !ok || p.Points == 0 {
					b.Fatalf("fast path declined %s", r.Data)
				}
			}
		}},
		benchcmp.Case{Name: "json", Op: func(b *testing.B) {
			for _, r := range rs {
				var p pointData
				if err := json.Unmarshal(r.Data, &p); err != nil || p.Points == 0 {
					b.Fatal(err)
				}
			}
		}})
}

// BenchmarkEncodeRecordVsMarshal: encodeRecord against json.Marshal of the
// same ledger.OutboxRecord.
func BenchmarkEncodeRecordVsMarshal(b *testing.B) {
	rs := benchRecords()
	benchcmp.Compare(b, benchcmp.Options{Ratio: "encoderecord_vs_json", Items: benchN, Unit: "record"},
		benchcmp.Case{Name: "hand", Op: func(b *testing.B) {
			for _, r := range rs {
				if len(encodeRecord(r)) == 0 {
					b.Fatal("empty record")
				}
			}
		}},
		benchcmp.Case{Name: "json", Op: func(b *testing.B) {
			for _, r := range rs {
				if v, err := json.Marshal(r); err != nil || len(v) == 0 {
					b.Fatal(err)
				}
			}
		}})
}
