package hq_test

import (
	"fmt"
	stdsync "sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// rebaseStore starts head office and one register of storeA with 7
// members applied; it returns the highest summary version the register
// holds (head office's counter).
func rebaseStore(t *testing.T, opts hq.Options) (*hq.Service, *register, func() uint64, uint64) {
	t.Helper()
	b := mosquittotest.Start(t, nil)
	svc, st, _ := startHQ(t, b.URL(), "", opts)
	a := newRegister(t, b.URL(), "storeA", "a-r1")
	for i := range 7 {
		a.add(ledger.OutMember, ledger.Member{ID: fmt.Sprintf("m%d", i)})
		a.points(fmt.Sprintf("m%d", i), ledger.Points(10*(i+1)))
	}
	a.send(seqRange(1, 14)...)
	testkit.Eventually(t, wait, "store A's stream", func() bool { s, _ := a.memberSummary("m6"); return s.Balance == 70 })
	// Head office counts what it sent once the broker confirmed it, after
	// the register may have it: wait for the count too (the store's sent
	// position is recorded after it), so a test's base includes it.
	testkit.Eventually(t, wait, "store A's stream counted as sent", func() bool {
		streams, err := st.SummaryStreams()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range streams {
			if s.Store == "storeA" {
				return s.Head > 0 && s.Sent == s.Head
			}
		}
		return false
	})
	var pos uint64
	a.mu.Lock()
	for _, ms := range a.parts {
		pos = max(pos, ms.Seq)
	}
	a.mu.Unlock()
	counter := func() uint64 {
		c, err := st.SummaryCounter()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return svc, a, counter, pos
}

// TestCatchUpAboveCounterRebasesOnce: a register's catch-up from a
// position above head office's counter rebases its store's stream (head
// office restored from an older backup: every member is sent again above
// it), but one register's credentials cannot repeat that at will: within
// Options.RebaseEvery of the store's rebase, a claim above the counter is
// refused and counted (summary_rebases_refused), the counter stays, and
// the store's members are not sent again to every register of the store.
func TestCatchUpAboveCounterRebasesOnce(t *testing.T) {
	svc, a, counter, pos := rebaseStore(t, hq.Options{})
	base := svc.Status()
	const asks = 10
	first := pos + 1<<20
	for i := range asks {
		pos += 1 << 20
		a.catchUp(pos)
		testkit.Eventually(t, wait, "catch-up answered", func() bool { return svc.Status().CatchUps >= base.CatchUps+uint64(i)+1 })
	}
	st := svc.Status()
	if n := st.Rebases - base.Rebases; n != 1 {
		t.Fatalf("%d catch-ups from above the counter by one register: %d rebases, want 1", asks, n)
	}
	if n := st.RebasesRefused - base.RebasesRefused; n != asks-1 {
		t.Fatalf("refused claims: %d, want %d", n, asks-1)
	}
	onStore := func(s hq.Status) uint64 { return s.SummariesSent - s.CatchUpSummaries }
	testkit.Eventually(t, wait, "the store's members sent again once", func() bool { return onStore(svc.Status())-onStore(base) >= 7 })
	if c := counter(); c < first || c >= first+1<<20 {
		t.Fatalf("counter %d: want it moved above the first claim %d (and its 7 members) only", c, first)
	}
	if n := onStore(svc.Status()) - onStore(base); n != 7 {
		t.Fatalf("store A's members sent on its topic %d times in all (%d summaries), want once", n/7, n)
	}
}

// TestStatusAboveCounterRebasesOnce: the same through the other door, a
// register's retained status naming a highest applied version
// (members_max) above the counter: one rebase, the later claims refused
// and counted.
func TestStatusAboveCounterRebasesOnce(t *testing.T) {
	svc, a, counter, pos := rebaseStore(t, hq.Options{})
	base := svc.Status()
	const claims = 10
	first := pos + 1<<20
	for i := range claims {
		pos += 1 << 20
		b, err := protocol.EncodeStatus(protocol.Status{Store: "storeA", Register: "a-r1", State: protocol.StateOnline, MembersMax: pos})
		if err != nil {
			t.Fatal(err)
		}
		if tok := a.c.Publish(protocol.StatusTopic("storeA", "a-r1"), 1, true, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("status: %v", tok.Error())
		}
		testkit.Eventually(t, wait, "claim checked", func() bool {
			st := svc.Status()
			return st.Rebases+st.RebasesRefused >= base.Rebases+base.RebasesRefused+uint64(i)+1
		})
	}
	st := svc.Status()
	if n, r := st.Rebases-base.Rebases, st.RebasesRefused-base.RebasesRefused; n != 1 || r != claims-1 {
		t.Fatalf("%d statuses above the counter: %d rebases, %d refused; want 1 and %d", claims, n, r, claims-1)
	}
	if c := counter(); c < first || c >= first+1<<20 {
		t.Fatalf("counter %d: want it moved above the first claim %d only", c, first)
	}
}

// TestRebaseRefusedClaimCheckedLater: a claim above the counter refused
// because the store's stream was rebased moments before (a second
// register of a restored store whose status came later) is followed once
// Options.RebaseEvery has passed: the counter moves above it and the
// store's members are placed after it.
func TestRebaseRefusedClaimCheckedLater(t *testing.T) {
	var mu stdsync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc, a, counter, pos := rebaseStore(t, hq.Options{RebaseEvery: time.Hour})
	svc.SetRebaseClock(clock)
	base := svc.Status()
	a.catchUp(pos + 1<<20)
	testkit.Eventually(t, wait, "first rebase", func() bool { return svc.Status().Rebases == base.Rebases+1 })
	second := pos + 1<<30
	a.catchUp(second)
	testkit.Eventually(t, wait, "second claim refused", func() bool { return svc.Status().RebasesRefused == base.RebasesRefused+1 })
	if c := counter(); c >= second {
		t.Fatalf("counter %d moved above a refused claim %d", c, second)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	a.catchUp(0) // any request wakes the round
	testkit.Eventually(t, wait, "the refused claim followed", func() bool { return svc.Status().Rebases == base.Rebases+2 })
	testkit.Eventually(t, wait, "members placed above it", func() bool { return a.position() > second })
	if st := svc.Status(); st.RebasesRefused != base.RebasesRefused+1 {
		t.Fatalf("refused %d, want 1", st.RebasesRefused-base.RebasesRefused)
	}
}
