package protocol_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestEventsIgnoreUnknownExtensions: a newer register may add CloudEvents
// extensions (traceparent from distributed tracing, anything lowercase);
// head office ignores them and applies the event as before, in a batch or
// alone. A key that is not an attribute name is still refused.
func TestEventsIgnoreUnknownExtensions(t *testing.T) {
	b, err := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord("s1", "r1", rec(5)), protocol.FromRecord("s1", "r1", rec(6))})
	if err != nil {
		t.Fatal(err)
	}
	withExt := strings.ReplaceAll(string(b), `"specversion"`,
		`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"x=1","priority":{"n":[1,2]},"subject":"sale","specversion"`)
	evs, err := protocol.DecodeEvents([]byte(withExt), "s1", "r1")
	if err != nil {
		t.Fatalf("events with extensions: %v", err)
	}
	plain, err := protocol.DecodeEvents(b, "s1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ID != plain[0].ID || string(evs[1].Data) != string(plain[1].Data) || evs[1].Sequence != "6" {
		t.Fatalf("decoded %+v, want %+v", evs, plain)
	}
	one := strings.TrimSuffix(strings.TrimPrefix(withExt, "["), "]")
	one = one[:strings.Index(one, `},{"traceparent"`)+1]
	if _, err := protocol.DecodeEvents([]byte(one), "s1", "r1"); err != nil {
		t.Fatalf("single event with extensions: %v", err)
	}
	for name, key := range map[string]string{
		"upper case":      "TraceParent",
		"underscore":      "data_base64",
		"over 20 letters": "abcdefghijklmnopqrstu",
		"empty":           "",
	} {
		bad := strings.Replace(string(b), `"specversion"`, `"`+key+`":"x","specversion"`, 1)
		if _, err := protocol.DecodeEvents([]byte(bad), "s1", "r1"); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s (%q): err = %v, want ErrMalformed", name, key, err)
		}
	}
}

// TestAckAndStatusIgnoreUnknownFields: fields that do not change meaning
// are ignored in acks and status documents; an unknown version is refused
// with ErrVersion and says what this program speaks. Config documents stay
// strict (a field a register ignored could change prices or points).
func TestAckAndStatusIgnoreUnknownFields(t *testing.T) {
	a, err := protocol.DecodeAck([]byte(`{"v":1,"register":"r1","watermark":3,"sent_at":"2027-01-01T00:00:00Z","hint":{"x":1}}`), "r1")
	if err != nil || a.Watermark != 3 {
		t.Fatalf("ack with unknown fields: %+v %v", a, err)
	}
	_, err = protocol.DecodeAck([]byte(`{"v":2,"register":"r1","watermark":3}`), "r1")
	if !errors.Is(err, protocol.ErrVersion) || !strings.Contains(err.Error(), "speaks v=1") {
		t.Fatalf("ack v2: %v", err)
	}
	s, err := protocol.DecodeStatus([]byte(`{"v":1,"store":"s1","register":"r1","state":"online","pending":2,"watermark":9,"battery":80}`), "s1", "r1")
	if err != nil || s.Pending != 2 {
		t.Fatalf("status with unknown field: %+v %v", s, err)
	}
	_, err = protocol.DecodeConfig([]byte(`{"v":1,"scope":"chain","config_version":4,"surcharge":5}`), protocol.Topic{Kind: protocol.KindConfig})
	if !errors.Is(err, protocol.ErrMalformed) {
		t.Fatalf("config with unknown field: %v, want ErrMalformed", err)
	}
}

// TestStatusCarriesFleetFields: the fleet fields round-trip, and a text
// over MaxStatusText is refused.
func TestStatusCarriesFleetFields(t *testing.T) {
	in := protocol.Status{Store: "s1", Register: "r1", State: protocol.StateOnline, Pending: 6, Published: 10, Watermark: 4,
		Software: "1.2.3", Config: &protocol.StatusConfig{Chain: 3, Store: 7}, ConfigError: "x", MembersSeq: 9, LastError: "y", Fault: "z"}
	b, err := protocol.EncodeStatus(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := protocol.DecodeStatus(b, "s1", "r1")
	if err != nil || out.Published != 10 || out.Config.Store != 7 || out.Fault != "z" || out.Software != "1.2.3" {
		t.Fatalf("round trip: %+v %v", out, err)
	}
	in.Fault = strings.Repeat("f", protocol.MaxStatusText+1)
	if _, err := protocol.EncodeStatus(in); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("long fault: %v", err)
	}
}
