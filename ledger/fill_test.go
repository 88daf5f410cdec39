package ledger

// White-box: page fill is bbolt's layout, invisible through the API.

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestOutboxPagesFull checks that the append-only outbox fills its leaf
// pages instead of leaving them half empty after each split: fewer
// splits, fewer pages written per commit (BenchmarkCommit: 15.2 -> 14.2).
func TestOutboxPagesFull(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"), &Options{Register: "r1", Engine: benchEngine{}, NoSaleLog: true}) // bbolt's pages, one commit a sale
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for i := range 10 {
		if _, err := l.Enrol(ctx, Member{ID: fmt.Sprintf("m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 150 {
		if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("s%d", i), i%10)); err != nil {
			t.Fatal(err)
		}
	}
	var st bolt.BucketStats
	var pageSize int
	if err := l.view(func(tx *bolt.Tx) error {
		st, pageSize = tx.Bucket(bOutbox).Stats(), tx.DB().Info().PageSize
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st.LeafPageN < 10 {
		t.Fatalf("outbox has %d leaf pages; the test needs more to say anything", st.LeafPageN)
	}
	// Bytes in use over the bytes of all leaf pages but the last, which
	// is being filled.
	fill := float64(st.LeafInuse) / float64((st.LeafPageN-1)*pageSize)
	if fill < 0.8 {
		t.Fatalf("outbox leaf pages %.0f%% full (%d pages, %d bytes), want >= 80%%", fill*100, st.LeafPageN, st.LeafInuse)
	}
}
