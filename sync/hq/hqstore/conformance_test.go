package hqstore_test

import (
	"path/filepath"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
)

// TestConformance runs the store conformance suite against bbolt.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts hqstore.Options) hqstore.Backend {
		s, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), &opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestCheckFindsReviewBookkeeping: Check on bbolt finds review
// bookkeeping that does not match the records.
func TestCheckFindsReviewBookkeeping(t *testing.T) {
	storetest.CheckFindsReviewBookkeeping(t, func(t *testing.T, opts hqstore.Options) hqstore.Backend {
		s, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), &opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, func(t *testing.T, s hqstore.Backend, rs hqstore.RegisterState) {
		if err := s.(*hqstore.Store).PutRegisterState(rs); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTxn holds the bbolt Txn to what the applier relies on.
func TestTxn(t *testing.T) {
	storetest.RunTxn(t, func(t *testing.T) (hqstore.Backend, func(func(hqstore.Txn) error) error) {
		s, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, func(fn func(hqstore.Txn) error) error { return hqstore.InTxn(s, fn) }
	})
}
