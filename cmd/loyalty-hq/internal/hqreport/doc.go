// Package hqreport is head office's retention front end: the
// `loyalty-hq report ...` and `loyalty-hq contacts ...` subcommands. It
// reads purchases (a CDNOW file, a CSV file, or head office's store passed
// in through Env), runs package retention, and writes a terminal summary,
// CSV and JSON exports, a self-contained HTML report with inline SVG charts,
// contact lists, and the CDNOW evaluation document docs/retention-eval.md.
//
// cmd/loyalty-hq only wires: it calls Main (or Run with the store).
package hqreport
