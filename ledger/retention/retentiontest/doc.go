// Package retentiontest generates a chain's member base with known
// rhythms for the retention tests: weekly, biweekly, monthly and quarterly
// buyers, one-time buyers, members who stop, members who never buy, probes
// with exact intervals, consent per channel with withdrawals, and
// birthdays over the year (some without a year, one on 29 February). The
// generator is deterministic for a seed, so tests can name members and
// dates.
package retentiontest
