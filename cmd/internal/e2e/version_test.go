package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// TestPackageVersionsSortInBuildOrder: .ci/version (used by make deb and
// the binaries' -version) gives Debian versions that dpkg sorts in the order
// the builds were made, tagged or not, so an upgrade never goes backwards.
func TestPackageVersionsSortInBuildOrder(t *testing.T) {
	script, err := filepath.Abs("../../../.ci/version")
	if err != nil {
		t.Fatal(err)
	}
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		testkit.Missing(t, "dpkg", "Debian's package manager is not on $PATH: it compares package versions")
		return
	}
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	version := func() string {
		t.Helper()
		out, err := exec.Command("bash", script, repo).Output()
		if err != nil {
			t.Fatalf(".ci/version: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(n string) {
		if err := os.WriteFile(filepath.Join(repo, "f"), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "f")
		git("commit", "-q", "-m", n)
	}
	git("init", "-q")
	var seen []string
	for i, step := range []string{"c1", "c2", "c3", "tag v1.0.0", "c4", "c5", "dirty", "c6", "tag v1.1.0", "c7", "c8", "c9", "c10", "c11"} {
		switch {
		case strings.HasPrefix(step, "tag "):
			git("tag", strings.TrimPrefix(step, "tag "))
		case step == "dirty":
			if err := os.WriteFile(filepath.Join(repo, "f"), []byte("changed"), 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			commit(step + string(rune('a'+i)))
		}
		seen = append(seen, version())
	}
	if seen[3] != "1.0.0" || seen[8] != "1.1.0" {
		t.Fatalf("tagged builds: %q", seen)
	}
	if !strings.HasSuffix(seen[6], ".dirty") {
		t.Fatalf("dirty build: %q", seen[6])
	}
	for i := 1; i < len(seen); i++ {
		if err := exec.Command(dpkg, "--compare-versions", seen[i-1], "lt", seen[i]).Run(); err != nil {
			t.Errorf("dpkg sorts %q not below %q (builds %d and %d)", seen[i-1], seen[i], i-1, i)
		}
	}
}
