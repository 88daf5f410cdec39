// Package serialdev runs one serial input device (barcode scanner or
// magstripe reader): it opens the port by its configured path, feeds bytes
// to a frame.Assembler, turns frames into events through a handler, and
// survives hot-plug: when the device disappears (read error, EIO, path
// gone) it is reported unhealthy and reopened by the same path with
// exponential backoff, and becomes healthy again when it returns. Health
// is a snapshot that is safe to read at any time.
package serialdev
