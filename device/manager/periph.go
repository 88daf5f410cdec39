package manager

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// PeriphPins returns a PinFunc backed by periph.io: host.Init runs once on
// first use, then pins are found by name ("GPIO17"). On a machine without
// GPIO, Init succeeds with every driver skipped and the lookup returns
// ErrPinNotFound, so the same binary runs on a laptop.
func PeriphPins() PinFunc {
	var once sync.Once
	var initErr error
	return func(name string) (gpio.PinIO, error) {
		once.Do(func() { _, initErr = host.Init() })
		if initErr != nil {
			return nil, fmt.Errorf("gpio init: %w", initErr)
		}
		p := gpioreg.ByName(name)
		if p == nil {
			return nil, fmt.Errorf("%s: %w", name, ErrPinNotFound)
		}
		return p, nil
	}
}
