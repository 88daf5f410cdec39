// Package config reads the YAML configuration of loyaltyd, the register
// daemon: which register and store it is, where its ledger lives, the points
// rules, the item catalogue, the devices (serial scanners, magstripe and
// Wiegand readers, GPIO buttons and outputs, the customer display), how scans
// are classified, the local API, the kiosk page, sync to head office, and
// logging.
//
// [Parse] and [Load] decode strictly (an unknown key is an error), apply the
// documented defaults for omitted keys, and validate everything. Every
// problem is reported at once, each as
//
//	file:line: key.path: what is wrong; what is allowed
//
// e.g. "configs/x.yaml:12: devices.scanners[0].baud: 9601 is not a standard
// baud rate; use one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200".
// The error is an [Errors] value wrapping [ErrInvalid].
//
// The structs are plain data with YAML tags; the daemon maps them onto the
// options of the device, ledger and sync packages. The defaults are listed
// on each field and in configs/README.md.
package config
