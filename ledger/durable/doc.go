// Package durable writes files so that a power cut leaves either the old
// or the new content, never an empty or half-written file: write a
// temporary file beside the target, fsync it, rename it over the target,
// fsync the directory. SyncDir makes a newly created file's directory
// entry durable (a file whose data was synced but whose entry was not is
// gone after a power cut). Every side file written next to a ledger or a
// head-office store goes through here; the power-cut tests
// (ledger/ledgertest/powerfs) hold it to that.
package durable
