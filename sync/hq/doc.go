// Package hq is head office's side of the MQTT link: it receives every
// register's event stream, applies it durably into sync/hq/hqstore,
// acknowledges what is committed, asks for resends when it sees a gap,
// sends chain-wide member summaries down to the stores, and publishes
// versioned, validated config documents.
//
// # Exactly once, in effect
//
// The subscription uses a persistent session (CleanSession false, a fixed
// client id, QoS 1), so the broker queues events while head office is down.
// paho's message handler only copies each message onto a bounded channel
// and returns: it never touches the disk, so a slow fdatasync can never
// stall paho's network loop (paho #474/#509). The ingest goroutine takes
// everything waiting on the channel (up to Options.MaxBatch events), applies
// it in ONE bbolt transaction (hqstore.Apply), and only after that commit
// hands each register's watermark to the acker goroutine, which publishes
// the acks (QoS 1, coalesced per register, always WaitTimeout). An ack is
// therefore never ahead of the store: a crash between receive and commit
// loses nothing, because the register keeps every event above the acked
// watermark and resends it.
//
// paho PUBACKs a message to the broker once the handler returns, i.e. before
// head office's commit. That is deliberate: PUBACK is not durability anyway
// (mosquitto #1855), holding PUBACKs would cap throughput at the broker's
// max_inflight_messages, and the end-to-end ack above is what registers
// trust.
//
// # Gaps and resends
//
// The store holds events beyond a gap and reports the gap; head office then
// sends an ack with Gap = watermark+1, which asks the register to resend
// from there. Acks, gap requests included, only answer messages a register
// sent: gap requests are rate-limited per register (Options.GapRetry) and
// back off (doubling up to a minute) while the register's watermark does
// not move; nothing is sent on a timer or at start-up (a register waiting
// for an ack resends from its watermark after its AckTimeout, and that
// resend is answered). Acks go at QoS 0, the last plain one per register
// retained, so the broker queues nothing for a register that is off.
//
// # Several instances and shared subscriptions
//
// One store has one writer, and the chain-wide view (balances merged across
// stores) lives in that store, so one instance serves one chain; it ingests
// tens of thousands of events per second on a small machine.
//
// Mosquitto 2.0 supports shared subscriptions: instances that subscribe to
// "$share/<group>/loyalty/v1/+/+/events" each receive a share of the
// messages (Options.Filters). The broker distributes per MESSAGE, not per
// register, so one register's stream is spread over the instances and none
// sees it whole. Correctness would not suffer (a store applies a register's
// events only contiguously, holds the rest and asks for resends), but with
// one store per instance every instance sees gaps all the time, the resends
// multiply, and each holds a different part of every member's balance. So:
//
//   - Partition only along lines members do not cross (e.g. regions that
//     are separate loyalty programmes): each instance has its own store and
//     the filters of its stores ("loyalty/v1/<store>/+/events").
//   - Use a shared group only for a standby that writes the same store
//     after taking it over ("$share/hq/loyalty/v1/+/+/events" on both, the
//     standby connected only once the primary is gone).
//
// # Member summaries
//
// After each commit the members whose chain-wide view changed are marked;
// a summariser goroutine (at most once per Options.SummaryInterval) reads
// their summaries from the store and publishes them to every known store's
// members topic, in messages of at most 500 summaries. Each
// summary carries, per register, the highest sequence of that register's
// events it includes, so a register can overlay its own newer events
// (ledger.ApplyMemberSummary on the register side). The per-store message
// Seq is an epoch (incremented durably at each start) in the high 32 bits
// and a counter in the low 32, so it increases across restarts.
package hq
