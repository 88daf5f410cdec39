package protocol

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

// benchBatch is an events message as a register sends it: n records, every
// seventh a three-line sale, the others point events (a member sale writes
// one sale record and its earn events).
func benchBatch(tb testing.TB, n int) []byte {
	evs := make([]Event, n)
	for i := range evs {
		seq := uint64(1000 + i)
		id := EventID("r1", seq)
		r := ledger.OutboxRecord{Seq: seq, ID: id, Type: ledger.OutPoints,
			WallTime: time.Date(2026, 11, 27, 10, 0, 0, int(seq)*1000, time.UTC), ClockTrusted: true,
			Data: fmt.Appendf(nil, `{"id":%q,"register":"r1","seq":%d,"kind":"earn","member_id":"m%d","points":%d,"wall_time":"2026-11-27T10:00:00.000001Z","clock_trusted":true}`, id, seq, i%200, i%50+1)}
		if i%7 == 0 {
			r.Type = ledger.OutSale
			r.Data = fmt.Appendf(nil, `{"id":"sale-%d","register":"r1","seq":%d,"member_id":"m%d","lines":[{"no":1,"sku":"4006381333931","quantity":2,"unit_price":1290,"category":"dairy"},{"no":2,"sku":"7290000066318","quantity":1,"unit_price":4590,"category":"bakery"},{"no":3,"sku":"5449000000996","quantity":6,"unit_price":590,"category":"drinks"}],"tenders":[{"kind":"card","amount":10710}],"total":10710}`, i, seq, i%200)
		}
		evs[i] = FromRecord("s1", "r1", r)
	}
	b, err := EncodeEvents(evs)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodeEventsFastVsJSON compares the hand-written decoder of the
// registers' shape (decodeFast) with the strict encoding/json decoder it
// falls back to, on the same 256-event message, validation included
// (DecodeEvents' work after decoding is the same for both). It prints
// RATIO fastdecode_vs_json: fast CPU time over encoding/json's (benchcmp).
func BenchmarkDecodeEventsFastVsJSON(b *testing.B) {
	const n = 256
	msg := bytes.TrimSpace(benchBatch(b, n))
	check := func(b *testing.B, evs []Event) {
		if len(evs) != n {
			b.Fatalf("decoded %d events, want %d", len(evs), n)
		}
		for j := range evs {
			if _, err := evs[j].validate("s1", "r1"); err != nil {
				b.Fatal(err)
			}
		}
	}
	benchcmp.Compare(b, benchcmp.Options{Ratio: "fastdecode_vs_json", Items: n, Unit: "event"},
		benchcmp.Case{Name: "fast", Op: func(b *testing.B) {
			evs, ok := decodeFast(msg)
			if !ok {
				b.Fatal("the fast path declined the registers' shape")
			}
			check(b, evs)
		}},
		benchcmp.Case{Name: "json", Op: func(b *testing.B) {
			evs, err := strictDecode(msg)
			if err != nil {
				b.Fatal(err)
			}
			check(b, evs)
		}})
}
