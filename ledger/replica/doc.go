// Package replica keeps a second copy of the register's ledger on another
// device (a USB stick or a second partition), so a dead SD card loses at
// most the last second or so of sales, and restores a ledger from it.
//
// The copy is two files in the device's folder (Options.Dir):
//
//   - ledger.snapshot, a consistent copy of the ledger file (bbolt's
//     tx.WriteTo, through ledger.Snapshot) at some sequence number s,
//     taken at start, every SnapshotEvery, when the log has grown past
//     MaxLog and after any failure (written to a temporary file, synced,
//     renamed, directory synced);
//   - ledger.log, a header line {"incarnation","after": s} and then one
//     line per event after s: the ledger's outbox records, appended and
//     synced every Interval (default 1 s). An event's record carries
//     everything head office applies, so the events after the snapshot
//     are not lost with the card.
//
// This is litestream's idea (a base copy plus a stream of what changed)
// made small for bbolt, which has no write-ahead log to ship: the ledger's
// outbox is the stream.
//
// A second device that is full, missing or failing (ENOSPC, EIO) is a
// warning in Status, never an outage: sales go on, the copy is retried
// every RetryEvery and starts again with a snapshot. Status says how many
// events a card death would lose now (Behind: those not yet on the
// device).
//
// Restore builds a ledger file from the copy: the snapshot, then the
// logged events after it handed to ledger.Recover, which appends them to
// the outbox so they reach head office (the sales, members and balances
// they carry come back through head office's summaries). It is
// `loyaltyctl ledger restore-replica` (docs/operations.md).
package replica
