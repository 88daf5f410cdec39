// Package compat holds the compatibility tests between this release and
// the previous one (named by commit in testdata/previous-release): the
// previous release's loyaltyd and loyalty-hq, built from a temporary git
// worktree, run against this release's over a real mosquitto, both ways,
// with sales flowing, and nothing may be lost (docs/protocol.md, "Upgrade
// order"). It has no code of its own beside the tests.
package compat
