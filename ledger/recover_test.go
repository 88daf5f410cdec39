package ledger_test

import (
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// TestRecoverRefusesWhatDoesNotContinue: Recover appends only events that
// continue this ledger's sequence under its own ids with valid data; any
// other batch is ErrInvalid and changes nothing.
func TestRecoverRefusesWhatDoesNotContinue(t *testing.T) {
	f := newFixture(t, nil)
	f.sale(t, ledger.SaleRequest{ID: "s1"})
	rec := func(seq uint64, id, data string) ledger.OutboxRecord {
		return ledger.OutboxRecord{Seq: seq, ID: id, Type: ledger.OutSale, Data: []byte(data)}
	}
	for name, recs := range map[string][]ledger.OutboxRecord{
		"a hole":             {rec(3, "r1-3", `{}`)},
		"an old number":      {rec(1, "r1-1", `{}`)},
		"not in order":       {rec(2, "r1-2", `{}`), rec(4, "r1-4", `{}`)},
		"another register's": {rec(2, "r2-2", `{}`)},
		"bad data":           {rec(2, "r1-2", `{`)},
	} {
		if _, err := f.l.Recover(recs); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if st, _ := f.l.Stats(); st.LastSeq != 1 {
		t.Fatalf("a refused batch changed the ledger: last seq %d", st.LastSeq)
	}
	n, err := f.l.Recover([]ledger.OutboxRecord{rec(2, "r1-2", `{"id":"lost-sale"}`), rec(3, "r1-3", `{}`)})
	if err != nil || n != 2 {
		t.Fatalf("recover: %d %v", n, err)
	}
	if pending, oldest, _ := f.l.OutboxStats(); pending != 3 || oldest.Seq != 1 {
		t.Fatalf("after recover: %d pending, oldest %+v", pending, oldest)
	}
	// The sequence goes on after them.
	res := f.sale(t, ledger.SaleRequest{ID: "s2"})
	if res.Sale.Seq != 4 {
		t.Fatalf("next sale at seq %d, want 4", res.Sale.Seq)
	}
}

// TestRebaseOnlyFresh: a ledger without events continues a stream after
// the given number; one with confirmed events refuses and keeps its
// numbers (one with events never confirmed: TestRenumberUnsent).
func TestRebaseOnlyFresh(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.l.Rebase(41); err != nil {
		t.Fatal(err)
	}
	if err := f.l.Rebase(50); !errors.Is(err, ledger.ErrNotFresh) {
		t.Fatalf("second rebase: %v", err)
	}
	res := f.sale(t, ledger.SaleRequest{ID: "s1"})
	if res.Sale.Seq != 42 {
		t.Fatalf("first sale at %d, want 42", res.Sale.Seq)
	}
	if pending, _, _ := f.l.OutboxStats(); pending != 1 {
		t.Fatalf("pending %d", pending)
	}
	g := newFixture(t, nil)
	g.sale(t, ledger.SaleRequest{ID: "s1"})
	if err := g.l.Confirm(1); err != nil {
		t.Fatal(err)
	}
	if err := g.l.Rebase(41); !errors.Is(err, ledger.ErrNotFresh) {
		t.Fatalf("rebase with confirmed events: %v", err)
	}
}
