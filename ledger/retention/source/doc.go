// Package source converts ledger records (from a register's ledger or head
// office's store) into the plain input of package retention.
package source
