// Package faulttest holds the cross-package fault tests of the register to
// head office link: real mosquitto processes (sync/mosquittotest), real
// register ledgers (ledger), the register's uplink (sync/uplink) and the
// real head office (sync/hq over sync/hq/hqstore), with faults injected
// from outside: the broker killed and restarted mid-drain, the broker away
// while a register keeps selling, the register SIGKILLed between the
// broker's PUBACK and head office's ack, head office down for a while, a
// half-open connection (toxiproxy black-holing traffic on loopback), and
// duplicated and reordered deliveries. In every case head office must end
// with every event exactly once, each register's order intact, and
// balances equal on both sides.
//
// It also holds the drain benchmark (RATIO drain_vs_raw_paho end to end
// and RATIO uplink_vs_raw_batched to an in-memory acknowledger, both over
// raw paho publishing the same batches) and the commit-to-head-office
// latency report.
//
// The package has no non-test code beyond this file. Long variants run
// with `go test ./sync/faulttest -long`.
package faulttest
