package protocol_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// The decoders read bytes from the broker: whatever arrives, they return a
// value or an error and never panic, and what they accept re-encodes.

func FuzzDecodeEvents(f *testing.F) {
	b, _ := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord("s1", "r1", rec(1)), protocol.FromRecord("s1", "r1", rec(2))})
	f.Add(b)
	one, _ := json.Marshal(protocol.FromRecord("s1", "r1", rec(3)))
	f.Add(one)
	f.Add([]byte(`[{"specversion":"1.0"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := protocol.DecodeEvents(b, "s1", "r1")
		if err != nil {
			return
		}
		for _, e := range evs {
			if _, err := e.Record(); err != nil {
				t.Fatalf("accepted event has no record: %v", err)
			}
		}
		if _, err := protocol.EncodeEvents(evs); err != nil {
			t.Fatalf("accepted batch does not re-encode: %v", err)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(`{"v":1,"register":"r1","watermark":3,"gap":4}`))
	f.Add([]byte(`{"v":1,"register":"r1","watermark":3,"gap":4,"gap_to":9}`))
	f.Add([]byte(`{"v":1,"register":"r1","watermark":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := protocol.DecodeAck(b, "r1")
		if err != nil {
			return
		}
		if a.Gap != 0 && a.Gap <= a.Watermark {
			t.Fatalf("accepted gap %d <= watermark %d", a.Gap, a.Watermark)
		}
		if a.GapTo != 0 && (a.Gap == 0 || a.GapTo < a.Gap) {
			t.Fatalf("accepted gap_to %d with gap %d", a.GapTo, a.Gap)
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(`{"v":1,"scope":"store","store":"s1","config_version":4,"catalogue":[{"sku":"a","name":"x","price":1}]}`))
	f.Add([]byte(`{"v":1,"scope":"store","store":"s1","config_version":4,"rules":{"version":3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := protocol.DecodeConfig(b, protocol.Topic{Kind: protocol.KindConfig, Store: "s1"})
		if err != nil {
			return
		}
		if c.ConfigVersion == 0 || c.Store != "s1" {
			t.Fatalf("accepted %+v", c)
		}
		if _, err := protocol.EncodeConfig(c); err != nil {
			t.Fatalf("accepted config does not re-encode: %v", err)
		}
	})
}

func FuzzDecodeMembers(f *testing.F) {
	f.Add([]byte(`{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0,"included":{"r1":3}}]}`))
	f.Add([]byte(`{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":500,"visits_12m":2,"retention":{"status":"due","segment":"second","purchase_days":2,"last_purchase":"2026-10-01","mean_interval_days":14}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := protocol.DecodeMembers(b, "s1")
		if err != nil {
			return
		}
		if m.Seq == 0 || m.Store != "s1" {
			t.Fatalf("accepted %+v", m)
		}
		// What a register accepts, head office can send: it re-encodes.
		// (JSON escaping may make it longer than the limit: that is the
		// only refusal allowed.)
		if _, err := protocol.EncodeMembers(m); err != nil && !errors.Is(err, protocol.ErrTooLarge) {
			t.Fatalf("accepted members message does not re-encode: %v", err)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte(`{"v":1,"store":"s1","register":"r1","state":"online","pending":3,"watermark":9,"clock_trusted":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = protocol.DecodeStatus(b, "s1", "r1")
	})
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"loyalty/v1/s1/r1/events", "loyalty/v1/config", "loyalty/v1/s1/members", "loyalty/v1/+/#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := protocol.ParseTopic(s)
		if err != nil {
			return
		}
		for _, id := range []string{tp.Store, tp.Register} {
			if id != "" && protocol.ValidID(id) != nil {
				t.Fatalf("accepted bad id in %q", s)
			}
		}
	})
}
