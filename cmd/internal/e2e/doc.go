// Package e2e holds the end-to-end tests of the register: they build the
// real loyaltyd and loyaltyctl binaries once (TestMain) and drive them as a
// cashier, a POS and an installer would, through pseudo-terminal scanners
// and displays, the HTTP API, a real mosquitto and head office, headless
// Chromium for the kiosk page, and kill -9 in the middle of a sale. The
// package has no non-test code.
package e2e
