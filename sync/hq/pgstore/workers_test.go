package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
)

// Several workers (each its own pool, as separate loyalty-hq processes)
// apply the same registers' streams at once, each message reaching any
// worker in any order, some twice; every member is moved by many
// registers, with redemptions. Afterwards every register's events are
// there exactly once, balances equal the sum of the events, and the
// double spends recorded are exactly those of the order applied.
func TestWorkersApplyOneChain(t *testing.T) {
	_, dsn := fresh(t, hqstore.Options{})
	const workers, regs, per, members = 3, 12, 60, 5
	seed, _ := testkit.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	type msg = []hqstore.Event
	var msgs []msg
	want := map[string]ledger.Points{}
	for r := 0; r < regs; r++ {
		reg := fmt.Sprintf("r%02d", r)
		var cur msg
		for seq := uint64(1); seq <= per; seq++ {
			m := fmt.Sprintf("m%d", rng.IntN(members))
			pts := ledger.Points(rng.IntN(20) + 1)
			if rng.IntN(4) == 0 {
				pts = -pts
			}
			want[m] += pts
			cur = append(cur, storetest.Earn(reg, seq, m, pts))
			if len(cur) == 1+rng.IntN(6) || seq == per {
				msgs = append(msgs, cur)
				cur = nil
			}
		}
	}
	// Shuffle, and deliver a fifth of the messages twice.
	for i := range msgs {
		if rng.IntN(5) == 0 {
			msgs = append(msgs, msgs[i])
		}
	}
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	applyOnWorkers(t, dsn, workers, msgs)
	// Every event arrived at least once, so every gap has closed and
	// every held event is applied.
	st, err := pgstore.Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, err := st.Registers()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != regs {
		t.Fatalf("%d registers, want %d", len(rs), regs)
	}
	for _, r := range rs {
		if r.Watermark != per || r.Applied != per || r.Held != 0 {
			t.Errorf("register %s: watermark %d applied %d held %d, want %d each once", r.Register, r.Watermark, r.Applied, r.Held, per)
		}
	}
	for m, w := range want {
		if b, err := st.Balance(m); err != nil || b != w {
			t.Errorf("member %s: balance %d (%v), want %d", m, b, err, w)
		}
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	// Each double spend took the balance below zero at the time it was
	// applied, under the member's lock: its balance_after is the running
	// sum, which is negative.
	ds, err := st.DoubleSpends()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.BalanceAfter >= 0 || d.Points >= 0 || d.Overdraft != -d.BalanceAfter {
			t.Errorf("double spend %+v", d)
		}
	}
}

// A database written by a newer program is refused with a clear error.
func TestNewerSchemaRefused(t *testing.T) {
	st, dsn := fresh(t, hqstore.Options{})
	var cur int64
	if err := st.Pool().QueryRow(context.Background(), `SELECT value FROM hq_meta WHERE key = 'schema'`).Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(context.Background(), `UPDATE hq_meta SET value = 99 WHERE key = 'schema'`); err != nil {
		t.Fatal(err)
	}
	_, err := pgstore.Open(dsn, nil)
	if !errors.Is(err, hqstore.ErrSchemaTooNew) || !strings.Contains(err.Error(), "schema 99") {
		t.Fatalf("open of a newer schema: %v", err)
	}
	// Opening again at the same version migrates nothing and works.
	if _, err := st.Pool().Exec(context.Background(), `UPDATE hq_meta SET value = $1 WHERE key = 'schema'`, cur); err != nil {
		t.Fatal(err)
	}
	st2, err := pgstore.Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	st2.Close()
}

// A wrong password and an unreachable server are named by address; the
// password never appears.
func TestConnectionErrorsNameTheAddress(t *testing.T) {
	s := pgtest.Need(t, srv, srvErr)
	const secret = "s3cret-Password-not-this-one"
	wrong := strings.Replace(s.DSN(""), s.Password(), secret, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	cases := []struct {
		name, dsn, addr, says string
	}{
		{"wrong password", wrong, s.Addr(), "password authentication failed"},
		{"nobody listening", "postgres://loyalty:" + secret + "@" + closed + "/postgres?sslmode=disable&connect_timeout=2", closed, "refused"},
		{"key=value form", "host=127.0.0.1 port=" + strings.Split(s.Addr(), ":")[1] + " user=loyalty password=" + secret + " dbname=postgres sslmode=disable", s.Addr(), "password authentication failed"},
		{"does not parse", "postgres://loyalty:" + secret + "@127.0.0.1:notaport/x", "", "does not parse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pgstore.Open(tc.dsn, nil)
			if err == nil {
				t.Fatal("opened")
			}
			msg := err.Error()
			if strings.Contains(msg, secret) {
				t.Fatalf("error shows the password: %s", msg)
			}
			if !strings.Contains(msg, tc.addr) || !strings.Contains(msg, tc.says) || !errors.Is(err, pgstore.ErrUnavailable) {
				t.Fatalf("error %q: want ErrUnavailable naming %s and saying %q", msg, tc.addr, tc.says)
			}
		})
	}
}

// Several workers apply sales and refunds of the same members from many
// registers at once, messages in any order and some twice: each member's
// running figures (summaries) are written under the member's figures
// lock, so they end equal to a recomputation from the purchases (Check)
// and to what one writer gives.
func TestWorkersKeepRunningFigures(t *testing.T) {
	_, dsn := fresh(t, hqstore.Options{})
	const workers, regs, per, members = 3, 8, 30, 3
	seed, _ := testkit.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	day0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var msgs [][]hqstore.Event
	var all []hqstore.Event
	for r := 0; r < regs; r++ {
		reg := fmt.Sprintf("r%02d", r)
		var cur []hqstore.Event
		for seq := uint64(1); seq <= per; seq++ {
			var e hqstore.Event
			if seq > 1 && rng.IntN(4) == 0 {
				// A refund of one of this register's earlier sales.
				e = storetest.Ev(reg, seq, ledger.OutRefund, map[string]any{"id": fmt.Sprintf("%s-%d-r", reg, seq),
					"sale_id": fmt.Sprintf("%s-s%d", reg, 1+rng.IntN(int(seq-1))), "amount": 1 + rng.IntN(400)})
			} else {
				at := day0.AddDate(0, 0, rng.IntN(20))
				e = storetest.Ev(reg, seq, ledger.OutSale, ledger.Sale{ID: fmt.Sprintf("%s-s%d", reg, seq), MemberID: fmt.Sprintf("m%d", rng.IntN(members)),
					Total: ledger.Money(100 + rng.IntN(500)), WallTime: at, ClockTrusted: true})
				e.WallTime = at
			}
			cur = append(cur, e)
			all = append(all, e)
			if len(cur) == 1+rng.IntN(4) || seq == per {
				msgs = append(msgs, cur)
				cur = nil
			}
		}
	}
	for i := range msgs {
		if rng.IntN(5) == 0 {
			msgs = append(msgs, msgs[i])
		}
	}
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	var enrol []hqstore.Event
	for m := 0; m < members; m++ {
		enrol = append(enrol, storetest.Ev("e-r1", uint64(m+1), ledger.OutMember, ledger.Member{ID: fmt.Sprintf("m%d", m), EnrolledAt: day0.AddDate(-1, 0, 0), EnrolledTrusted: true}))
	}
	{
		st, err := pgstore.Open(dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Apply(enrol); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	applyOnWorkers(t, dsn, workers, msgs)
	clk := ledgertest.NewClock(day0.AddDate(0, 1, 0), true)
	st, err := pgstore.Open(dsn, &pgstore.Options{Store: hqstore.Options{Clock: clk}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	// One writer, in order, gives the same figures.
	_, dsn1 := fresh(t, hqstore.Options{})
	one, err := pgstore.Open(dsn1, &pgstore.Options{Store: hqstore.Options{Clock: clk}})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if _, err := one.Apply(enrol); err != nil {
		t.Fatal(err)
	}
	if _, err := one.Apply(all); err != nil {
		t.Fatal(err)
	}
	for m := 0; m < members; m++ {
		id := fmt.Sprintf("m%d", m)
		a, aerr := st.Summaries([]string{id})
		b, berr := one.Summaries([]string{id})
		if aerr != nil || berr != nil || len(a) != 1 || a[0].Retention == nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("member %s: workers %+v (%v), one writer %+v (%v)", id, a, aerr, b, berr)
		}
	}
}

// applyOnWorkers applies msgs, in order, on workers stores of their own
// (each a worker's connection pool) taking messages as they come free, as
// workers on a shared subscription do; any error fails the test.
func applyOnWorkers(t *testing.T, dsn string, workers int, msgs [][]hqstore.Event) {
	t.Helper()
	work := make(chan []hqstore.Event)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		st, err := pgstore.Open(dsn, &pgstore.Options{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				if _, err := st.Apply(m); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, m := range msgs {
		work <- m
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestErasuresVersionSharedByWorkers: the erasures version
// (hqstore.Erasures.ErasuresVersion) is in the shared database, so a
// worker sees an erasure another worker made and confirmations another
// worker applied, each of them (head office's erase documents are
// published again by whichever worker reads it moved); two workers
// applying confirmations of one erasure at once both count and keep both.
func TestErasuresVersionSharedByWorkers(t *testing.T) {
	a, dsn := fresh(t, hqstore.Options{})
	b, err := pgstore.Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	version := func(s *pgstore.Store) uint64 {
		v, err := s.ErasuresVersion()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if _, err := a.Apply([]hqstore.Event{
		storetest.Ev("r1", 1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann"}),
		storetest.Earn("r1", 2, "m1", 5), storetest.Earn("r2", 1, "m1", 5),
	}); err != nil {
		t.Fatal(err)
	}
	v0 := version(b)
	if _, err := a.EraseMember("m1", "dpo"); err != nil {
		t.Fatal(err)
	}
	v1 := version(b)
	if v1 <= v0 {
		t.Fatalf("worker b sees erasures version %d after worker a's erasure, was %d", v1, v0)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, w := range []*pgstore.Store{a, b} {
		reg := fmt.Sprintf("r%d", i+1)
		seq := uint64(3 - i) // r1's next is 3, r2's 2
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.Apply([]hqstore.Event{storetest.Ev(reg, seq, ledger.OutErased, ledger.Erased{MemberID: "m1", Erasure: 1})})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if v := version(a); v != v1+2 {
		t.Fatalf("erasures version %d after two workers' confirmations, want %d", v, v1+2)
	}
	e, err := b.ErasureOf("m1")
	if err != nil || len(e.Pending()) != 0 || len(e.Confirmed) != 2 {
		t.Fatalf("erasure after both confirmations: %+v %v", e, err)
	}
}
