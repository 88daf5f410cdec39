// Package protocol is the wire format between registers and head office:
// the MQTT topic layout under the versioned root "loyalty/v1", the
// CloudEvents 1.0 envelope that carries ledger outbox records up, and the
// documents that come down (acknowledgements, config, member summaries).
//
// Register (sync/uplink) and head office (sync/hq) both import this package,
// so the format is defined once. Every decoder here is strict: it enforces a
// size limit, rejects unknown fields and unknown protocol versions, checks
// that identifiers and sequence numbers are consistent with the topic the
// message came from, and never panics on any input (see the fuzz tests).
// Stateful checks (is this config newer than the one in force?) belong to the
// receiver; this package only supplies the comparison helpers.
//
// docs/protocol.md describes the protocol for people; docs/asyncapi.yaml
// describes it for tools.
package protocol
