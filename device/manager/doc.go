// Package manager starts every configured device of the register (serial
// scanners and magstripe readers, Wiegand readers, buttons, outputs and the
// customer display), delivers their events on one channel, and answers
// Health for all of them. With Config.Simulate it backs the serial devices
// with pseudo-terminals (package sim) so the daemon runs on a laptop.
//
// A device that fails (path missing, port busy, unplugged, GPIO pin not on
// this host) is reported in Health and retried or skipped; the other
// devices carry on.
package manager
