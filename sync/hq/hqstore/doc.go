// Package hqstore is head office's own durable store: every register's event
// stream applied exactly once, per-register watermarks, and the chain-wide
// view of members, balances and purchases built from those streams.
//
// It is a sibling of package ledger and, like it, the only code that knows
// bbolt; sync/hq feeds it and the retention reports read it.
//
// # Ingest
//
// Apply takes a batch of events and applies them in ONE bbolt transaction
// (one pair of fdatasyncs for the whole batch), then returns each touched
// register's watermark: the highest sequence number up to which every event
// of that register is durably applied. Head office acknowledges exactly that
// watermark, and only after Apply has returned, so a register never forgets an
// event head office does not have.
//
// Events are keyed by (register, sequence); the id must be
// "<register>-<seq>". Per event:
//
//   - seq <= watermark: already applied. Same content is a duplicate and is
//     ignored; different content is a conflict: it is recorded (Conflicts)
//     and never overwrites what was applied.
//   - seq == watermark+1: applied, then any held successors are applied too.
//   - seq > watermark+1: a gap. The event is HELD durably (up to
//     Options.MaxHeld per register, none further than four times MaxHeld
//     (at least 65,536) beyond the watermark) and applied as soon as the
//     gap is filled; past either bound it is dropped, which is safe
//     because it is not covered by the watermark and the register
//     resends it. Held events keep the incarnation they came from: when
//     head office follows another one they go to review instead. The result
//     reports the gap so the caller can ask the register to resend from the
//     watermark.
//
// Holding rather than dropping means a reordered delivery (common after a
// reconnect) costs no second transfer; the cap bounds the disk a register
// that skips sequence numbers could use.
//
// A malformed event (bad id, sequence 0, data that does not decode for its
// type) is rejected with an error naming it, changes nothing, and does not
// advance the watermark: the register's stream stops there and the
// rejection is visible in the result, the log and Status, because applying
// past it would silently lose whatever it carried.
//
// # Chain-wide view
//
// Point events move each member's chain-wide balance; member events merge
// profiles and aliases (an alias that two stores enrolled for different
// members is a conflict, and the first owner keeps it); sales, refunds and
// voids of members feed a purchase index (EachPurchase) for the retention
// engine. For every member the store remembers, per register, the highest
// sequence of that register's events it has included, which is what a
// member summary sent down carries (see Summary).
//
// A redemption that drives a chain-wide balance below zero can only happen
// when two registers spent the same points while offline (each register only
// spends what head office's summary plus its own events allow); each such
// event is recorded in the double-spend report (DoubleSpends), with how far
// it went below zero and whether that exceeds the configured offline
// redemption limit.
package hqstore
