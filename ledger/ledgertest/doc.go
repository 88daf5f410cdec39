// Package ledgertest helps tests of code that uses the ledger; see Open,
// Clock and Engine.
package ledgertest
