package brokertest_test

import (
	"fmt"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/broker/brokertest"
)

// A fake connection that records what is published and holds the PUBACK
// until the test completes the token.
func ExampleConn() {
	var pending *brokertest.Token
	conn := &brokertest.Conn{
		PublishFunc: func(topic string, qos byte, _ bool, payload []byte) broker.Token {
			fmt.Printf("publish %s qos %d: %s\n", topic, qos, payload)
			pending = brokertest.NewToken()
			return pending
		},
	}
	tok := conn.Publish("loyalty/v1/s1/r1/events", 1, false, []byte(`[...]`))
	select {
	case <-tok.Done():
		fmt.Println("acked early")
	default:
		fmt.Println("awaiting PUBACK")
	}
	pending.Complete(nil)
	<-tok.Done()
	fmt.Println("PUBACK, error:", tok.Error())
	// Output:
	// publish loyalty/v1/s1/r1/events qos 1: [...]
	// awaiting PUBACK
	// PUBACK, error: <nil>
}
