// Package button reads GPIO push buttons (e.g. "show my points",
// "complete sale", "cancel", "redeem") with debouncing. The Debouncer is
// pure (levels and times in, presses out); Watcher adapts periph gpio.PinIn
// lines to it and emits device.KindButton events with the button's action.
package button
