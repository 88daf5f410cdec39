// Package contactlog records which members head office contacted, about
// what and when, in a small bbolt file, so the reminder caps and "already
// greeted" checks of package retention hold across runs and across the
// CLI and the HTTP API.
//
// A record is keyed by member, day and kind: marking the same contact twice
// (a retried request, a re-run script) stores it once.
package contactlog
