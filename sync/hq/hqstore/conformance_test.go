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
