package storetest

import (
	"fmt"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// The review list's cases.
func init() {
	type c = struct {
		name string
		run  func(t *testing.T, open Opener)
	}
	cases = append(cases,
		c{"ReviewInOrder", testReviewOrder},
	)
}

// testReviewOrder: Review lists by register, incarnation and sequence
// number, the policy's holds merged in (not first).
func testReviewOrder(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	s.SetPolicy(newTestPolicy(t, ledgertest.NewClock(t0, true)))
	// The policy holds the adjustment, and the first events of ra and rc
	// (points earned without a sale).
	apply(t, s, pts("rb", 1, ledger.KindAdjust, "m1", 1_000_000, ""))
	a1 := Earn("ra", 1, "m2", 1)
	a1.Incarnation = "aaaa"
	a2 := Earn("ra", 2, "m2", 1)
	a2.Incarnation = "bbbb" // another incarnation: held for review
	c1 := Earn("rc", 1, "m3", 1)
	c1.Incarnation = "aaaa"
	c2 := Earn("rc", 2, "m3", 1)
	c2.Incarnation = "bbbb"
	apply(t, s, a1, a2, c1, c2)
	held, err := s.Review()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range held {
		got = append(got, fmt.Sprintf("%s/%s/%d/%s", h.Register, h.Incarnation, h.Seq, h.Reason))
	}
	pol, inc := hqstore.ReviewPolicy, hqstore.ReviewIncarnation
	want := []string{"ra/aaaa/1/" + pol, "ra/bbbb/2/" + inc, "rb//1/" + pol, "rc/aaaa/1/" + pol, "rc/bbbb/2/" + inc}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("review %v, want %v", got, want)
	}
}
