package pgstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
)

// A message whose transaction fails in its first round trip (lock) or
// its last (writes and COMMIT, sent together) changes nothing, what it
// would have created is not taken as existing afterwards, and the one
// connection of the pool serves the next message.
func TestFailedMessageChangesNothing(t *testing.T) {
	s := pgtest.Need(t, srv, srvErr)
	_, dsn, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(dsn, &pgstore.Options{MaxConns: 1, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	apply := func(evs ...hqstore.Event) error {
		_, err := st.Apply(evs)
		return err
	}
	if err := apply(storetest.Earn("r1", 1, "m1", 5)); err != nil {
		t.Fatal(err)
	}
	// Refusals by the database, set up for this test only: 999 points
	// in the last round trip, a register named bad in the first.
	if _, err := st.Pool().Exec(ctx, `
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
		CREATE TRIGGER refuse_points BEFORE INSERT OR UPDATE ON hq_member_regs FOR EACH ROW WHEN (NEW.points >= 999) EXECUTE FUNCTION refuse();
		CREATE TRIGGER refuse_register BEFORE INSERT ON hq_registers FOR EACH ROW WHEN (NEW.register = 'bad') EXECUTE FUNCTION refuse();`); err != nil {
		t.Fatal(err)
	}
	if err := apply(storetest.Earn("r1", 2, "m2", 999)); err == nil {
		t.Fatal("writes refused: Apply succeeded")
	}
	if err := apply(storetest.Earn("bad", 1, "m3", 1)); err == nil {
		t.Fatal("lock refused: Apply succeeded")
	}
	if w, err := st.Watermark("r1"); err != nil || w != 1 {
		t.Fatalf("r1 watermark %d (%v) after the failed message, want 1", w, err)
	}
	if _, err := st.Balance("m2"); !errors.Is(err, hqstore.ErrUnknownMember) {
		t.Fatalf("m2 after the failed message: %v, want unknown", err)
	}
	if rs, err := st.Registers(); err != nil || len(rs) != 1 {
		t.Fatalf("registers %+v (%v), want r1 only", rs, err)
	}
	// The same message again, now acceptable: m2's row is created (it was
	// not remembered from the failed transaction).
	if err := apply(storetest.Earn("r1", 2, "m2", 7), storetest.Earn("r1", 3, "m1", 1)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]ledger.Points{"m1": 6, "m2": 7} {
		if b, err := st.Balance(id); err != nil || b != want {
			t.Fatalf("%s: balance %d (%v), want %d", id, b, err, want)
		}
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
}

// A second worker that has never seen a member or a register credits
// it as well as the first (what one store remembers is its own).
func TestWorkersShareNothingRemembered(t *testing.T) {
	a, dsn := fresh(t, hqstore.Options{})
	b, err := pgstore.Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Apply([]hqstore.Event{storetest.Earn("r1", 1, "m1", 5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Apply([]hqstore.Event{storetest.Earn("r1", 2, "m1", 3), storetest.Earn("r1", 3, "m2", 4)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply([]hqstore.Event{storetest.Earn("r1", 4, "m2", 1), storetest.Earn("r1", 5, "m1", 1)}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]ledger.Points{"m1": 9, "m2": 5} {
		if got, err := a.Balance(id); err != nil || got != want {
			t.Fatalf("%s: balance %d (%v), want %d", id, got, err, want)
		}
	}
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
}

// A database at schema 7 (members waiting for a summary in hq_dirty, a
// row each) migrates to 8: what waited is still taken, and members
// marked since (one row of hq_dirty_batches per message) are taken with
// it, each once.
func TestMigrateFromSchema7(t *testing.T) {
	s := pgtest.Need(t, srv, srvErr)
	_, dsn, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	old, err := pgstore.OpenAt(dsn, 7)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// What schema 7 held after r1 sent m1's enrolment, as that release
	// wrote it.
	e := storetest.Earn("r1", 1, "m1", 5)
	e.Store = "s1"
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO hq_events (register, seq, rec) VALUES ($1, $2, $3)`, []any{e.Register, int64(e.Seq), hqstore.StoredRecord(e.OutboxRecord)}},
		{`INSERT INTO hq_registers (register, watermark, state) VALUES ('r1', 1, '{"register":"r1","store":"s1","watermark":1,"seen":1,"applied":1}')`, nil},
		{`INSERT INTO hq_members (id, carried, profile) VALUES ('m1', 0, '{"id":"m1","name":"Ann"}')`, nil},
		{`INSERT INTO hq_member_regs (member, register, seq, points) VALUES ('m1', 'r1', 1, 5)`, nil},
		{`INSERT INTO hq_shops (member, store, at) VALUES ('m1', 's1', 1796000000)`, nil},
		{`INSERT INTO hq_dirty (member) VALUES ('m1')`, nil},
	} {
		if _, err := old.Pool().Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	st, err := pgstore.Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	// m2 is marked by this release; m1 again, so it waits in both tables.
	if _, err := st.Apply([]hqstore.Event{storetest.Earn("r1", 2, "m2", 1), storetest.Earn("r1", 3, "m1", 1)}); err != nil {
		t.Fatal(err)
	}
	bs, err := st.TakeSummaries(0, 0)
	if err != nil || len(bs) != 1 {
		t.Fatalf("take: %+v %v", bs, err)
	}
	var ids []string
	for _, m := range bs[0].Members {
		ids = append(ids, m.Member.ID)
	}
	if !slices.Equal(ids, []string{"m1", "m2"}) || bs[0].Members[0].Balance != 6 || bs[0].Members[0].Member.Name != "Ann" {
		t.Fatalf("taken %v (%+v), want m1 (6 points, Ann) and m2 once each", ids, bs[0].Members)
	}
	if bs, err := st.TakeSummaries(0, 0); err != nil || len(bs) != 0 {
		t.Fatalf("second take %+v %v, want nothing", bs, err)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
}

// A message's profile events read their members' erasures in the lock's
// round trip, one statement for the message, not a round trip each; the
// erased member's event is still redacted and held, the others applied.
func TestProfileEventsReadErasuresWithTheLocks(t *testing.T) {
	s, err := pgtest.Start(pgtest.Options{Settings: map[string]string{"log_statement": "all"}})
	s = pgtest.Need(t, s, err)
	defer s.Close()
	_, dsn, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	member := func(seq uint64, id string) hqstore.Event {
		return storetest.Ev("r1", seq, ledger.OutMember, ledger.Member{ID: id, Name: "Name of " + id})
	}
	if _, err := st.Apply([]hqstore.Event{member(1, "m1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EraseMember("m1", "dpo"); err != nil {
		t.Fatal(err)
	}
	before := len(s.Log())
	res, err := st.Apply([]hqstore.Event{member(2, "m1"), member(3, "m2"), member(4, "m3")})
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, line := range strings.Split(s.Log()[before:], "\n") {
		if strings.Contains(line, "statement:") || strings.Contains(line, "execute") {
			if strings.Contains(line, "FROM hq_erasures") {
				reads++
			}
		}
	}
	if reads != 1 {
		t.Fatalf("%d statements read hq_erasures for one message, want 1:\n%s", reads, s.Log()[before:])
	}
	if res.Registers["r1"].Watermark != 4 || len(res.PolicyHolds) != 1 || res.PolicyHolds[0].Code != hqstore.CodeErased {
		t.Fatalf("result %+v, want m1's event held as erased and the stream at 4", res)
	}
	if m, err := st.Member("m1"); err != nil || m.Name != "" {
		t.Fatalf("erased m1: %+v %v", m, err)
	}
	for _, id := range []string{"m2", "m3"} {
		if m, err := st.Member(id); err != nil || m.Name != "Name of "+id {
			t.Fatalf("%s: %+v %v", id, m, err)
		}
	}
}
