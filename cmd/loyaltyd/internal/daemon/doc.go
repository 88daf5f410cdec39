// Package daemon wires loyaltyd together and runs its life as a service:
// config → ledger (with rules and catalogue), devices (scanners, magstripe
// and Wiegand readers, buttons, buzzer and LEDs, the customer display, or
// their simulated stand-ins), the checkout state machine, the sync uplink,
// the local API and the kiosk page.
//
// Run returns when its context is cancelled (SIGTERM in main), after a
// bounded shutdown that stops input first, lets an in-flight sale finish,
// and closes the ledger. Under systemd it reports readiness and pings the
// watchdog (Type=notify); without systemd it logs that and carries on.
// Time-based housekeeping (point expiry) waits until the clock is trusted.
package daemon
