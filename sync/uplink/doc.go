// Package uplink is the register side of the link to head office.
//
// An Uplink drains the ledger's outbox to the broker in sequence order as
// CloudEvents (sync/protocol), QoS 1, with a bounded window of messages
// awaiting PUBACK, and forgets an event only when head office's
// acknowledged watermark covers it: then it calls Outbox.Confirm. The ack
// must be signed by a pinned head-office key (checked lazily, once per
// Confirm: acksig.go) and confirms at most what this process published.
// A PUBACK
// proves nothing about durability (the broker may lose the message), so the
// ledger is the only queue: paho gets a fresh in-memory store per
// connection and every resend comes from the ledger. After a reconnect, a
// gap request or a long silence from head office the uplink rewinds to the
// watermark and resends; a gap request that names its end (gap_to) is
// answered with that window alone. Head office drops duplicates by
// (source, id).
//
// The uplink only reads the ledger and calls Confirm, so it never blocks or
// slows a sale. Status reports "online/offline, N pending, oldest T, last
// ack, watermark" for the daemon and the cashier's signal.
//
// Downstream, it validates every config and member-summary message
// (size, schema, version, order) before handing it to the daemon's
// callbacks; a rejected config leaves the previous one in force and is
// reported in Status. A store catalogue too large for one message comes
// in signed pieces (docs/protocol.md "Catalogue pieces"): the document
// goes to OnPiecedConfig, which stages it; the uplink then subscribes to
// the store's pieces (asking again when none came for PieceTimeout) and
// hands each to OnPiece, which puts the version in force with the last.
// Nothing received from the broker can crash the
// register: decoders are strict and fuzzed, and handlers recover.
//
// The uplink holds a sync/broker Conn, not a paho client: Options.Dial
// (default broker.Dial, over paho) makes each connection, and the logic
// tests drive a session through a brokertest fake under testing/synctest.
// Each connection is a session whose loop applies acks (confirming head
// office's watermark, rewinding on a gap request), fills the window and
// waits (session.go).
//
// Connection management is the uplink's own (paho's auto-reconnect and
// connect-retry are off): exponential backoff with full jitter, so a fleet
// of registers does not reconnect in lockstep after a broker restart, and
// every MQTT wait is a WaitTimeout. Publishing happens only on a live
// connection, so paho's "publish before first connect" pitfall cannot
// occur.
package uplink
