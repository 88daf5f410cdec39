package e2e_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// TestSummariesAfterHeadOfficeRestored: head office (the real binary, bbolt)
// is restored from a backup taken before its last member summaries, so its
// summary counter is below the position the store's registers applied,
// and they would ignore every summary it sends from then on (a member's
// balance at the other register stays stale for ever). The registers'
// statuses name the highest summary version they applied; head office
// rebases the store's stream above it, and a sale at r1 after the
// restore reaches r2's balance (without the rebase it never does: r2
// stays at 250).
func TestSummariesAfterHeadOfficeRestored(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	h := startHQBinary(t, b)
	r1 := syncRegisterAt(t, b, "s1", "r1")
	r1.extraCfg += "  status_interval: 1s\n"
	r1.start()
	r2 := syncRegisterAt(t, b, "s1", "r2")
	r2.extraCfg += "  status_interval: 1s\n"
	r2.start()
	waitBalance := func(r *register, want float64) {
		t.Helper()
		testkit.Eventually(t, 30*time.Second, "m1's balance at the other register", func() bool { return memberBalance(r, "m1") == want })
	}
	enrolAPI(t, r1, "m1", "")
	saleAPI(t, r1, "a1", "m1", 10000) // 100 points
	waitStatus(t, r1, "drained", drained)
	waitBalance(r2, 100)

	db := filepath.Join(h.dir, "hq.db")
	h.term()
	backup, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	for i, id := range []string{"a2", "a3", "a4"} {
		saleAPI(t, r1, id, "m1", 5000) // 50 points each
		waitBalance(r2, 150+50*float64(i))
	}

	// The disk dies; head office comes back from the backup.
	h.term()
	if err := os.WriteFile(db, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	// r1 keeps its confirmed events and sends them again; a new sale
	// after the restore must reach r2's balance.
	saleAPI(t, r1, "a5", "m1", 2000) // 20 points
	waitStatus(t, r1, "drained after the restore", drained)
	testkit.Eventually(t, 30*time.Second, "head office has every sale again", func() bool { return h.balance("m1") == 270 })
	waitBalance(r2, 270)
	if st := h.serviceStatus(); st["summary_rebases"].(float64) < 1 {
		t.Errorf("head office did not count a rebase: %v", st)
	}
}
