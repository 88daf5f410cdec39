package hqstore_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// TestSummaryMarksSurviveReopen: the members waiting for a summary, and
// where they shop, are written with the events, so closing the store
// before the summariser ran (a crash, a restart) loses none; what was
// taken is not taken again. (The stream rules themselves are in the
// conformance suite.)
func TestSummaryMarksSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	e1, e2 := earn("a1", 1, "m1", 10), earn("b1", 1, "m2", 20)
	e1.Store, e2.Store = "A", "B"
	apply(t, s, e1, e2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bs, err := s.TakeSummaries(12, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range bs {
		got[b.Store] = fmt.Sprint(len(b.Members), b.Members[0].Member.ID)
	}
	if fmt.Sprint(got) != "map[A:1m1 B:1m2]" {
		t.Fatalf("after a reopen: %v", got)
	}
	if n, err := s.Dirty(); err != nil || n != 0 {
		t.Fatalf("%d still marked: %v", n, err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}
