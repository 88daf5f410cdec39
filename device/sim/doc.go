// Package sim provides simulated serial devices backed by Linux
// pseudo-terminals, so the daemon and the tests run the same serial code
// path as on real hardware.
//
// A simulated scanner opens a pty pair: the daemon opens the slave side
// (by its /dev/pts/N path, or by a stable symlink such as var/dev/scanner0)
// exactly like a real /dev/ttyACM0. A scan is injected by writing to the
// master side, either from Go (Scanner.Inject), or by a person through a
// FIFO the simulator reads:
//
//	echo 4006381333931 > var/dev/scanner0-in
//
// Each line written to the FIFO becomes one scan with the configured
// terminator. Writing to the /dev/pts/N path itself does not work: bytes
// written to a pty slave travel to the master (towards the "scanner"), not
// to the program reading the slave, and the daemon holds the slave
// exclusively (TIOCEXCL).
//
// Unplug closes the master (the reader sees "Port has been closed", as with
// a pulled USB cable) and removes the link; Replug makes a new pty and
// points the same link at it, like udev's /dev/serial/by-id names.
//
// A simulated display is a pty whose master side is read back, so the
// bytes the daemon sends to a pole display can be checked or shown.
package sim
