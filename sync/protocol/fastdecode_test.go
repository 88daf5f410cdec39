package protocol

import (
	"bytes"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// strictDecode is the reference: the strict standard decoder on the same
// trimmed payload, as DecodeEvents uses it when decodeFast declines.
func strictDecode(d []byte) ([]Event, error) {
	if len(d) > 0 && d[0] == '{' {
		var e Event
		if err := strictUnmarshal(d, &e); err != nil {
			return nil, err
		}
		return []Event{e}, nil
	}
	var evs []Event
	err := strictUnmarshal(d, &evs)
	return evs, err
}

func sameEvents(t *testing.T, fast, strict []Event) {
	t.Helper()
	if len(fast) != len(strict) || (fast == nil) != (strict == nil) {
		t.Fatalf("fast path gave %d events (nil %v), strict %d (nil %v)", len(fast), fast == nil, len(strict), strict == nil)
	}
	for i := range fast {
		f, s := fast[i], strict[i]
		_, fo := f.Time.Zone()
		_, so := s.Time.Zone()
		if !f.Time.Equal(s.Time) || fo != so || f.Time.IsZero() != s.Time.IsZero() || !bytes.Equal(f.Data, s.Data) || (f.Data == nil) != (s.Data == nil) {
			t.Fatalf("event %d: fast %+v, strict %+v", i, f, s)
		}
		if f.SpecVersion != s.SpecVersion || f.ID != s.ID || f.Source != s.Source || f.Type != s.Type ||
			f.DataContentType != s.DataContentType || f.Sequence != s.Sequence || f.ClockTrusted != s.ClockTrusted {
			t.Fatalf("event %d: fast %+v, strict %+v", i, f, s)
		}
	}
}

func fastSeeds(t testing.TB) [][]byte {
	rec := func(seq uint64, data string) Event {
		return FromRecord("s1", "r1", ledger.OutboxRecord{Seq: seq, ID: EventID("r1", seq), Type: ledger.OutPoints,
			WallTime: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC), ClockTrusted: seq%2 == 0, Data: []byte(data)})
	}
	batch, err := EncodeEvents([]Event{rec(1, `{"member_id":"m1","points":5,"note":"a \"quoted\" } brace"}`), rec(2, `{"lines":[{"no":1}],"x":{}}`)})
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{
		batch,
		[]byte(`{"specversion":"1.0","id":"r1-1","source":"/loyalty/s1/r1","type":"org.loyalty.points","datacontenttype":"application/json","sequence":"1","clocktrusted":true,"data":{"a":1}}`),
		[]byte(` [ { "specversion" : "1.0" , "id":"r1-1", "time":"2026-11-27T10:00:00+02:00", "data" : { "a" : [1, 2] } } ] `),
		[]byte(`[]`),
		[]byte(`[{}]`),
		[]byte(`{"id":"r1-\u0031","data":{}}`),
		[]byte(`{"ID":"r1-1","data":{}}`),
		[]byte(`{"id":"r1-1","id":"r1-2","data":{"b":1},"data":{"c":2}}`),
		[]byte(`{"data":{"a":}}`),
		[]byte(`{"data":{"a":"}"}}`),
		[]byte(`{"data":[1]}`),
		[]byte(`{"data":null,"time":null,"clocktrusted":null}`),
		[]byte(`{"time":"2026-13-01T00:00:00Z"}`),
		[]byte(`{"clocktrusted":truex}`),
		[]byte(`[{"id":"a"},]`),
		[]byte(`[{"id":"a"}] x`),
		[]byte(`{"id":"é"}`),
	}
}

// TestDecodeFastMatchesStrict: on every seed, the fast path either
// declines or agrees with the strict decoder, and it does not decline the
// shape registers send.
func TestDecodeFastMatchesStrict(t *testing.T) {
	seeds := fastSeeds(t)
	for i, b := range seeds {
		d := bytes.TrimSpace(b)
		fast, ok := decodeFast(d)
		if i == 0 && !ok {
			t.Fatal("the fast path declined what EncodeEvents produces")
		}
		if !ok {
			continue
		}
		strict, err := strictDecode(d)
		if err != nil {
			t.Fatalf("seed %d %s: fast path accepted what the strict decoder refuses: %v", i, b, err)
		}
		sameEvents(t, fast, strict)
	}
}

func FuzzDecodeFastMatchesStrict(f *testing.F) {
	for _, b := range fastSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := bytes.TrimSpace(b)
		if len(d) == 0 {
			return
		}
		fast, ok := decodeFast(d)
		if !ok {
			return
		}
		strict, err := strictDecode(d)
		if err != nil {
			t.Fatalf("fast path accepted what the strict decoder refuses: %v", err)
		}
		sameEvents(t, fast, strict)
	})
}
