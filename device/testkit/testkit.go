package testkit

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// poll is how often Eventually looks at its condition: short next to any
// deadline a test uses, long enough not to busy-spin the machine.
const poll = 5 * time.Millisecond

// Eventually polls cond until it holds, or fails t (Fatalf) once d has
// passed, naming what it was waiting for.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
			return // only reached with a testing.TB whose Fatalf returns
		}
		time.Sleep(poll)
	}
}

// CI reports whether the tests run in continuous integration (the CI
// environment variable is set to anything but "" or "false"), where every
// real part must be present.
func CI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Missing ends a test that needs a real part it cannot find. part names it
// ("mosquitto", "chromium"), why says what was looked for and how to get it
// ("not on PATH; make testdeps installs it"). Outside CI the test is
// skipped; with CI set it fails, so a missing part never passes silently.
func Missing(t testing.TB, part, why string) {
	t.Helper()
	if CI() {
		t.Fatalf("missing real part %s: %s (CI is set, so this fails instead of skipping)", part, why)
		return
	}
	t.Skipf("missing real part %s: %s (skipped; with CI set this fails)", part, why)
}

// SeedEnv is the environment variable that fixes the seed of randomised
// tests: TEST_SEED=1234 go test ./sync/faulttest -run Reordered.
const SeedEnv = "TEST_SEED"

// Seed returns the seed for a randomised test and logs it with the command
// line that replays it. It is TEST_SEED when set (fixed), otherwise a new
// seed from the clock. A malformed TEST_SEED fails the test.
func Seed(t testing.TB) (seed uint64, fixed bool) {
	t.Helper()
	if v := os.Getenv(SeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned decimal integer", SeedEnv, v)
			return 0, false
		}
		t.Logf("seed %d (fixed by %s)", s, SeedEnv)
		return s, true
	}
	s := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay: %s=%d go test -run '^%s$')", s, SeedEnv, s, t.Name())
	return s, false
}
