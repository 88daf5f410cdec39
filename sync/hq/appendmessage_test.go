package hq_test

import (
	"reflect"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// TestAppendMessage: decoding into a batch keeps the events already in
// it, adds what DecodeMessage returns, and on error leaves the batch as
// it was.
func TestAppendMessage(t *testing.T) {
	const topic = "loyalty/v1/s1/r1/events"
	ev := func(seq, member string) string {
		return `{"specversion":"1.0","id":"r1-` + seq + `","source":"/loyalty/s1/r1","type":"org.loyalty.points.event","datacontenttype":"application/json","sequence":"` + seq + `","data":{"member_id":"` + member + `","points":5}}`
	}
	good := []byte("[" + ev("1", "m1") + "," + ev("2", "m2") + "]")
	prior, err := hq.DecodeMessage(topic, []byte(ev("9", "m9")))
	if err != nil || len(prior) != 1 {
		t.Fatalf("prior: %v, %d events", err, len(prior))
	}
	want, err := hq.DecodeMessage(topic, good)
	if err != nil || len(want) != 2 {
		t.Fatalf("decode: %v, %d events", err, len(want))
	}
	tests := []struct {
		name    string
		topic   string
		payload []byte
		add     []hqstore.Event // nil: an error
	}{
		{"good", topic, good, want},
		{"bad topic", "loyalty/v1/s1/r1/ack", good, nil},
		{"bad payload", topic, []byte(`[{"id":`), nil},
		{"other register", "loyalty/v1/s1/r2/events", good, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, extra := range []int{0, 8} { // in place and growing
				dst := make([]hqstore.Event, len(prior), len(prior)+extra)
				copy(dst, prior)
				got, err := hq.AppendMessage(dst, tt.topic, tt.payload)
				if tt.add == nil {
					if err == nil {
						t.Fatal("no error")
					}
					if !reflect.DeepEqual(got, prior) {
						t.Fatalf("batch after error %+v, want %+v", got, prior)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, append(append([]hqstore.Event{}, prior...), tt.add...)) {
					t.Fatalf("batch %+v", got)
				}
			}
		})
	}
}
