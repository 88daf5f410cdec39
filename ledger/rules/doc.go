// Package rules computes loyalty points from a sale, purely: no I/O, no
// clock of its own, no globals. A RuleSet is a versioned document (from the
// register's config or sent by head office); the ledger evaluates the rule
// set in force when a sale is recorded and stores the version with every
// point event, so a later rule change never alters points already earned.
package rules
