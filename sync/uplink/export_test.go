package uplink

import (
	"context"
	"time"
)

type fakeMsg struct {
	topic   string
	payload []byte
}

func (m fakeMsg) Duplicate() bool   { return false }
func (m fakeMsg) Qos() byte         { return 1 }
func (m fakeMsg) Retained() bool    { return false }
func (m fakeMsg) Topic() string     { return m.topic }
func (m fakeMsg) MessageID() uint16 { return 1 }
func (m fakeMsg) Payload() []byte   { return m.payload }
func (m fakeMsg) Ack()              {}

// Deliver runs one message through the same path as a broker delivery and
// applies config and members synchronously (tests and fuzzing only).
func (u *Uplink) Deliver(ctx context.Context, topic string, payload []byte) {
	u.route(nil, fakeMsg{topic, payload})
	select {
	case m := <-u.down:
		u.apply(ctx, m)
	default:
	}
}

// Backoff exposes the reconnect delay for attempt n.
func (u *Uplink) Backoff(n int) time.Duration { return u.backoff(n) }
