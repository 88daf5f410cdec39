package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/loyalty-terminal/loyalty/device/clock"
)

// TestClockEnv must be set to TestClockConsent for loyaltyd to accept
// -test-clock: a test-only clock must never drive a register by accident.
const (
	TestClockEnv     = "LOYALTYD_TEST_CLOCK_CONSENT"
	TestClockConsent = "this-is-a-test"
)

// ErrTestClock: -test-clock without the consent variable, or a clock file
// that cannot be read.
var ErrTestClock = errors.New("daemon: test clock refused")

// TestClockFile is the JSON document a test-only clock reads on every
// reading, so a test can move the clock of a running loyaltyd:
//
//	{"offset_ns": -1764000000000000000, "synced_file": "/tmp/t/synchronized",
//	 "boot_id": "e2e-boot-1", "boot_offset_ns": 0}
//
// The wall time is the real time plus OffsetNS; the clock is trusted while
// SyncedFile exists (the kernel's NTP state is not asked); the boot is
// BootID and the monotonic time CLOCK_BOOTTIME plus BootOffsetNS (a test
// "reboots" with a new id and a negative offset).
type TestClockFile struct {
	OffsetNS     int64  `json:"offset_ns"`
	SyncedFile   string `json:"synced_file"`
	BootID       string `json:"boot_id"`
	BootOffsetNS int64  `json:"boot_offset_ns"`
}

// FileClock is the test-only clock behind loyaltyd's -test-clock flag.
type FileClock struct {
	path string
	mu   sync.Mutex
	last TestClockFile
}

var _ clock.BootClock = (*FileClock)(nil)

// NewTestClock returns the test-only clock reading path. consent is the
// value of TestClockEnv; anything but TestClockConsent is refused.
func NewTestClock(path, consent string) (*FileClock, error) {
	if consent != TestClockConsent {
		return nil, fmt.Errorf("%w: -test-clock is for tests only; set %s=%s to use it", ErrTestClock, TestClockEnv, TestClockConsent)
	}
	c := &FileClock{path: path}
	if _, err := c.read(); err != nil {
		return nil, err
	}
	return c, nil
}

// read reads the file; a file being replaced keeps the last good reading.
func (c *FileClock) read() (TestClockFile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := os.ReadFile(c.path)
	if err == nil {
		var f TestClockFile
		if err = json.Unmarshal(b, &f); err == nil {
			if f.SyncedFile == "" {
				err = errors.New("synced_file is empty")
			} else {
				c.last = f
				return f, nil
			}
		}
	}
	return c.last, fmt.Errorf("%w: %s: %v", ErrTestClock, c.path, err)
}

// Now implements clock.Clock.
func (c *FileClock) Now() (time.Time, bool) {
	f, _ := c.read()
	_, err := os.Stat(f.SyncedFile)
	return time.Now().Add(time.Duration(f.OffsetNS)), f.SyncedFile != "" && err == nil
}

// Boot implements clock.BootClock.
func (c *FileClock) Boot() (string, time.Duration) {
	f, _ := c.read()
	return f.BootID, bootTime() + time.Duration(f.BootOffsetNS)
}
