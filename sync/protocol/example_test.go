package protocol_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

func Example() {
	rec := ledger.OutboxRecord{Seq: 42, ID: "r1-42", Type: ledger.OutPoints,
		WallTime: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), ClockTrusted: true,
		Data: json.RawMessage(`{"id":"r1-42","points":12}`)}
	payload, _ := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord("s1", "r1", rec)})
	fmt.Println(protocol.EventsTopic("s1", "r1"))

	// Head office side: the topic names the register; the decoder checks
	// every event against it.
	t, _ := protocol.ParseTopic(protocol.EventsTopic("s1", "r1"))
	evs, err := protocol.DecodeEvents(payload, t.Store, t.Register)
	fmt.Println(len(evs), evs[0].ID, evs[0].Type, evs[0].Sequence, err)

	ack, _ := protocol.EncodeAck(protocol.Ack{Register: "r1", Watermark: 42})
	fmt.Println(string(ack))
	// Output:
	// loyalty/v1/s1/r1/events
	// 1 r1-42 org.loyalty.points.event 42 <nil>
	// {"v":1,"register":"r1","watermark":42}
}
