package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// The member-summary stream cases (docs/protocol.md "Member summaries").
func init() {
	cases = append(cases,
		struct {
			name string
			run  func(t *testing.T, open Opener)
		}{"SummariesWhereMembersShop", testShops},
		struct {
			name string
			run  func(t *testing.T, open Opener)
		}{"CatchUpFromAnyPosition", testCatchUp},
		struct {
			name string
			run  func(t *testing.T, open Opener)
		}{"LookupSummary", testLookupSummary},
		struct {
			name string
			run  func(t *testing.T, open Opener)
		}{"RebaseAfterRestore", testRebase},
	)
}

func inStore(store string, e hqstore.Event) hqstore.Event {
	e.Store = store
	return e
}

// take takes every waiting summary and returns, per store, the member
// ids in stream order, checking each batch's shape.
func take(t *testing.T, s hqstore.Backend, months int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	bs, err := s.TakeSummaries(months, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.From >= b.Seq || len(b.Positions) != len(b.Members) || b.Positions[len(b.Positions)-1] != b.Seq || !slices.IsSorted(b.Positions) {
			t.Fatalf("batch %s: from %d seq %d positions %v", b.Store, b.From, b.Seq, b.Positions)
		}
		for _, m := range b.Members {
			out[b.Store] = append(out[b.Store], m.Member.ID)
		}
	}
	return out
}

// testShops: a member's summary goes to the stores where it enrolled or
// bought within the window, not to others; past the window a store drops
// out (months 0 keeps it).
func testShops(t *testing.T, open Opener) {
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	clk := ledgertest.NewClock(now, true)
	s := open(t, hqstore.Options{Clock: clk})
	apply(t, s, inStore("A", Earn("a1", 1, "m1", 10)), inStore("B", Earn("b1", 1, "m2", 20)))
	if got := take(t, s, 12); fmt.Sprint(got) != "map[A:[m1] B:[m2]]" {
		t.Fatalf("first summaries %v", got)
	}
	if got := take(t, s, 12); len(got) != 0 {
		t.Fatalf("nothing changed, yet %v", got)
	}
	apply(t, s, inStore("B", Earn("b1", 2, "m1", 5)))
	if got := take(t, s, 12); fmt.Sprint(got) != "map[A:[m1] B:[m1]]" {
		t.Fatalf("after m1 shopped at B: %v", got)
	}
	clk.Set(now.AddDate(0, 13, 0), true)
	apply(t, s, inStore("A", Earn("a1", 2, "m1", 1)))
	if got := take(t, s, 12); fmt.Sprint(got) != "map[A:[m1]]" {
		t.Fatalf("a year on: %v", got)
	}
	apply(t, s, inStore("A", Earn("a1", 3, "m1", 1)))
	if got := take(t, s, 0); fmt.Sprint(got) != "map[A:[m1] B:[m1]]" {
		t.Fatalf("window 0 (ever): %v", got)
	}
	if shops, err := s.ShopsOf("m1", 12); err != nil || !slices.Equal(shops, []string{"A"}) {
		t.Fatalf("ShopsOf: %v %v", shops, err)
	}
	// Many members at once come in batches of at most max.
	var evs []hqstore.Event
	for i := range 7 {
		evs = append(evs, inStore("C", Earn("c1", uint64(i+1), fmt.Sprintf("n%d", i), 1)))
	}
	apply(t, s, evs...)
	bs, err := s.TakeSummaries(0, 3)
	if err != nil || len(bs) != 1 || len(bs[0].Members) != 3 {
		t.Fatalf("batch of 3: %+v %v", bs, err)
	}
	if got := take(t, s, 0); len(got["C"]) != 4 {
		t.Fatalf("the rest: %v", got)
	}
}

// testCatchUp: a store's stream holds each member once at its latest
// position; from 0 it gives every member in parts that chain up to the
// head; from a later position, the members placed after it; from the
// head, nothing. Positions start above the older per-restart numbering.
func testCatchUp(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	for i := range 5 {
		apply(t, s, inStore("A", Earn("a1", uint64(i+1), fmt.Sprintf("m%d", i), ledger.Points(i+1))))
	}
	first, err := s.TakeSummaries(12, 0)
	if err != nil || len(first) != 1 || first[0].From != 0 || first[0].Seq <= 1<<32 {
		t.Fatalf("first batch %+v %v", first, err)
	}
	mid := first[0].Positions[2]
	apply(t, s, inStore("A", Earn("a1", 6, "m0", 100)))
	second, err := s.TakeSummaries(12, 0)
	if err != nil || len(second) != 1 || second[0].From != first[0].Seq {
		t.Fatalf("second batch %+v %v (first ended at %d)", second, err, first[0].Seq)
	}
	head := second[0].Seq
	walk := func(from uint64, max int) (ids []string, parts int) {
		for {
			b, more, err := s.CatchUp("A", from, max)
			if err != nil {
				t.Fatal(err)
			}
			if b.Seq == 0 {
				return ids, parts
			}
			if b.From != from || b.Seq <= from {
				t.Fatalf("part (%d, %d] after %d", b.From, b.Seq, from)
			}
			parts++
			for _, m := range b.Members {
				ids = append(ids, fmt.Sprintf("%s=%d", m.Member.ID, m.Balance))
			}
			from = b.Seq
			if !more {
				if b.Seq != head {
					t.Fatalf("last part ends at %d, head %d", b.Seq, head)
				}
				return ids, parts
			}
		}
	}
	if ids, parts := walk(0, 2); fmt.Sprint(ids) != "[m1=2 m2=3 m3=4 m4=5 m0=101]" || parts != 3 {
		t.Fatalf("from 0 in parts of 2: %v in %d parts", ids, parts)
	}
	if ids, _ := walk(mid, 0); fmt.Sprint(ids) != "[m3=4 m4=5 m0=101]" {
		t.Fatalf("from m2's position: %v", ids)
	}
	if ids, parts := walk(head, 0); len(ids) != 0 || parts != 0 {
		t.Fatalf("from the head: %v", ids)
	}
	if b, _, err := s.CatchUp("nowhere", 0, 0); err != nil || b.Seq != 0 || len(b.Members) != 0 {
		t.Fatalf("a store without a stream: %+v %v", b, err)
	}
	if err := s.SummarySent("A", first[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.SummarySent("A", 1); err != nil { // never moves back
		t.Fatal(err)
	}
	st, err := s.SummaryStreams()
	if err != nil || len(st) != 1 || st[0].Store != "A" || st[0].Head != head || st[0].Sent != first[0].Seq {
		t.Fatalf("streams %+v %v", st, err)
	}
}

// testLookupSummary: by any alias of the member, not by member id;
// unknown is ErrUnknownMember; the version is at least the older
// numbering's floor and below the next position.
func testLookupSummary(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s, inStore("A", Ev("a1", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ana", Aliases: []string{"card-1", "+15550100"}})),
		inStore("A", Earn("a1", 2, "m1", 70)))
	for _, alias := range []string{"card-1", "+15550100"} {
		sum, seq, err := s.LookupSummary(alias)
		if err != nil || sum.Member.ID != "m1" || sum.Balance != 70 || seq < 1<<32 {
			t.Fatalf("lookup %q: %+v %d %v", alias, sum, seq, err)
		}
	}
	if _, _, err := s.LookupSummary("m1"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Fatalf("lookup by member id: %v, want ErrUnknownMember", err)
	}
	_, before, _ := s.LookupSummary("card-1")
	bs, err := s.TakeSummaries(12, 0)
	if err != nil || len(bs) != 1 || bs[0].Seq <= before {
		t.Fatalf("the next position %+v is not above the lookup's version %d: %v", bs, before, err)
	}
	if _, after, _ := s.LookupSummary("card-1"); after < bs[0].Seq {
		t.Fatalf("lookup version %d below the position %d given before it", after, bs[0].Seq)
	}
	if _, _, err := s.LookupSummary("card-2"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Fatalf("unknown card: %v", err)
	}
	// A store told about m1 by a lookup holds it from then on: its
	// summaries (and an erasure) go there too.
	if err := s.LookedUp("m1", "B"); err != nil {
		t.Fatal(err)
	}
	if shops, err := s.ShopsOf("m1", 12); err != nil || strings.Join(shops, ",") != "A,B" {
		t.Fatalf("m1 shops at %v (%v), want A,B", shops, err)
	}
	apply(t, s, inStore("A", Earn("a1", 3, "m1", 5)))
	if got := take(t, s, 12); strings.Join(got["B"], ",") != "m1" {
		t.Fatalf("summaries after the lookup: %v, want m1 at B too", got)
	}
}

// testRebase: head office restored from an older backup has its counter
// below versions registers applied. Rebase moves the counter above the
// register's version and marks the store's members, so the next
// TakeSummaries places every member of that store after it (and the
// batch chains from the old head, which the register has passed); other
// stores' streams keep their members where they are.
func testRebase(t *testing.T, open Opener) {
	s := open(t, hqstore.Options{})
	apply(t, s,
		inStore("s1", Earn("r1", 1, "m1", 10)),
		inStore("s1", Earn("r1", 2, "m2", 20)),
		inStore("s2", Earn("r2", 1, "m3", 30)),
	)
	take(t, s, 0)
	heads := func() map[string]uint64 {
		st, err := s.SummaryStreams()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint64{}
		for _, x := range st {
			out[x.Store] = x.Head
		}
		return out
	}
	counter := func() uint64 {
		c, err := s.SummaryCounter()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := heads()
	// The counter is at least every head: no version handed out is above it.
	if c := counter(); c < before["s1"] || c < before["s2"] {
		t.Fatalf("counter %d below a head %v", c, before)
	}
	// A version within the counter (a lookup answered with the chain-wide
	// counter may exceed the store's head) is no restore: nothing moves.
	if ok, n, err := s.Rebase("s1", max(before["s1"], before["s2"])); ok || n != 0 || err != nil {
		t.Fatalf("rebase within the counter: %v %d %v", ok, n, err)
	}
	if bs := take(t, s, 0); len(bs) != 0 {
		t.Fatalf("a rebase within the counter marked members: %v", bs)
	}
	above := max(before["s1"], before["s2"]) + 1_000_000 // what a register applied before the restore
	ok, n, err := s.Rebase("s1", above)
	if err != nil || !ok || n != 2 {
		t.Fatalf("rebase: %v %d %v, want the store's 2 members", ok, n, err)
	}
	if c := counter(); c != above {
		t.Fatalf("counter after the rebase %d, want %d", c, above)
	}
	bs, err := s.TakeSummaries(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Store != "s1" || bs[0].From != before["s1"] || len(bs[0].Members) != 2 || bs[0].Positions[0] <= above {
		t.Fatalf("after rebase: %+v, want s1's 2 members above %d chained from %d", bs, above, before["s1"])
	}
	if h := heads(); h["s1"] <= above || h["s2"] != before["s2"] {
		t.Fatalf("heads after: %v (before %v)", h, before)
	}
	// A register caught up from its position gets them.
	b, _, err := s.CatchUp("s1", above, 0)
	if err != nil || len(b.Members) != 2 {
		t.Fatalf("catch-up from %d: %+v %v", above, b, err)
	}
	// New changes keep numbering above.
	apply(t, s, inStore("s2", Earn("r2", 2, "m3", 1)))
	if bs := take(t, s, 0); len(bs["s2"]) != 1 {
		t.Fatalf("s2 after: %v", bs)
	}
	if h := heads(); h["s2"] <= above || counter() < h["s2"] {
		t.Fatalf("s2's head %d not above the rebased counter %d, or above the counter %d", h["s2"], above, counter())
	}
	// An unknown store: nothing to mark, the counter still moves.
	if ok, n, err := s.Rebase("s9", above*2); err != nil || !ok || n != 0 {
		t.Fatalf("rebase of an unknown store: %v %d %v", ok, n, err)
	}
}
