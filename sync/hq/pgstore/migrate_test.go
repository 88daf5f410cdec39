package pgstore_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
)

// A database at schema 4 (balances and Included marks in the member row)
// migrates to schema 5 (per-register sums) keeping every balance and
// mark, and to 6 (running figures, computed from the purchases); ingest
// and Check go on from there.
func TestMigrateFromSchema4(t *testing.T) {
	s := pgtest.Need(t, srv, srvErr)
	_, dsn, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	old, err := pgstore.OpenAt(dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// What schema 4 held after r1 sent 1..3 and r2 sent 1, written as
	// that release wrote it: m1 5-2+4, m2 9.
	evs := []hqstore.Event{
		storetest.Earn("r1", 1, "m1", 5), storetest.Earn("r1", 2, "m2", 9), storetest.Earn("r1", 3, "m1", -2),
		storetest.Earn("r2", 1, "m1", 4),
	}
	for _, e := range evs {
		if _, err := old.Pool().Exec(ctx, `INSERT INTO hq_events (register, seq, rec) VALUES ($1, $2, $3)`, e.Register, int64(e.Seq), hqstore.StoredRecord(e.OutboxRecord)); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO hq_registers (register, watermark, state) VALUES
			('r1', 3, '{"register":"r1","store":"s1","watermark":3,"seen":3,"applied":3}'),
			('r2', 1, '{"register":"r2","store":"s1","watermark":1,"seen":1,"applied":1}')`,
		`INSERT INTO hq_purchases (member, register, seq, rec) VALUES
			('m1', 'r9', 1, '{"sale_id":"s1","seq":1,"wall_time":"2026-11-20T10:00:00Z","clock_trusted":true,"amount":1500}'),
			('m1', 'r9', 2, '{"sale_id":"s2","seq":2,"wall_time":"2026-11-25T10:00:00Z","clock_trusted":true,"amount":500}')`,
		`INSERT INTO hq_members (id, balance, included, profile) VALUES
			('m1', 7, '{"r1":3,"r2":1}', '{"member_id":"m1","name":"Ann"}'),
			('m2', 9, '{"r1":2}', '{"member_id":"m2"}')`,
	} {
		if _, err := old.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	st, err := pgstore.Open(dsn, &pgstore.Options{Store: hqstore.Options{Clock: ledgertest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), true)}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		bal ledger.Points
		inc map[string]uint64
	}{
		"m1": {7, map[string]uint64{"r1": 3, "r2": 1}},
		"m2": {9, map[string]uint64{"r1": 2}},
	}
	for id, w := range want {
		sum, err := st.Summary(id)
		if err != nil || sum.Balance != w.bal || !maps.Equal(sum.Included, w.inc) {
			t.Fatalf("%s after migration: balance %d included %v (%v), want %d %v", id, sum.Balance, sum.Included, err, w.bal, w.inc)
		}
	}
	if sum, _ := st.Summary("m1"); sum.Member.Name != "Ann" {
		t.Fatalf("m1's profile lost: %+v", sum.Member)
	}
	// Migration 6 computed the running figures from the purchases (and
	// Check above compared them with a recomputation).
	if sum, _ := st.Summary("m1"); sum.Visits12m != 2 || sum.Spend12m != 2000 || sum.Retention == nil || sum.Retention.MeanInterval != 5 {
		t.Fatalf("m1's figures after migration: %d %d %+v", sum.Visits12m, sum.Spend12m, sum.Retention)
	}
	// Ingest goes on: an earn, a redemption that overdraws, a new member.
	if _, err := st.Apply([]hqstore.Event{storetest.Earn("r1", 4, "m1", 3), storetest.Earn("r1", 5, "m2", -10), storetest.Earn("r1", 6, "m3", 1)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	for id, w := range map[string]ledger.Points{"m1": 10, "m2": -1, "m3": 1} {
		if b, err := st.Balance(id); err != nil || b != w {
			t.Fatalf("%s: balance %d (%v), want %d", id, b, err, w)
		}
	}
	if sum, _ := st.Summary("m1"); !maps.Equal(sum.Included, map[string]uint64{"r1": 4, "r2": 1}) {
		t.Fatalf("m1 included %v after r1 seq 4", sum.Included)
	}
	if ds, err := st.DoubleSpends(); err != nil || len(ds) != 1 || ds[0].MemberID != "m2" || ds[0].BalanceAfter != -1 {
		t.Fatalf("double spends %+v (%v), want m2 at -1", ds, err)
	}
}
