package config_test

import (
	"fmt"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
)

func ExampleParse() {
	_, err := config.Parse("configs/x.yaml", []byte(`register:
  id: store1-r1
  store_id: store1
devices:
  scanners:
    - name: front
      path: /dev/serial/by-id/usb-scanner-if00
      baud: 9601
      terminatr: cr
`))
	fmt.Println(err)
	// Output:
	// configs/x.yaml:8: devices.scanners[0].baud: 9601 is not a standard baud rate; use one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200
	// configs/x.yaml:9: devices.scanners[0].terminatr: unknown key "terminatr"; allowed keys: name, path, baud, data_bits, parity, stop_bits, terminator, idle_gap, prefix, max_frame, simulate, aim
}

func ExampleLoad() {
	c, err := config.Load("../../../../configs/loyaltyd.dev.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Register.ID, c.Ledger.Path, c.Devices.Scanners[0].Baud, c.API.Listen)
	// Output: dev-r1 var/ledger.db 9600 127.0.0.1:8080
}
