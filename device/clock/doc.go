// Package clock is the one place time comes from: the Clock interface every
// layer takes as an injected dependency, and System, the machine's clock.
//
// A register is a Raspberry Pi without a real-time clock: it boots in 1970
// and learns the date from NTP. So a clock answers two things, the wall time
// and whether that time can be trusted. Time-based decisions (expiry,
// birthdays, campaigns, consent stamps) are taken only on trusted time;
// code that needs only durations (debounce, idle timeouts) ignores the flag.
//
// The package imports nothing of this module, so the device layer, the
// ledger, sync and the binaries may all import it (cmd/internal/e2e's
// TestLayering holds that).
package clock
