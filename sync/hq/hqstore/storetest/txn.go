package storetest

import (
	"fmt"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// TxnOpener returns a fresh, empty store and a way to run a function on
// one of its write transactions (hqstore.Txn), rolled back afterwards.
type TxnOpener func(t *testing.T) (s hqstore.Backend, in func(fn func(tx hqstore.Txn) error) error)

// RunTxn runs the cases that hold a backend's Txn to what the applier
// relies on: a transaction reads its own writes, by key and in the
// listings, before it commits.
func RunTxn(t *testing.T, open TxnOpener) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, open TxnOpener)
	}{
		{"ReviewSeesOwnWrites", testTxnReview},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// testTxnReview: CountReview and EachReview list a stream's records held
// for review with those the transaction put merged in (a new number
// added, a stored one replaced), in sequence order; other streams'
// records do not count.
func testTxnReview(t *testing.T, open TxnOpener) {
	s, in := open(t)
	e := func(seq uint64, inc string) hqstore.Event {
		e := Earn("r1", seq, "m1", 1)
		e.Incarnation = inc
		return e
	}
	apply(t, s, e(1, "aaaa"), e(2, "aaaa"))
	apply(t, s, e(3, "bbbb"), e(5, "bbbb")) // held for review
	err := in(func(tx hqstore.Txn) error {
		for _, p := range []struct {
			inc string
			seq uint64
		}{{"bbbb", 4}, {"bbbb", 5}, {"bbbb", 9}, {"cccc", 1}} {
			if err := tx.PutReview("r1", p.inc, p.seq, []byte(fmt.Sprintf(`{"put":%d}`, p.seq))); err != nil {
				return err
			}
		}
		if n, err := tx.CountReview("r1", "bbbb"); err != nil || n != 4 {
			return fmt.Errorf("count %d (%v), want 4: 3 and 5 stored, 4 and 9 put, 5 replaced", n, err)
		}
		var got []string
		err := tx.EachReview("r1", "bbbb", func(seq uint64, rec []byte) error {
			put := string(rec) == fmt.Sprintf(`{"put":%d}`, seq)
			got = append(got, fmt.Sprintf("%d put %v", seq, put))
			return nil
		})
		if want := "[3 put false 4 put true 5 put true 9 put true]"; err != nil || fmt.Sprint(got) != want {
			return fmt.Errorf("each %v (%v), want %s", got, err, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
