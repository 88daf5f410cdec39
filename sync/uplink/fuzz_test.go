package uplink_test

import (
	"context"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// memOutbox is an empty outbox for tests that never publish.
type memOutbox struct{}

var _ uplink.Outbox = memOutbox{}

// FuzzDeliver: nothing arriving from the broker, on any of the topics the
// register subscribes to, can crash the register or move the config version
// backwards.
func FuzzDeliver(f *testing.F) {
	f.Add(uint8(0), []byte(`{"v":1,"register":"r1","watermark":3}`))
	f.Add(uint8(1), storeConfig(5, 10))
	f.Add(uint8(2), []byte(`{"v":1,"scope":"chain","config_version":2}`))
	f.Add(uint8(3), []byte(`{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0}]}`))
	f.Add(uint8(4), []byte(`garbage`))
	f.Add(uint8(0x81), storeConfig(5, 10))
	f.Add(uint8(0x83), []byte(`{"v":1,"store":"s1","seq":1,"members":[{"member_id":"a","balance":1,"spend_12m":0,"visits_12m":0}]}`))
	topics := []string{protocol.AckTopic("s1", "r1"), protocol.StoreConfigTopic("s1"), protocol.ChainConfigTopic(),
		protocol.MembersTopic("s1"), "loyalty/v1/s1/r1/events", "other/topic"}
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		u, err := uplink.New(memOutbox{}, &uplink.Options{Brokers: []string{"tcp://127.0.0.1:1"}, Store: "s1", Register: "r1",
			ConfigVersions: uplink.ConfigVersions{Store: 3}, Keys: hqRing,
			OnConfig:  func(context.Context, protocol.Config) error { return nil },
			OnMembers: func(context.Context, protocol.MemberSummaries) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		topic := topics[int(which&0x7f)%len(topics)]
		if which&0x80 != 0 { // signed, so the fuzzer reaches the decoders
			payload = sealed(topic, payload)
		}
		u.Deliver(context.Background(), topic, payload)
		if s := u.Status(); s.Config.Store < 3 {
			t.Fatalf("config version went from 3 to %d", s.Config.Store)
		}
	})
}

func (memOutbox) Outbox(uint64, int) ([]ledger.OutboxRecord, error) { return nil, nil }
func (memOutbox) Confirm(uint64) error                              { return nil }
func (memOutbox) Confirmed() (uint64, error)                        { return 0, nil }
func (memOutbox) OutboxStats() (int, ledger.OutboxRecord, error) {
	return 0, ledger.OutboxRecord{}, nil
}
func (memOutbox) OutboxNotify() <-chan struct{} { return nil }
