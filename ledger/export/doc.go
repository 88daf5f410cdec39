// Package export writes the register ledger's sales and members as JSON
// lines or CSV. The daemon's API streams them over HTTP and loyaltyctl
// writes them straight from a ledger file when no daemon runs; both call
// the same functions, so the two outputs are byte-for-byte the same.
package export
