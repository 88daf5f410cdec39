// Package signal drives the register's outputs (buzzer, LEDs) through
// periph gpio.PinOut with named patterns: ok, error and offline. Time is
// injected (a Sleep function) so patterns are tested without waiting.
package signal
