package e2e_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// TestBonusOncePerMemberChainWide: the first-purchase and birthday
// bonuses are once per member, not once per register ledger, with the
// real loyaltyd and loyalty-hq over mosquitto (the outside tester's
// scenario). Rules: 1 point per unit, first-purchase bonus 50 (at the
// second visit), birthday bonus 100 (clockRules); every sale is 10.00.
//
//   - m1 buys five times at r1 (store s1): the bonus once, at the second
//     sale. At r2 in store s2 (m1 found by card) the sale earns 10
//     (before: 60, the bonus again).
//   - m2, birthday today, buys at r1: 10 + 100 birthday. At r2 the same
//     day: 10 + 50, the first-purchase bonus of the second visit
//     chain-wide, and no second birthday bonus (before: 10 + 100).
//   - r1 is replaced (fresh ledger, same config): once the replacement
//     has head office's summaries, m1's and m2's sales there earn 10
//     each (before: 60 and 110).
//
// Head office ends at 110 for m1 and 170 for m2 (the replacement's
// events wait for its adoption) and holds nothing as a second bonus.
func TestBonusOncePerMemberChainWide(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	h := startHQBinaryRules(t, b, clockRules)
	today := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	reg := func(store, id string) *register {
		r := syncRegisterAt(t, b, store, id)
		newTestClock(t, r, today, true) // rules: clockRules
		return r
	}
	earned := func(r *register, sale, member string) float64 {
		t.Helper()
		e, _ := saleAPI(t, r, sale, member, 1000)["earned"].(float64)
		return e
	}
	r1 := reg("s1", "r1")
	r1.start()
	enrolAPI(t, r1, "m1", "")
	enrolAPI(t, r1, "m2", "1990-12-10")
	var got []float64
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		got = append(got, earned(r1, id, "m1"))
	}
	if want := []float64{10, 60, 10, 10, 10}; !equalFloats(got, want) {
		t.Fatalf("m1 at r1 earned %v, want %v (the bonus at the second visit)", got, want)
	}
	if e := earned(r1, "b1", "m2"); e != 110 {
		t.Fatalf("m2 at r1 earned %v, want 110 (10 + birthday 100)", e)
	}
	waitStatus(t, r1, "drained", drained)
	waitHQ(t, h, "r1's sales", 100, 110)

	r2 := reg("s2", "r2")
	r2.start()
	for _, m := range []string{"m1", "m2"} {
		testkit.Eventually(t, 20*time.Second, "r2 finds "+m+" by its card", func() bool {
			code, _ := r2.api("GET", "/v1/members?alias="+m, nil)
			return code == 200
		})
	}
	if e := earned(r2, "d1", "m1"); e != 10 {
		t.Errorf("m1 at r2 (store s2) earned %v, want 10 (no second first-purchase bonus)", e)
	}
	if e := earned(r2, "d2", "m2"); e != 60 {
		t.Errorf("m2 at r2 (store s2) earned %v, want 60 (10 + the first-purchase bonus of the second visit; no second birthday bonus)", e)
	}
	waitStatus(t, r2, "drained", drained)
	waitHQ(t, h, "r2's sales", 110, 170)

	// r1's card dies: a fresh ledger, the same config.
	if _, err := r1.term(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(r1.dir, "ledger.db")); err != nil {
		t.Fatal(err)
	}
	r1.start()
	testkit.Eventually(t, 20*time.Second, "the replacement has head office's summaries", func() bool {
		return memberBalance(r1, "m1") == 110 && memberBalance(r1, "m2") == 170
	})
	if e := earned(r1, "c1", "m1"); e != 10 {
		t.Errorf("m1 at r1's replacement earned %v, want 10 (no second first-purchase bonus)", e)
	}
	if e := earned(r1, "c2", "m2"); e != 10 {
		t.Errorf("m2 at r1's replacement earned %v, want 10 (no second birthday or first-purchase bonus)", e)
	}
	if st := h.serviceStatus(); st["policy_held"].(float64) != 0 {
		t.Errorf("head office held events: %v\n%s", st, h.logs())
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitHQ waits until head office's balances of m1 and m2 are m1 and m2.
func waitHQ(t *testing.T, h *summHQ, what string, m1, m2 float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b1, b2 := h.balance("m1"), h.balance("m2")
		if b1 == m1 && b2 == m2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("head office with %s: m1 %v, m2 %v; want %v, %v\nstatus %v\n%s", what, b1, b2, m1, m2, h.serviceStatus(), h.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
