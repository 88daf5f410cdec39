package pgtest_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
)

var (
	srv    *pgtest.Server
	srvErr error
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, pgtest.Options{}, func(s *pgtest.Server, err error) { srv, srvErr = s, err }))
}

func TestSchemaSurvivesRestart(t *testing.T) {
	s := pgtest.Need(t, srv, srvErr)
	ctx := context.Background()
	name, dsn, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	var owner string
	pid := s.PID()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.PID() == pid {
		t.Fatal("restart kept the same process")
	}
	c, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	defer c.Close(ctx)
	var v int
	if err := c.QueryRow(ctx, "SELECT v FROM x").Scan(&v); err != nil || v != 42 {
		t.Fatalf("row after restart: %d %v", v, err)
	}
	// The table is in the test's schema, and the server does not run as root.
	// (The schema of the x this connection sees: the server is the
	// package's, so a run before this one, as with -count, left an x in
	// its own schema.)
	if err := c.QueryRow(ctx, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'x'::regclass").Scan(&owner); err != nil || owner != name {
		t.Fatalf("schema %q %v, want %q", owner, err, name)
	}
	if st, err := os.Stat("/proc/" + itoa(s.PID())); err == nil {
		if uid := statUID(st); uid == 0 {
			t.Fatal("postgres runs as root")
		}
	}
}

func TestMissingBinariesNamed(t *testing.T) {
	t.Setenv("PG_BIN", t.TempDir())
	_, err := pgtest.FindBin()
	if !errors.Is(err, pgtest.ErrMissing) {
		t.Fatalf("FindBin with an empty PG_BIN: %v", err)
	}
}
