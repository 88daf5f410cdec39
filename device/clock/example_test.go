package clock_test

import (
	"fmt"

	"github.com/loyalty-terminal/loyalty/device/clock"
)

// A component takes an optional Clock and falls back to the system clock.
func ExampleOr() {
	var injected clock.Clock // nil: nothing injected
	c := clock.Or(injected)
	_, trusted := c.Now()
	fmt.Println(trusted)
	// Output: true
}
