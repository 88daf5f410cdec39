package e2e_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering holds the import directions docs/ARCHITECTURE.md promises:
// nothing under ledger/ imports sync/ or the device drivers, nothing under
// device/ imports the ledger or sync, and loyaltyctl talks to the daemon
// through the API client, never the server. device/clock (the one Clock
// interface: the register's wall clock and whether NTP has made it
// trustworthy) is the allowed exception: every layer takes a Clock, and the
// package imports nothing of this module. device/backoff (retry delays,
// also used by sync/uplink) imports nothing of this module either, nor does
// device/cardsafe, which the ledger uses to refuse card numbers at its
// doors as the scanner does.
func TestLayering(t *testing.T) {
	const mod = "github.com/loyalty-terminal/loyalty/"
	// device/testkit is used by tests and test helpers (go list -test=false
	// follows only the latter, such as ledger/ledgertest/powerfs).
	allowed := map[string]bool{mod + "device/clock": true, mod + "device/cardsafe": true, mod + "device/testkit": true}
	for _, tc := range []struct {
		pkgs      string
		forbidden []string
	}{
		{mod + "ledger/...", []string{mod + "sync/", mod + "cmd/", mod + "device/"}},
		{mod + "device/...", []string{mod + "sync/", mod + "cmd/", mod + "ledger"}},
		{mod + "sync/...", []string{mod + "cmd/"}},
		{mod + "cmd/loyaltyctl", []string{mod + "cmd/loyaltyd/internal/api", mod + "sync/"}},
		{mod + "device/clock", []string{mod}},
		{mod + "device/backoff", []string{mod}},
		{mod + "device/cardsafe", []string{mod}},
		{mod + "device/testkit", []string{mod}},
	} {
		out, err := exec.Command("go", "list", "-deps", "-test=false", tc.pkgs).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", tc.pkgs, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if allowed[dep] && dep != tc.pkgs {
				continue
			}
			for _, f := range tc.forbidden {
				if strings.HasPrefix(dep, f) && dep != tc.pkgs {
					t.Errorf("%s depends on %s (forbidden prefix %s)", tc.pkgs, dep, f)
				}
			}
		}
	}
}
