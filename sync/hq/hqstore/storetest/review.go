package storetest

import (
	"fmt"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// The review list's cases: what a batch holds counts at once, and the
// order the list is in.
func init() {
	type c = struct {
		name string
		run  func(t *testing.T, open Opener)
	}
	cases = append(cases,
		c{"HoldCountsTheBatchsOwnHolds", testHoldCountsBatch},
		c{"ReviewInOrder", testReviewOrder},
	)
}

func succEv(seq uint64, member string, n ledger.Points, inc, prev string) hqstore.Event {
	e := Earn("r1", seq, member, n)
	e.Incarnation, e.PrevIncarnation = inc, prev
	return e
}

// testHoldCountsBatch: a succession retires incarnation aaaa's events
// held beyond the gap (6 and 7) to review in the same batch that holds
// aaaa's 8 as another incarnation's. The Hold told to aaaa counts all
// three held (the events this batch held included), and MaxHeld counts
// them too: with MaxHeld 2, aaaa's 8 is not kept.
func testHoldCountsBatch(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name    string
		maxHeld int
		held    uint64 // the Hold's count
		listed  int    // the review list's length
	}{
		{"room", 0, 3, 3},
		{"MaxHeld reached", 2, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, hqstore.Options{MaxHeld: tc.maxHeld})
			apply(t, s, succEv(1, "m1", 1, "aaaa", ""), succEv(2, "m1", 1, "aaaa", ""), succEv(3, "m1", 1, "aaaa", ""))
			apply(t, s, succEv(6, "m1", 6, "aaaa", ""), succEv(7, "m1", 7, "aaaa", ""))
			res := apply(t, s, succEv(4, "m2", 4, "bbbb", "aaaa"), succEv(8, "m1", 8, "aaaa", ""))
			h := res.Holds[hqstore.Stream{Store: "s1", Register: "r1", Incarnation: "aaaa"}]
			held, err := s.Review()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range held {
				got = append(got, fmt.Sprintf("%s/%d %s", x.Incarnation, x.Seq, x.Reason))
			}
			if len(held) != tc.listed || h.Held != tc.held {
				t.Fatalf("review %v; the hold told to aaaa says %d held, want %d listed and %d held", got, h.Held, tc.listed, tc.held)
			}
		})
	}
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
