package uplink

import (
	"context"
	"time"
)

// Deliver runs one message through the same path as a broker delivery and
// applies config and members synchronously (tests and fuzzing only).
func (u *Uplink) Deliver(ctx context.Context, topic string, payload []byte) {
	u.route(topic, payload, false)
	select {
	case m := <-u.down:
		u.apply(ctx, m)
	default:
	}
}

// Backoff exposes the reconnect delay for attempt n.
func (u *Uplink) Backoff(n int) time.Duration { return u.backoff(n) }
