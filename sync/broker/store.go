package broker

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// NewStore is paho's in-memory message store, except that it keeps a
// private copy of each PUBLISH packet and hands out copies of it.
//
// Why: when paho reconnects by itself (head office's client does), its
// resume marks every stored PUBLISH as a duplicate (p.Dup = true) and sends
// it again, while the new connection's writer may be encoding the very same
// packet, because the application's Publish handed that pointer both to the
// store and to the writer (which also sets its RemainingLength). paho
// v1.5.1 does both on one pointer: a data race the race detector reports
// (seen in TestWorkersSurviveFaults across a broker restart). With copies,
// the stored packet is touched by nobody, and resume marks and sends its
// own; the bytes on the wire are the same.
func NewStore() mqtt.Store { return copyingStore{mqtt.NewMemoryStore()} }

type copyingStore struct{ *mqtt.MemoryStore }

// Put stores a copy of an outbound PUBLISH (paho stores it before handing
// the original to the connection's writer, so the copy is taken before any
// write). A received PUBLISH (key "i.<id>") is stored as it is: paho never
// writes it, and a subscriber stores one per message.
func (s copyingStore) Put(key string, p packets.ControlPacket) {
	if outbound(key) {
		p = copyPublish(p)
	}
	s.MemoryStore.Put(key, p)
}

// Get hands out a copy of a stored outbound PUBLISH.
func (s copyingStore) Get(key string) packets.ControlPacket {
	p := s.MemoryStore.Get(key)
	if outbound(key) {
		p = copyPublish(p)
	}
	return p
}

// outbound reports whether key is paho's key of an outbound packet
// ("o.<id>"; received ones are "i.<id>").
func outbound(key string) bool { return len(key) >= 2 && key[:2] == "o." }

// copyPublish copies a PUBLISH packet; other packets are returned as they
// are. The payload is shared: nobody writes it after Publish.
func copyPublish(p packets.ControlPacket) packets.ControlPacket {
	if pub, ok := p.(*packets.PublishPacket); ok {
		cp := *pub
		return &cp
	}
	return p
}
