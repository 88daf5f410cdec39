package backoff_test

import (
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/device/backoff"
)

func ExamplePolicy_Delay() {
	reopen := backoff.Policy{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond}
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Println(reopen.Delay(attempt))
	}
	// With Jitter, each delay is drawn from [Min, the value above].
	// Output:
	// 100ms
	// 200ms
	// 400ms
	// 500ms
	// 500ms
}
