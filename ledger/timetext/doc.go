// Package timetext writes times as time.RFC3339Nano does, keeping the
// text of the last second it wrote ("2006-01-02T15:04:05" and the zone).
// A batch of events holds many times of the same second (a sale's events,
// a busy till's backlog); each of them then costs a copy and its
// nanoseconds instead of time.Time.AppendFormat (about 100 ns). The
// ledger writes the times inside the events' data through it
// (ledger.OutboxBatch), sync/protocol the events' own times.
package timetext
