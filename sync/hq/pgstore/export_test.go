package pgstore

import "github.com/loyalty-terminal/loyalty/sync/hq/hqstore"

// OpenAt is Open with the schema taken to version n only (a database as
// an older release left it).
func OpenAt(dsn string, n int) (*Store, error) { return open(dsn, nil, n) }

// InTxn runs fn on a write transaction of s, whose writes are queued as
// Apply's are, and then rolls it back (storetest.RunTxn).
func InTxn(s *Store, fn func(hqstore.Txn) error) error {
	ctx, cancel := s.ctx()
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	return fn(newTxn(ctx, tx, true))
}
