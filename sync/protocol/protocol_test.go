package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

func rec(seq uint64) ledger.OutboxRecord {
	return ledger.OutboxRecord{
		Seq:          seq,
		ID:           protocol.EventID("r1", seq),
		Type:         ledger.OutSale,
		WallTime:     time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		ClockTrusted: true,
		Data:         json.RawMessage(`{"id":"s1","total":1250}`),
	}
}

func TestTopics(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		want  protocol.Topic
		err   error
	}{
		{"events", protocol.EventsTopic("s1", "r1"), protocol.Topic{Kind: "events", Store: "s1", Register: "r1"}, nil},
		{"status", protocol.StatusTopic("s1", "r1"), protocol.Topic{Kind: "status", Store: "s1", Register: "r1"}, nil},
		{"ack", protocol.AckTopic("s1", "r-2"), protocol.Topic{Kind: "ack", Store: "s1", Register: "r-2"}, nil},
		{"store config", protocol.StoreConfigTopic("s1"), protocol.Topic{Kind: "config", Store: "s1"}, nil},
		{"chain config", protocol.ChainConfigTopic(), protocol.Topic{Kind: "config"}, nil},
		{"members", protocol.MembersTopic("s1"), protocol.Topic{Kind: "members", Store: "s1"}, nil},
		{"other root", "loyalty/v2/s1/r1/events", protocol.Topic{}, protocol.ErrTopic},
		{"unknown kind", "loyalty/v1/s1/r1/cmd", protocol.Topic{}, protocol.ErrTopic},
		{"too deep", "loyalty/v1/s1/r1/events/x", protocol.Topic{}, protocol.ErrTopic},
		{"wildcard id", "loyalty/v1/+/r1/events", protocol.Topic{}, protocol.ErrInvalidID},
		{"empty store", "loyalty/v1//r1/events", protocol.Topic{}, protocol.ErrInvalidID},
		{"bare root", "loyalty/v1/", protocol.Topic{}, protocol.ErrTopic},
		{"members for one register", "loyalty/v1/s1/r1/members", protocol.Topic{Kind: protocol.KindMembers, Store: "s1", Register: "r1"}, nil},
		{"catch-up request", "loyalty/v1/s1/r1/catchup", protocol.Topic{Kind: protocol.KindCatchUp, Store: "s1", Register: "r1"}, nil},
		{"lookup and answer", "loyalty/v1/s1/r1/found", protocol.Topic{Kind: protocol.KindFound, Store: "s1", Register: "r1"}, nil},
		{"catch-up for a store", "loyalty/v1/s1/catchup", protocol.Topic{}, protocol.ErrTopic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := protocol.ParseTopic(tc.topic)
			if !errors.Is(err, tc.err) {
				t.Fatalf("ParseTopic(%q) err = %v, want %v", tc.topic, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("ParseTopic(%q) = %+v, want %+v", tc.topic, got, tc.want)
			}
		})
	}
}

func TestEventRoundTrip(t *testing.T) {
	var evs []protocol.Event
	for s := uint64(7); s < 10; s++ {
		evs = append(evs, protocol.FromRecord("s1", "r1", rec(s)))
	}
	b, err := protocol.EncodeEvents(evs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.DecodeEvents(b, "s1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d events", len(got))
	}
	r, err := got[2].Record()
	if err != nil {
		t.Fatal(err)
	}
	want := rec(9)
	if r.Seq != 9 || r.ID != "r1-9" || r.Type != ledger.OutSale || !r.WallTime.Equal(want.WallTime) || !r.ClockTrusted || string(r.Data) != string(want.Data) {
		t.Fatalf("record = %+v", r)
	}
	if got[0].Source != "/loyalty/s1/r1" || got[0].Type != "org.loyalty.sale.recorded" || got[0].Sequence != "7" {
		t.Fatalf("event = %+v", got[0])
	}
	// a single object (not a batch) is accepted too
	one, _ := json.Marshal(evs[0])
	if _, err := protocol.DecodeEvents(one, "s1", "r1"); err != nil {
		t.Fatalf("single event: %v", err)
	}
}

func TestDecodeEventsRejects(t *testing.T) {
	good := func() protocol.Event { return protocol.FromRecord("s1", "r1", rec(5)) }
	enc := func(evs ...protocol.Event) string {
		b, _ := json.Marshal(evs)
		return string(b)
	}
	mod := func(f func(*protocol.Event)) string { e := good(); f(&e); return enc(e) }
	next := protocol.FromRecord("s1", "r1", rec(7))
	tests := []struct {
		name    string
		payload string
		err     error
	}{
		{"empty", "", protocol.ErrMalformed},
		{"empty batch", "[]", protocol.ErrMalformed},
		{"not json", "{nope", protocol.ErrMalformed},
		{"trailing data", enc(good()) + "x", protocol.ErrMalformed},
		{"field not an extension name", strings.Replace(enc(good()), `"specversion"`, `"Extra_1":1,"specversion"`, 1), protocol.ErrMalformed},
		{"spec 0.3", mod(func(e *protocol.Event) { e.SpecVersion = "0.3" }), protocol.ErrVersion},
		{"other register source", mod(func(e *protocol.Event) { e.Source = "/loyalty/s1/r2" }), protocol.ErrMismatch},
		{"id not seq", mod(func(e *protocol.Event) { e.ID = "r1-6" }), protocol.ErrMismatch},
		{"seq zero", mod(func(e *protocol.Event) { e.Sequence = "0"; e.ID = "r1-0" }), protocol.ErrMalformed},
		{"seq leading zero", mod(func(e *protocol.Event) { e.Sequence = "05" }), protocol.ErrMalformed},
		{"seq negative", mod(func(e *protocol.Event) { e.Sequence = "-5" }), protocol.ErrMalformed},
		{"bad type", mod(func(e *protocol.Event) { e.Type = "com.other.sale" }), protocol.ErrMalformed},
		{"bad content type", mod(func(e *protocol.Event) { e.DataContentType = "text/plain" }), protocol.ErrMalformed},
		{"data not object", mod(func(e *protocol.Event) { e.Data = json.RawMessage(`[1]`) }), protocol.ErrMalformed},
		{"previncarnation without incarnation", mod(func(e *protocol.Event) { e.PrevIncarnation = "aaaa" }), protocol.ErrMalformed},
		{"previncarnation is itself", mod(func(e *protocol.Event) { e.Incarnation, e.PrevIncarnation = "aaaa", "aaaa" }), protocol.ErrMalformed},
		{"previncarnation not an id", mod(func(e *protocol.Event) { e.Incarnation, e.PrevIncarnation = "aaaa", "a/b" }), protocol.ErrMalformed},
		{"gap in batch", enc(good(), next), protocol.ErrOrder},
		{"too large", "[" + strings.Repeat(" ", protocol.MaxEventsMessage) + "]", protocol.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := protocol.DecodeEvents([]byte(tc.payload), "s1", "r1"); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestAck(t *testing.T) {
	b, err := protocol.EncodeAck(protocol.Ack{Register: "r1", Watermark: 41, Gap: 42})
	if err != nil {
		t.Fatal(err)
	}
	a, err := protocol.DecodeAck(b, "r1")
	if err != nil || a.Watermark != 41 || a.Gap != 42 || a.V != 1 || a.GapTo != 0 {
		t.Fatalf("ack %+v err %v", a, err)
	}
	if strings.Contains(string(b), "gap_to") {
		t.Fatalf("ack without an end carries gap_to: %s", b)
	}
	b, err = protocol.EncodeAck(protocol.Ack{Register: "r1", Watermark: 41, Gap: 42, GapTo: 42})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := protocol.DecodeAck(b, "r1"); err != nil || a.Gap != 42 || a.GapTo != 42 {
		t.Fatalf("window of one: %+v err %v", a, err)
	}
	tests := []struct {
		name, payload string
		err           error
	}{
		{"other register", `{"v":1,"register":"r2","watermark":3}`, protocol.ErrMismatch},
		{"version 2", `{"v":2,"register":"r1","watermark":3}`, protocol.ErrVersion},
		{"no version", `{"register":"r1","watermark":3}`, protocol.ErrVersion},
		{"gap below watermark", `{"v":1,"register":"r1","watermark":3,"gap":3}`, protocol.ErrMalformed},
		{"gap_to without gap", `{"v":1,"register":"r1","watermark":3,"gap_to":9}`, protocol.ErrMalformed},
		{"gap_to below gap", `{"v":1,"register":"r1","watermark":3,"gap":5,"gap_to":4}`, protocol.ErrMalformed},
		{"negative gap_to", `{"v":1,"register":"r1","watermark":3,"gap":4,"gap_to":-1}`, protocol.ErrMalformed},
		{"negative watermark", `{"v":1,"register":"r1","watermark":-3}`, protocol.ErrMalformed},
		{"oversize", `{"v":1,"register":"r1","watermark":3}` + strings.Repeat(" ", 2000), protocol.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := protocol.DecodeAck([]byte(tc.payload), "r1"); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	b, err := protocol.EncodeStatus(protocol.Status{Store: "s1", Register: "r1", State: protocol.StateOffline, Pending: 3})
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.DecodeStatus(b, "s1", "r1")
	if err != nil || s.State != "offline" || s.Pending != 3 {
		t.Fatalf("status %+v err %v", s, err)
	}
	if _, err := protocol.DecodeStatus(b, "s1", "r2"); !errors.Is(err, protocol.ErrMismatch) {
		t.Fatalf("other register: %v", err)
	}
	if _, err := protocol.EncodeStatus(protocol.Status{Store: "s1", Register: "r1", State: "asleep"}); !errors.Is(err, protocol.ErrMalformed) {
		t.Fatalf("bad state: %v", err)
	}
}

func TestConfig(t *testing.T) {
	cfg := protocol.Config{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 3,
		Catalogue: []protocol.Product{{SKU: "4006381333931", Name: "pen", Price: 250, Category: "office"}}}
	b, err := protocol.EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := protocol.Topic{Kind: protocol.KindConfig, Store: "s1"}
	got, err := protocol.DecodeConfig(b, st)
	if err != nil || got.ConfigVersion != 3 || len(got.Catalogue) != 1 || got.Catalogue[0].Price != 250 {
		t.Fatalf("config %+v err %v", got, err)
	}
	tests := []struct {
		name, payload string
		topic         protocol.Topic
		err           error
	}{
		{"chain doc on store topic", `{"v":1,"scope":"chain","config_version":4}`, st, protocol.ErrMismatch},
		{"other store", `{"v":1,"scope":"store","store":"s2","config_version":4}`, st, protocol.ErrMismatch},
		{"unknown version", `{"v":9,"scope":"store","store":"s1","config_version":4}`, st, protocol.ErrVersion},
		{"no config version", `{"v":1,"scope":"store","store":"s1"}`, st, protocol.ErrMalformed},
		{"negative price", `{"v":1,"scope":"store","store":"s1","config_version":4,"catalogue":[{"sku":"a","name":"x","price":-1}]}`, st, protocol.ErrMalformed},
		{"zero price", `{"v":1,"scope":"store","store":"s1","config_version":4,"catalogue":[{"sku":"a","name":"x","price":0}]}`, st, protocol.ErrMalformed},
		{"repeated sku", `{"v":1,"scope":"store","store":"s1","config_version":4,"catalogue":[{"sku":"a","name":"x","price":1},{"sku":"a","name":"y","price":2}]}`, st, protocol.ErrMalformed},
		{"unknown field", `{"v":1,"scope":"store","store":"s1","config_version":4,"debug":true}`, st, protocol.ErrMalformed},
		{"truncated", `{"v":1,"scope":"store"`, st, protocol.ErrMalformed},
		{"oversize", `{"v":1}` + strings.Repeat(" ", protocol.MaxConfigSize), st, protocol.ErrTooLarge},
		{"version 2^64-1", `{"v":1,"scope":"store","store":"s1","config_version":18446744073709551615}`, st, protocol.ErrMalformed},
		{"version above 2^53", `{"v":1,"scope":"store","store":"s1","config_version":9007199254740993}`, st, protocol.ErrMalformed},
		{"ok chain", `{"v":1,"scope":"chain","config_version":4}`, protocol.Topic{Kind: protocol.KindConfig}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := protocol.DecodeConfig([]byte(tc.payload), tc.topic); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if protocol.Newer(3, 3) || protocol.Newer(3, 2) || !protocol.Newer(3, 4) {
		t.Fatal("Newer")
	}
}

func TestMembers(t *testing.T) {
	m := protocol.MemberSummaries{Store: "s1", Seq: 2, Members: []protocol.MemberSummary{
		{MemberID: "m1", Balance: 120, Included: map[string]uint64{"r1": 10, "r9": 3}, Spend12m: 45000, Visits12m: 5,
			Retention: &retention.MemberSummary{Status: retention.StatusDue, Segment: retention.SegRegular, PurchaseDays: 5, LastPurchase: "2026-10-01", MeanInterval: 30.5}},
	}}
	b, err := protocol.EncodeMembers(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.DecodeMembers(b, "s1")
	if err != nil || got.Seq != 2 || got.Members[0].Balance != 120 || got.Members[0].Included["r1"] != 10 {
		t.Fatalf("members %+v err %v", got, err)
	}
	if g := got.Members[0]; g.Spend12m != 45000 || g.Visits12m != 5 || g.Retention == nil || *g.Retention != *m.Members[0].Retention {
		t.Fatalf("head office figures lost: %+v retention %+v", g, g.Retention)
	}
	ret := func(r string) string {
		return `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0,"retention":` + r + `}]}`
	}
	tests := []struct {
		name, payload string
		err           error
	}{
		{"other store", `{"v":1,"store":"s2","seq":1,"members":[]}`, protocol.ErrMismatch},
		{"no seq", `{"v":1,"store":"s1","members":[]}`, protocol.ErrMalformed},
		{"repeated member", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0},{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0}]}`, protocol.ErrMalformed},
		{"bad register in included", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0,"included":{"r/1":3}}]}`, protocol.ErrInvalidID},
		{"profile of other member", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0,"member":{"id":"b"}}]}`, protocol.ErrMalformed},
		{"float balance", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1.5,"spend_12m":0,"visits_12m":0}]}`, protocol.ErrMalformed},
		{"version 0", `{"store":"s1","seq":1,"members":[]}`, protocol.ErrVersion},
		{"seq 2^64-1", `{"v":1,"store":"s1","seq":18446744073709551615,"members":[]}`, protocol.ErrMalformed},
		{"balance 2^40+1", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1099511627777,"spend_12m":0,"visits_12m":0}]}`, protocol.ErrMalformed},
		{"balance -2^40-1", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":-1099511627777,"spend_12m":0,"visits_12m":0}]}`, protocol.ErrMalformed},
		{"included 2^64-1", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0,"included":{"r1":18446744073709551615}}]}`, protocol.ErrMalformed},
		{"negative spend", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":-5,"visits_12m":0}]}`, protocol.ErrMalformed},
		{"negative visits", `{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":-1}]}`, protocol.ErrMalformed},
		{"retention status not a word", ret(`{"status":"Due!","segment":"regular","purchase_days":3}`), protocol.ErrMalformed},
		{"retention negative days", ret(`{"status":"due","segment":"regular","purchase_days":-3}`), protocol.ErrMalformed},
		{"retention negative interval", ret(`{"status":"due","segment":"regular","purchase_days":3,"mean_interval_days":-1}`), protocol.ErrMalformed},
		{"retention bad date", ret(`{"status":"due","segment":"regular","purchase_days":3,"last_purchase":"2026-13-01"}`), protocol.ErrMalformed},
		{"retention unknown field", ret(`{"status":"due","segment":"regular","purchase_days":3,"mood":"sad"}`), protocol.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := protocol.DecodeMembers([]byte(tc.payload), "s1"); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}
