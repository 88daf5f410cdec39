// Package ledger is the register's durable record of members, sales and
// loyalty points, kept in a single bbolt file. It is the only package tree in
// the module that knows bbolt (ledger/hqstore and ledger/contactlog are its
// head-office siblings).
//
// Invariants (checked by (*Ledger).Check):
//
//   - Every ledger event (sale, refund, void, point event, member change) has
//     a per-register sequence number, strictly increasing without gaps, and a
//     unique id "<register>-<seq>". Sequence numbers, never wall time, order
//     events: a Raspberry Pi has no real-time clock.
//   - A member's materialised balance equals the sum of that member's point
//     events.
//   - Every event is written to the outbox in the same transaction as the
//     operation that caused it, and is removed only up to a watermark that
//     head office has confirmed as durably applied (an MQTT PUBACK is not
//     enough).
//   - Every operation is idempotent by its caller-chosen id (sale id, refund
//     id, adjustment id): a retry returns the first result and changes
//     nothing; the same id with different content is ErrConflict.
//   - An operation returns only after its transaction is durable on disk;
//     a sale is acknowledged to the cashier only after that.
//
// Money is in integer minor units (Money); points are integers (Points).
package ledger
