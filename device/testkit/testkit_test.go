package testkit_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// recorder is a testing.TB whose Fatalf and Skipf record instead of
// stopping the goroutine, so the helpers' verdicts can be asserted.
type recorder struct {
	testing.TB
	fatal, skip, logs []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = append(r.fatal, fmt.Sprintf(f, a...)) }
func (r *recorder) Skipf(f string, a ...any)  { r.skip = append(r.skip, fmt.Sprintf(f, a...)) }
func (r *recorder) Logf(f string, a ...any)   { r.logs = append(r.logs, fmt.Sprintf(f, a...)) }
func (r *recorder) Name() string              { return "TestX" }

func TestMissingFailsUnderCIAndSkipsOtherwise(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{
		{"true", true},
		{"1", true},
		{"", false},
		{"false", false},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			testkit.Missing(r, "mosquitto", "not on PATH")
			got := r.skip
			if tc.wantFail {
				got = r.fatal
			}
			if len(r.fatal)+len(r.skip) != 1 || len(got) != 1 || !strings.Contains(got[0], "mosquitto") {
				t.Fatalf("CI=%q: fatal %q, skip %q; want one %s naming mosquitto", tc.ci, r.fatal, r.skip,
					map[bool]string{true: "failure", false: "skip"}[tc.wantFail])
			}
		})
	}
}

func TestEventually(t *testing.T) {
	r := &recorder{TB: t}
	n := 0
	testkit.Eventually(r, time.Second, "third look", func() bool { n++; return n == 3 })
	if len(r.fatal) != 0 || n != 3 {
		t.Fatalf("condition met on look %d: fatal %q", n, r.fatal)
	}
	testkit.Eventually(r, 20*time.Millisecond, "never", func() bool { return false })
	if len(r.fatal) != 1 || !strings.Contains(r.fatal[0], "never") {
		t.Fatalf("a condition that never holds: fatal %q, want one naming it", r.fatal)
	}
}

func TestSeed(t *testing.T) {
	t.Setenv(testkit.SeedEnv, "42")
	r := &recorder{TB: t}
	if s, fixed := testkit.Seed(r); s != 42 || !fixed || len(r.logs) != 1 || !strings.Contains(r.logs[0], "42") {
		t.Fatalf("TEST_SEED=42: seed %d fixed %v, logs %q", s, fixed, r.logs)
	}
	t.Setenv(testkit.SeedEnv, "")
	r = &recorder{TB: t}
	s, fixed := testkit.Seed(r)
	if fixed || len(r.logs) != 1 || !strings.Contains(r.logs[0], fmt.Sprint(s)) || !strings.Contains(r.logs[0], testkit.SeedEnv) {
		t.Fatalf("no TEST_SEED: seed %d fixed %v, logs %q; want a logged seed and how to replay it", s, fixed, r.logs)
	}
	t.Setenv(testkit.SeedEnv, "x")
	r = &recorder{TB: t}
	if testkit.Seed(r); len(r.fatal) != 1 {
		t.Fatalf("TEST_SEED=x accepted")
	}
}
