// Package wiegand reads Wiegand 26- and 34-bit card readers wired to two
// GPIO lines (D0, D1). The Decoder is pure: it is fed (line, edge, time)
// and checks bit count, parity and the silent gap that ends a frame, so it
// is tested on recorded and corrupted frames. Reader adapts two periph
// gpio.PinIn lines to it.
package wiegand
