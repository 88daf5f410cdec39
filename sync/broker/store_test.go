package broker_test

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/loyalty-terminal/loyalty/sync/broker"
)

// TestStoreGetCopiesPublish: the store keeps its own copy of a PUBLISH
// (the caller's goes on to the connection's writer, which changes it) and
// hands out copies (paho's resume marks what it gets a duplicate); other
// packets come back as stored.
func TestStoreGetCopiesPublish(t *testing.T) {
	s := broker.NewStore()
	s.Open()
	defer s.Close()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 7, "t", []byte("x")
	s.Put("o.7", pub)
	// The writer sets fields of the packet it was handed after Put.
	pub.RemainingLength = 99
	got := s.Get("o.7").(*packets.PublishPacket)
	if got == pub || got.RemainingLength == 99 {
		t.Fatal("the store kept the caller's PUBLISH, not its own copy")
	}
	got.Dup = true
	if again := s.Get("o.7").(*packets.PublishPacket); again == got || again.Dup {
		t.Fatal("marking a handed-out copy a duplicate changed the stored packet")
	}
	if got.MessageID != 7 || got.TopicName != "t" || string(got.Payload) != "x" || got.Qos != 1 {
		t.Fatalf("copy differs: %+v", got)
	}
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID = 8
	s.Put("o.8", sub)
	if s.Get("o.8") != sub {
		t.Fatal("a SUBSCRIBE should come back as stored")
	}
}

// TestStoreKeepsReceivedPublishAsItIs: a received PUBLISH (paho's key
// "i.<id>") is never written by paho, so it is stored without a copy
// (a subscriber stores one per message).
func TestStoreKeepsReceivedPublishAsItIs(t *testing.T) {
	s := broker.NewStore()
	s.Open()
	defer s.Close()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 9, "t", []byte("x")
	s.Put("i.9", pub)
	if s.Get("i.9") != pub {
		t.Fatal("a received PUBLISH was copied")
	}
	s.Put("o.9", pub)
	if s.Get("o.9") == pub {
		t.Fatal("an outbound PUBLISH was not copied")
	}
}
