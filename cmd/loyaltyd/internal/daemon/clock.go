package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loyalty-terminal/loyalty/device/clock"
)

// DefaultSyncedFile is the flag file systemd-timesyncd creates once the
// clock has been synchronised since boot.
const DefaultSyncedFile = "/run/systemd/timesync/synchronized"

// TrustedClock is a clock.Clock that reports the wall time as trusted once
// the system clock is known to be synchronised: systemd-timesyncd's flag
// file exists, or the kernel says NTP is synced (adjtimex without
// STA_UNSYNC). A Raspberry Pi has no RTC and boots in 1970 until then.
type TrustedClock struct {
	// SyncedFile overrides DefaultSyncedFile ("-" disables the file check).
	SyncedFile string
	// TrustHost reports the clock as trusted always (config
	// clock.trust_host, development machines only).
	TrustHost bool
	// Adjtimex reports kernel NTP sync; nil means the real adjtimex.
	Adjtimex func() bool
	// Now overrides time.Now (tests).
	NowFunc func() time.Time
}

var _ clock.BootClock = (*TrustedClock)(nil)

// Boot implements clock.BootClock: the kernel's boot id and CLOCK_BOOTTIME
// (monotonic, counting suspend, never stepped with the wall clock).
func (c *TrustedClock) Boot() (string, time.Duration) {
	return kernelBootID(), bootTime()
}

// kernelBootID is the kernel's random id of this boot, read once (it
// cannot change while the process runs); "" when unknown (then untrusted
// times are corrected as of an earlier boot).
var kernelBootID = sync.OnceValue(func() string {
	return readBootID(os.Getenv("CREDENTIALS_DIRECTORY"), "/proc/sys/kernel/random/boot_id")
})

// readBootID reads the boot id from the credential boot_id in credDir
// (systemd's LoadCredential=boot_id:/proc/sys/kernel/random/boot_id, for
// a unit whose ProcSubset=pid hides /proc/sys), else from procFile. Only
// the kernel's form (a UUID, 36 characters of hex digits and dashes) is
// taken; anything else reads as unknown.
func readBootID(credDir, procFile string) string {
	var paths []string
	if credDir != "" {
		paths = append(paths, filepath.Join(credDir, "boot_id"))
	}
	for _, p := range append(paths, procFile) {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if id := strings.TrimSpace(string(b)); isUUID(id) {
			return id
		}
	}
	return ""
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'):
			return false
		}
	}
	return true
}

// bootTime is CLOCK_BOOTTIME.
func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Now implements clock.Clock.
func (c *TrustedClock) Now() (time.Time, bool) {
	now := time.Now
	if c.NowFunc != nil {
		now = c.NowFunc
	}
	return now(), c.Trusted()
}

// Trusted reports whether the clock is synchronised.
func (c *TrustedClock) Trusted() bool {
	if c.TrustHost {
		return true
	}
	f := c.SyncedFile
	if f == "" {
		f = DefaultSyncedFile
	}
	if f != "-" {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	adj := c.Adjtimex
	if adj == nil {
		adj = kernelSynced
	}
	return adj()
}

// kernelSynced asks the kernel whether NTP discipline is in sync.
func kernelSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
