package display_test

import (
	"context"
	"os"

	"github.com/loyalty-terminal/loyalty/device/display"
)

func ExampleLog() {
	d := display.NewLog(os.Stdout, 20)
	_ = d.Show(context.Background(), [2]string{"Hello Dana", "Points: 1240"})
	// Output:
	// +----------------------+
	// | Hello Dana           |
	// | Points: 1240         |
	// +----------------------+
}
