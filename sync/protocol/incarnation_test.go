package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// Events carry their ledger's incarnation through both decoders; a batch
// mixing incarnations, or a bad incarnation, is refused whole.
func TestEventIncarnation(t *testing.T) {
	mk := func(seq uint64, inc string) protocol.Event {
		e := protocol.FromRecord("s1", "r1", rec(seq))
		e.Incarnation = inc
		return e
	}
	b, err := protocol.EncodeEvents([]protocol.Event{mk(1, "aaaa"), mk(2, "aaaa")})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := protocol.DecodeEvents(b, "s1", "r1")
	if err != nil || len(evs) != 2 || evs[0].Incarnation != "aaaa" || evs[1].Incarnation != "aaaa" {
		t.Fatalf("fast decoder: %+v %v", evs, err)
	}
	// The strict decoder (a single event object with spaces).
	one, _ := json.MarshalIndent(mk(3, "bbbb"), "", " ")
	evs, err = protocol.DecodeEvents(one, "s1", "r1")
	if err != nil || evs[0].Incarnation != "bbbb" {
		t.Fatalf("strict decoder: %+v %v", evs, err)
	}
	// Legacy: no incarnation, no field on the wire.
	b, _ = protocol.EncodeEvents([]protocol.Event{mk(1, "")})
	if strings.Contains(string(b), "incarnation") {
		t.Fatalf("legacy event names an incarnation: %s", b)
	}
	for name, evs := range map[string][]protocol.Event{
		"mixed":  {mk(1, "aaaa"), mk(2, "bbbb")},
		"legacy": {mk(1, "aaaa"), mk(2, "")},
		"bad id": {mk(1, "a/b")},
	} {
		b, _ := json.Marshal(evs)
		if _, err := protocol.DecodeEvents(b, "s1", "r1"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAckNotice(t *testing.T) {
	a := protocol.Ack{Register: "r1", Incarnation: "aaaa", Watermark: 4,
		Notice: &protocol.Notice{Code: protocol.NoticeStore, Held: 2, Text: "moved"}}
	b, err := protocol.EncodeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.DecodeAck(b, "r1")
	if err != nil || got.Incarnation != "aaaa" || got.Notice == nil || *got.Notice != *a.Notice {
		t.Fatalf("%+v %v", got, err)
	}
	for name, bad := range map[string]string{
		"unknown code": `{"v":1,"register":"r1","watermark":0,"notice":{"code":"nope","held":1,"text":""}}`,
		"bad inc":      `{"v":1,"register":"r1","incarnation":"a b","watermark":0}`,
		"long text":    `{"v":1,"register":"r1","watermark":0,"notice":{"code":"store","held":1,"text":"` + strings.Repeat("x", 500) + `"}}`,
	} {
		if _, err := protocol.DecodeAck([]byte(bad), "r1"); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, protocol.ErrMalformed) && !errors.Is(err, protocol.ErrInvalidID) && !errors.Is(err, protocol.ErrTooLarge) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
