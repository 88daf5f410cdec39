// Package hq is head office's side of the MQTT link: it receives every
// register's event stream, applies it durably into sync/hq/hqstore,
// acknowledges what is committed, asks for resends when it sees a gap,
// sends chain-wide member summaries down to the stores, and publishes
// versioned, validated config documents (Publish: never a version below
// head office's record; a large store catalogue in signed pieces;
// Republish puts the record back on a rebuilt broker).
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
// The store holds events beyond a gap and reports the gap and the events
// it waits for. When the gap is still open in the store after
// Options.GapGrace (another worker may have closed it meanwhile), head
// office sends an ack with Gap = watermark+1 and, to registers that list
// it in their status, GapTo = the last event before the first held one,
// which asks the register to resend that window. Acks, gap requests
// included, only answer messages a register
// sent: gap requests are rate-limited per register (Options.GapRetry) and
// back off (doubling up to a minute) while the register's watermark does
// not move; nothing is sent on a timer or at start-up (a register waiting
// for an ack resends from its watermark after its AckTimeout, and that
// resend is answered). Acks go at QoS 0, the last plain one per register
// retained, so the broker queues nothing for a register that is off.
//
// # Registers' status
//
// Head office also subscribes to every register's retained status (and so
// its last will) and keeps the last one of each in memory (Service.Fleet),
// for the fleet page of loyalty-hq serve; nothing of it is stored.
//
// # Several instances and shared subscriptions
//
// On a bbolt store one instance serves one chain (the file has one
// writer). On a shared store (PostgreSQL, sync/hq/pgstore) several
// workers run at once: Options.Group subscribes the events filters as
// "$share/<group>/..." with a clean session, each worker has its own
// client id, each batch is applied in one transaction that serialises its
// registers and members, and acks carry the store's watermark whichever
// worker sends them. Member summaries are sent by one worker, the one
// Options.Coordinator elects (pgstore.Coordinator); the others leave
// their changes to it. A broker that spreads a shared subscription per
// message (mosquitto 2.0) makes workers see gaps that another worker is
// about to close: the grace, the look at the store before asking, and
// resend windows keep that from becoming resends of whole streams, but a
// broker that keeps a client's messages on one worker (EMQX's
// hash_clientid) spares the held events and the lock waits (docs/hq.md
// "Two deployments").
//
// # Member summaries
//
// The store marks the members whose chain-wide view changed, and the
// stores they were touched from, in the commit itself. A summariser
// goroutine (at most once per Options.SummaryInterval) takes the marked
// members (hqstore TakeSummaries), places each at a new position of the
// streams of the stores where it shopped within Options.SummaryMonths, and
// publishes each store's part (from, seq] to the store's members topic in
// messages of at most 500 summaries; the broker's confirmation moves the
// store's sent position, so a restart publishes only what was never
// confirmed. Registers ask for their store's stream from their own
// position (catchup topic; answered on their own members topic) and about
// cards they do not know (lookup; answered, signed, on their found topic).
// Each summary carries, per register, the highest sequence of that
// register's events it includes, so a register can overlay its own newer
// events (ledger.ApplyMemberSummary on the register side).
package hq
