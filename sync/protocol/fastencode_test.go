package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

func eventsToEncode() []Event {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	base := Event{SpecVersion: SpecVersion, ID: "r1-7", Source: Source("s1", "r1"), Type: TypePrefix + "points.recorded", Time: at,
		DataContentType: DataContentType, Sequence: "7", ClockTrusted: true, Incarnation: "0123456789abcdef0123456789abcdef",
		Data: json.RawMessage(`{"id":"r1-7","points":12,"reason":"refund r1","name":"Café €5"}`)}
	var out []Event
	add := func(f func(e *Event)) {
		e := base
		f(&e)
		out = append(out, e)
	}
	add(func(*Event) {})
	add(func(e *Event) { e.Time, e.Incarnation = time.Time{}, "" })
	add(func(e *Event) { e.Time = at.In(time.FixedZone("IST", 2*3600)) })
	add(func(e *Event) { e.Data = json.RawMessage(`{"a": 1}`) })
	add(func(e *Event) { e.Data = json.RawMessage(`{"a":"<b>&"}`) })
	add(func(e *Event) { e.Data = json.RawMessage("{\"a\":\"\u2028\"}") })
	add(func(e *Event) { e.Data = json.RawMessage(`{"a":"q\" \\"}`) })
	add(func(e *Event) { e.Data = nil })
	add(func(e *Event) { e.ID = "r1<7>" })
	add(func(e *Event) { e.Source = "/loyalty/é/r1" })
	add(func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })
	return out
}

// TestEncodeEventsMatchesJSON: the hand-written message is byte for byte
// encoding/json's, alone and in batches, for payloads it writes itself
// and for those it leaves to encoding/json.
func TestEncodeEventsMatchesJSON(t *testing.T) {
	evs := eventsToEncode()
	for i := range evs {
		for _, batch := range [][]Event{evs[i : i+1], evs[:i+1]} {
			want, wantErr := json.Marshal(batch)
			got, ok := encodeEventsFast(batch)
			if ok && (wantErr != nil || !bytes.Equal(got, want)) {
				t.Errorf("case %d (%d events):\n got %s\nwant %s %v", i, len(batch), got, want, wantErr)
			}
		}
	}
	if _, ok := encodeEventsFast(evs[:1]); !ok {
		t.Error("a plain event went through encoding/json")
	}
}

func FuzzEncodeEvents(f *testing.F) {
	f.Add("r1-7", "points.recorded", `{"id":"r1-7","points":12}`, int64(1_700_000_000_123_456_789), 3600, true, "inc")
	f.Add("r<1>", "x\u2028", "{\"a\": \"\u2029<\"}", int64(-62_000_000_000_000_000_0), 90000, false, "")
	f.Fuzz(func(t *testing.T, id, typ, data string, nanos int64, off int, trusted bool, inc string) {
		if !json.Valid([]byte(data)) {
			return // payloads come from the ledger's encoders
		}
		e := Event{SpecVersion: SpecVersion, ID: id, Source: "/loyalty/s/r", Type: typ, Time: time.Unix(0, nanos).In(time.FixedZone("z", off%(30*3600))),
			DataContentType: DataContentType, Sequence: "1", ClockTrusted: trusted, Incarnation: inc, Data: json.RawMessage(data)}
		want, wantErr := json.Marshal([]Event{e, e})
		got, ok := encodeEventsFast([]Event{e, e})
		if ok && (wantErr != nil || !bytes.Equal(got, want)) {
			t.Fatalf("got %s\nwant %s %v", got, want, wantErr)
		}
	})
}

// BenchmarkEncodeEvents holds the hand-written events message against
// encoding/json on a 64-event batch.
func BenchmarkEncodeEvents(b *testing.B) {
	evs := make([]Event, 64)
	for i := range evs {
		evs[i] = eventsToEncode()[0]
	}
	benchcmp.Compare(b, benchcmp.Options{Ratio: "encodeevents_vs_json", Items: len(evs), Unit: "event"},
		benchcmp.Case{Name: "hand", Op: func(b *testing.B) {
			if _, ok := encodeEventsFast(evs); !ok {
				b.Fatal("fell back")
			}
		}},
		benchcmp.Case{Name: "json", Op: func(b *testing.B) {
			if _, err := json.Marshal(evs); err != nil {
				b.Fatal(err)
			}
		}})
}

// TestEncodeRecordsMatchesFromRecord: EncodeRecords writes what
// EncodeEvents writes for FromRecord of the same records.
func TestEncodeRecordsMatchesFromRecord(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 5, time.UTC)
	recs := []ledger.OutboxRecord{
		{Seq: 7, ID: "r1-7", Type: ledger.OutPoints, WallTime: at, ClockTrusted: true, Data: json.RawMessage(`{"points":1}`)},
		{Seq: 8, Type: ledger.OutboxType("sale.recorded"), WallTime: at, Data: json.RawMessage(`{"a": "<b>"}`)},
		{Seq: 9, ID: "r1-9", Type: ledger.OutPoints, Data: json.RawMessage(`{"points":2}`)},
	}
	for _, inc := range []string{"", "0123456789abcdef"} {
		for n := 1; n <= len(recs); n++ {
			evs := make([]Event, n)
			for i, r := range recs[:n] {
				evs[i] = FromRecord("s1", "r1", r)
				evs[i].Incarnation = inc
			}
			want, wantErr := EncodeEvents(evs)
			got, err := EncodeRecords("s1", "r1", inc, recs[:n])
			if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
				t.Errorf("%d records, incarnation %q:\n got %s %v\nwant %s %v", n, inc, got, err, want, wantErr)
			}
		}
	}
	if _, err := EncodeRecords("s1", "r1", "", nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("no records: %v, want ErrMalformed", err)
	}
}

// compactJSONBefore is compactJSON as it was before the byte table: the
// table version must decide every input the same way.
func compactJSONBefore(d []byte) bool {
	if len(d) == 0 {
		return false
	}
	in, esc := false, false
	for i, c := range d {
		switch {
		case c == '<' || c == '>' || c == '&':
			return false
		case c == 0xE2 && i+2 < len(d) && d[i+1] == 0x80 && (d[i+2] == 0xA8 || d[i+2] == 0xA9):
			return false
		case in && esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return !in
}

func FuzzCompactJSONMatchesBefore(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a": 1}`, `{"a":"\"<"}`, "{\"a\":\"\\\u2028\"}", `"\`, `{"a":"x\\"}`, "\"\xe2\x80\"", `<`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		if got, want := compactJSON(d), compactJSONBefore(d); got != want {
			t.Fatalf("%q: %v, before %v", d, got, want)
		}
	})
}

// sameBatch: AppendBatch appends to dst what EncodeRecordsStamped
// returns for the batch (IDs filled in), and what encoding/json writes
// for its events, or fails alike and leaves dst as it was.
func sameBatch(t *testing.T, store, register, inc, prev string, b *ledger.OutboxBatch) {
	t.Helper()
	recs := make([]ledger.OutboxRecord, len(b.Recs))
	evs := make([]Event, len(b.Recs))
	for i, r := range b.Recs {
		if r.ID == "" {
			r.ID = b.IDPrefix + strconv.FormatUint(r.Seq, 10)
		}
		recs[i] = r
		evs[i] = FromRecord(store, register, r)
		evs[i].Incarnation, evs[i].PrevIncarnation = inc, prev
	}
	want, wantErr := EncodeRecordsStamped(store, register, inc, prev, recs)
	dst := []byte("prefix")
	got, err := AppendBatch(dst, store, register, inc, prev, b)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%d records: error %v, EncodeRecordsStamped %v", len(recs), err, wantErr)
	}
	if err != nil {
		if string(got) != "prefix" {
			t.Fatalf("on error: %q", got)
		}
		return
	}
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("appended\n%s\nEncodeRecordsStamped\n%s", got[6:], want)
	}
	if js, err := json.Marshal(evs); err == nil && !bytes.Equal(want, js) {
		t.Fatalf("EncodeRecordsStamped\n%s\nencoding/json\n%s", want, js)
	}
}

// TestAppendBatch: batches of records of every kind the ledger sends
// (ids implied and given, several types, zones, payloads needing
// escapes, times JSON refuses) append as EncodeRecordsStamped encodes them.
func TestAppendBatch(t *testing.T) {
	var recs []ledger.OutboxRecord
	for i, e := range eventsToEncode() {
		r, err := e.Record()
		if err != nil {
			t.Fatal(err)
		}
		r.Seq = uint64(7 + i)
		if i%2 == 0 {
			r.ID = ""
		}
		recs = append(recs, r)
	}
	for _, inc := range [][2]string{{"", ""}, {"0123456789abcdef0123456789abcdef", ""}, {"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"}} {
		for i := range recs {
			for _, batch := range [][]ledger.OutboxRecord{recs[i : i+1], recs[:i+1]} {
				sameBatch(t, "s1", "r1", inc[0], inc[1], &ledger.OutboxBatch{Recs: batch, IDPrefix: "r1-"})
			}
		}
	}
	sameBatch(t, "s1", "r1", "", "", &ledger.OutboxBatch{Recs: recs[:1], IDPrefix: "r<1>-"})
	sameBatch(t, "s1", "r1", "", "", &ledger.OutboxBatch{IDPrefix: "r1-"})
	big := ledger.OutboxRecord{Seq: 1, Type: ledger.OutPoints, Data: json.RawMessage(`"` + strings.Repeat("x", MaxEventsMessage/4) + `"`)}
	sameBatch(t, "s1", "r1", "", "", &ledger.OutboxBatch{Recs: []ledger.OutboxRecord{big, big, big, big}, IDPrefix: "r1-"})
	var plain ledger.OutboxBatch
	plain.IDPrefix = "r1-"
	plain.Recs = recs[:1]
	if got, err := AppendBatch(nil, "s1", "r1", "", "", &plain); err != nil || !bytes.Contains(got, []byte(`"id":"r1-7"`)) {
		t.Fatalf("%s %v", got, err)
	}
}

func FuzzAppendBatch(f *testing.F) {
	f.Add("r1-7", "points.event", `{"id":"r1-7","points":12}`, int64(1_700_000_000_123_456_789), 3600, true, "inc", "r1-", uint64(7))
	f.Add("", "x\u2028", "{\"a\": \"\u2029<\"}", int64(-62_000_000_000_000_000_0), 90000, false, "", "r<1>-", uint64(1<<64-1))
	f.Fuzz(func(t *testing.T, id, typ, data string, nanos int64, off int, trusted bool, inc, prefix string, seq uint64) {
		if !json.Valid([]byte(data)) {
			return // payloads come from the ledger's encoders
		}
		r := ledger.OutboxRecord{Seq: seq, ID: id, Type: ledger.OutboxType(typ), WallTime: time.Unix(0, nanos).In(time.FixedZone("z", off%(30*3600))),
			ClockTrusted: trusted, Data: json.RawMessage(data)}
		r2 := r
		r2.ID, r2.Seq, r2.Type = "", seq/2, ledger.OutPoints
		sameBatch(t, "s1", "r1", inc, "", &ledger.OutboxBatch{Recs: []ledger.OutboxRecord{r, r2, r}, IDPrefix: prefix})
	})
}

// BenchmarkOutboxBatch holds the uplink's read and encode of a 64-event
// batch (ledger.OutboxInto into a kept batch, AppendBatch into a kept
// buffer) against the path before it (Outbox, EncodeRecordsStamped) on a
// real ledger of point events (adjustments of five members).
func BenchmarkOutboxBatch(b *testing.B) {
	l := ledgertest.Open(b, &ledger.Options{Register: "r1", Clock: ledgertest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), true)})
	ctx := context.Background()
	for i := range 5 {
		if _, err := l.Enrol(ctx, ledger.Member{ID: fmt.Sprintf("m%d", i), Name: "M"}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 640 {
		if _, err := l.Adjust(ctx, fmt.Sprintf("a%d", i), fmt.Sprintf("m%d", i%5), 1, "bench", "op"); err != nil {
			b.Fatal(err)
		}
	}
	const n = 64
	var after uint64
	next := func() uint64 { after = (after + n) % 576; return after + 5 }
	var ob ledger.OutboxBatch
	var buf []byte
	benchcmp.Compare(b, benchcmp.Options{Ratio: "outboxbatch_vs_records", Items: n, Unit: "event"},
		benchcmp.Case{Name: "batch", Op: func(b *testing.B) {
			if err := l.OutboxInto(&ob, next(), n); err != nil || len(ob.Recs) != n {
				b.Fatal(err, len(ob.Recs))
			}
			var err error
			if buf, err = AppendBatch(buf[:0], "s1", "r1", "inc", "", &ob); err != nil {
				b.Fatal(err)
			}
		}},
		benchcmp.Case{Name: "records", Op: func(b *testing.B) {
			recs, err := l.Outbox(next(), n)
			if err != nil || len(recs) != n {
				b.Fatal(err, len(recs))
			}
			if _, err := EncodeRecordsStamped("s1", "r1", "inc", "", recs); err != nil {
				b.Fatal(err)
			}
		}})
}
