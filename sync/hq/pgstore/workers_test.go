package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
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
	type msg []hqstore.Event
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
	work := make(chan msg)
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
