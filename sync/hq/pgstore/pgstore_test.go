package pgstore_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
)

// One cluster for the package; each test gets its own schema.
var (
	srv    *pgtest.Server
	srvErr error
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, pgtest.Options{}, func(s *pgtest.Server, err error) { srv, srvErr = s, err }))
}

// fresh opens a store on a new, empty schema.
func fresh(t testing.TB, opts hqstore.Options) (*pgstore.Store, string) {
	t.Helper()
	s := pgtest.Need(t, srv, srvErr)
	_, dsn, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(dsn, &pgstore.Options{Store: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dsn
}

// TestConformance runs the store conformance suite against PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts hqstore.Options) hqstore.Backend {
		st, _ := fresh(t, opts)
		return st
	})
}

// TestCheckFindsReviewBookkeeping: Check on PostgreSQL finds review
// bookkeeping that does not match the records.
func TestCheckFindsReviewBookkeeping(t *testing.T) {
	var dsn string
	storetest.CheckFindsReviewBookkeeping(t, func(t *testing.T, opts hqstore.Options) hqstore.Backend {
		var st *pgstore.Store
		st, dsn = fresh(t, opts)
		return st
	}, func(t *testing.T, _ hqstore.Backend, rs hqstore.RegisterState) {
		t.Helper()
		v, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `UPDATE hq_registers SET state = $2::json WHERE register = $1`, rs.Register, string(v)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTxn holds the PostgreSQL Txn (writes queued until the commit) to
// what the applier relies on.
func TestTxn(t *testing.T) {
	storetest.RunTxn(t, func(t *testing.T) (hqstore.Backend, func(func(hqstore.Txn) error) error) {
		st, _ := fresh(t, hqstore.Options{})
		return st, func(fn func(hqstore.Txn) error) error { return pgstore.InTxn(st, fn) }
	})
}
