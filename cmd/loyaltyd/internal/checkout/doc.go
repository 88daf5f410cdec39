// Package checkout is the register's checkout flow as an explicit state
// machine: idle, basket, member attached, redeem and receipt.
//
// Events go in (a scan, a button, an API call, a clock tick) and effects
// come out (text for the customer display, ok/error/offline signals, the
// view the kiosk page shows, the recorded sale). The machine does no device
// or network I/O itself: it reads the catalogue and members and records
// sales through the small interfaces Catalog, Members and Recorder, so it is
// table-tested against real ledger files or simple fakes alike. The daemon
// applies the effects to the devices in the order they were produced.
//
// A sale is recorded by the ledger before the machine signals ok: the sale
// id is fixed when the basket opens, so retrying a failed complete is
// idempotent, and a second complete after success records nothing.
package checkout
