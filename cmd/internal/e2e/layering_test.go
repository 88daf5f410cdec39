package e2e_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering holds the import directions docs/ARCHITECTURE.md promises:
// nothing under ledger/ imports sync/, nothing under device/ imports the
// ledger or sync, and loyaltyctl talks to the daemon through the API client,
// never the server. internal/clock (the one Clock interface and the system
// clock) and the other role-free helpers under internal/ are the allowed
// exception every layer imports: they sit outside the layers at the module
// root and import nothing of this module.
func TestLayering(t *testing.T) {
	const mod = "github.com/loyalty-terminal/loyalty/"
	for _, tc := range []struct {
		pkgs      string
		forbidden []string
	}{
		{mod + "ledger/...", []string{mod + "sync/", mod + "cmd/", mod + "device/"}},
		{mod + "device/...", []string{mod + "sync/", mod + "cmd/", mod + "ledger"}},
		{mod + "sync/...", []string{mod + "cmd/"}},
		{mod + "cmd/loyaltyctl", []string{mod + "cmd/loyaltyd/internal/api", mod + "sync/"}},
		{mod + "internal/...", []string{mod + "sync/", mod + "cmd/", mod + "ledger", mod + "device"}},
	} {
		out, err := exec.Command("go", "list", "-deps", "-test=false", tc.pkgs).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", tc.pkgs, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range tc.forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s (forbidden prefix %s)", tc.pkgs, dep, f)
				}
			}
		}
	}
}
