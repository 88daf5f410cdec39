// Package scanner runs a serial barcode scanner: the serialdev port loop
// (framing, hot-plug, health) with every frame classified into an item,
// member card or control code event, or a reject with a reason.
package scanner
