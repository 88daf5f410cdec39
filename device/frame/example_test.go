package frame_test

import (
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/device/frame"
)

func Example() {
	a := frame.New(frame.Options{Terminator: frame.CRLF})
	now := time.Now()
	var out []frame.Output
	// One scan split over two reads, then two scans back to back.
	out = a.Feed([]byte("40063813"), now, out)
	out = a.Feed([]byte("33931\r\n96385074\r\n036000291452\r\n"), now, out)
	for _, o := range out {
		fmt.Println(o.Frame.Data)
	}
	// Output:
	// 4006381333931
	// 96385074
	// 036000291452
}
