package manager

import (
	"time"

	"github.com/loyalty-terminal/loyalty/device/classify"
)

// Config is the device section of the daemon's configuration. Field tags
// are for go.yaml.in/yaml/v3 (durations as "50ms"). The zero value has no
// devices.
type Config struct {
	// Simulate replaces every serial device (and the serial display) with
	// a pty-backed simulator under SimDir (default "var/dev"): the device
	// opens SimDir/<name>, and a person scans with
	// `echo 4006381333931 > SimDir/<name>-in`. Each device's own Simulate
	// does the same for that device only.
	Simulate bool   `yaml:"simulate"`
	SimDir   string `yaml:"sim_dir"`

	Scanners   []SerialDevice `yaml:"scanners"`
	Magstripes []SerialDevice `yaml:"magstripes"`
	Wiegand    []Wiegand      `yaml:"wiegand"`
	Buttons    []Button       `yaml:"buttons"`
	// Outputs maps output names ("buzzer", "green", "red") to GPIO names.
	Outputs map[string]string `yaml:"outputs"`
	Display Display           `yaml:"display"`

	Classify Classify `yaml:"classify"`
	Backoff  Backoff  `yaml:"backoff"`
}

// SerialDevice is a serial scanner or magstripe reader.
type SerialDevice struct {
	Name string `yaml:"name"`
	// Path is the stable name, e.g. /dev/serial/by-id/usb-...-if00.
	Path     string `yaml:"path"`
	Baud     int    `yaml:"baud"`      // default 9600
	DataBits int    `yaml:"data_bits"` // default 8
	Parity   string `yaml:"parity"`    // none (default), odd, even
	StopBits string `yaml:"stop_bits"` // "1" (default), "1.5", "2"
	// Terminator: cr (default), lf, crlf, or none (frames end after
	// IdleGap of silence).
	Terminator string        `yaml:"terminator"`
	IdleGap    time.Duration `yaml:"idle_gap"`
	Prefix     string        `yaml:"prefix"`  // stripped when present
	AIM        bool          `yaml:"aim"`     // frames carry ]Xm identifiers
	MaxLen     int           `yaml:"max_len"` // default 256
	// Simulate replaces this device with a pty-backed simulator (see
	// Config.Simulate); Path is then not needed.
	Simulate bool `yaml:"simulate"`
}

// Wiegand is a Wiegand reader on two GPIO lines.
type Wiegand struct {
	Name       string        `yaml:"name"`
	D0         string        `yaml:"d0"` // e.g. GPIO17
	D1         string        `yaml:"d1"`
	FrameGap   time.Duration `yaml:"frame_gap"`
	Facilities []uint32      `yaml:"facilities"`
	// Simulate runs the real Wiegand decoder on two in-memory GPIO lines
	// (periph's gpiotest) instead of D0 and D1: Manager.Inject pulses a
	// card ("facility-number", e.g. "123-45678") onto them bit by bit.
	Simulate bool `yaml:"simulate"`
}

// Button is a GPIO push button.
type Button struct {
	Name       string `yaml:"name"`
	Pin        string `yaml:"pin"`
	Action     string `yaml:"action"` // show_points, complete, cancel, redeem
	ActiveHigh bool   `yaml:"active_high"`
}

// Display is the customer display.
type Display struct {
	// Type: "log" (text to the daemon's stdout), "cd5220" or "escpos".
	// Empty means no display.
	Type     string `yaml:"type"`
	Path     string `yaml:"path"`
	Baud     int    `yaml:"baud"`
	CodePage string `yaml:"code_page"` // cp437 (default), cp862, cp866
	Width    int    `yaml:"width"`     // default 20
	// Brightness 1-4 is sent whenever the display is initialised; 0
	// leaves the display's own setting.
	Brightness int `yaml:"brightness"`
	// WriteTimeout bounds one write: a display that takes no byte for
	// this long is reported stuck and retried; default 1s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// Simulate replaces a serial display with a pty-backed simulator
	// (see Config.Simulate).
	Simulate bool `yaml:"simulate"`
}

// Classify configures scan classification.
type Classify struct {
	Members  []classify.MemberPattern `yaml:"members"`
	Embedded []classify.EmbeddedLabel `yaml:"embedded"`
	Controls map[string]string        `yaml:"controls"`
}

// Backoff bounds serial reopen attempts.
type Backoff struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
}
