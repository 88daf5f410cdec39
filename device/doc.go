// Package device holds the types shared by the register's hardware layer:
// the typed Event every input device produces, the reasons a device input
// is rejected and the health snapshot of a device. Devices take the
// injected clock.Clock (device/clock) to stamp events.
//
// The hardware itself lives in subpackages, each with one job:
//
//   - frame: pure byte-stream to frame assembly for serial scanners/readers
//   - classify: pure scan classification (item, member card, control code)
//   - cardsafe: payment-card detection and masking (never leak a PAN)
//   - magstripe: track 1/2 parsing for serial magnetic stripe readers
//   - wiegand: pure Wiegand 26/34 decoder plus the periph GPIO adapter
//   - button: debounced GPIO buttons mapped to cashier actions
//   - signal: buzzer and LED patterns (ok, error, offline)
//   - display: CD5220 / Epson ESC/POS pole displays and a log display
//   - serialdev: the serial port loop with hot-plug reopen and health
//   - sim: pseudo-terminal backed simulated scanner and display
//   - manager: starts every configured device and merges their events
//
// Every package is silent by default: a *slog.Logger is passed in through
// Options when a caller wants logs.
package device
