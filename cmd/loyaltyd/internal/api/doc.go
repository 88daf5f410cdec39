// Package api is loyaltyd's local HTTP JSON API, so an existing POS (and
// loyaltyctl) can use the register without scanners: record a sale
// (idempotent by sale id), look up or enrol a member, update consent,
// redeem, refund (whole or by line), void, drive the checkout, read status,
// take a consistent backup, export, /metrics (Prometheus text) and
// /healthz.
//
// Only local callers (loopback TCP or the unix socket) are served by
// default; anyone else must present the configured bearer token. Every
// error is JSON {"code": "stable_code", "message": "a sentence a cashier can
// act on"}; bodies are size-limited and decoded strictly. The endpoints are
// documented in docs/api.md and docs/openapi.yaml.
package api
