package hqstore

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
)

func TestPrepareMissing(t *testing.T) {
	ev := func(seq uint64, data string) Event {
		return Event{Register: "r1", OutboxRecord: ledger.OutboxRecord{Seq: seq, ID: "r1-" + string(rune('0'+seq)), Type: ledger.OutPoints, Data: []byte(data)}}
	}
	good := `{"register":"r1","kind":"earn","member_id":"m1","points":5}`
	tests := []struct {
		name      string
		events    func() []Event
		sameSlice bool // nothing needed preparing
	}{
		{"none prepared", func() []Event { return []Event{ev(1, good), ev(2, `{"member_id":""}`)} }, false},
		{"all prepared", func() []Event { e := []Event{ev(1, good), ev(2, good)}; Prepare(e); return e }, true},
		{"one changed since", func() []Event {
			e := []Event{ev(1, good), ev(2, good)}
			Prepare(e)
			e[1].Data = []byte(`{"member_id":""}`)
			return e
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.events()
			before := make([]*prepared, len(in))
			for i := range in {
				before[i] = in[i].prepared
			}
			out := PrepareMissing(in)
			if got := &out[0] == &in[0]; got != tc.sameSlice {
				t.Fatalf("same slice %v, want %v", got, tc.sameSlice)
			}
			for i := range in {
				if in[i].prepared != before[i] {
					t.Fatalf("event %d: the caller's slice changed", i)
				}
				p := out[i].prepared
				if p == nil || !sameEvent(p.o.e, out[i]) {
					t.Fatalf("event %d not prepared", i)
				}
				want, wantErr := decodeNew(out[i])
				if (p.err == nil) != (wantErr == nil) || (p.o.point == nil) != (want.point == nil) {
					t.Fatalf("event %d: prepared %v/%v, decoding gives %v/%v", i, p.o.point, p.err, want.point, wantErr)
				}
			}
		})
	}
}
