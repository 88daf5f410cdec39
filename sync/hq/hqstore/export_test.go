package hqstore

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// PutRegisterState overwrites a register's state as stored (tests only).
func (s *Store) PutRegisterState(rs RegisterState) error {
	v, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bRegs).Put([]byte(rs.Register), v) })
}

// InTxn runs fn on a write transaction of s that is then rolled back
// (storetest.RunTxn).
func InTxn(s *Store, fn func(Txn) error) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(newBoltTxn(tx))
}
