package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// TxnOpener returns a fresh, empty store and a way to run a function on
// one of its write transactions (hqstore.Txn), rolled back afterwards.
type TxnOpener func(t *testing.T) (s hqstore.Backend, in func(fn func(tx hqstore.Txn) error) error)

// RunTxn runs the cases that hold a backend's Txn to what the applier
// relies on: a transaction reads its own writes, by key and in the
// listings, before it commits, and the applier's walks over the held
// events look at them, not at every number in between.
func RunTxn(t *testing.T, open TxnOpener) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, open TxnOpener)
	}{
		{"ReviewSeesOwnWrites", testTxnReview},
		{"NextHeldSeesOwnWrites", testTxnNextHeld},
		{"HeldWalksSkipTheGap", testTxnHeldWalks},
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

// testTxnNextHeld: NextHeld walks a register's held events in order,
// across more of them than a backend may read at once, with the
// transaction's own PutHeld (new numbers, a replaced record) and
// DeleteHeld merged in.
func testTxnNextHeld(t *testing.T, open TxnOpener) {
	s, in := open(t)
	apply(t, s, Earn("r1", 1, "m1", 1))
	var evs []hqstore.Event
	for seq := uint64(3); seq <= 600; seq++ {
		evs = append(evs, Earn("r1", seq, "m1", 1))
	}
	apply(t, s, append(evs, Earn("r1", 1000, "m1", 1), Earn("r2", 1000, "m1", 1))...)
	var want []uint64
	for seq := uint64(2); seq <= 1000; seq++ {
		if seq == 2 || seq <= 249 || seq >= 271 && seq <= 600 || seq == 700 || seq == 1000 {
			want = append(want, seq)
		}
	}
	err := in(func(tx hqstore.Txn) error {
		for seq := uint64(250); seq <= 271; seq++ {
			if err := tx.DeleteHeld("r1", seq); err != nil {
				return err
			}
		}
		for _, seq := range []uint64{700, 271, 2} {
			if err := tx.PutHeld("r1", seq, []byte(fmt.Sprintf(`{"put":%d}`, seq))); err != nil {
				return err
			}
		}
		var got []uint64
		for after := uint64(0); ; {
			seq, rec, ok, err := tx.NextHeld("r1", after)
			if err != nil || !ok {
				if !slices.Equal(got, want) {
					return fmt.Errorf("walk %v (%v), want %v", got, err, want)
				}
				break
			}
			if put := string(rec) == fmt.Sprintf(`{"put":%d}`, seq); put != (seq == 2 || seq == 271 || seq == 700) || len(rec) == 0 {
				return fmt.Errorf("%d: record %q", seq, rec)
			}
			got, after = append(got, seq), seq
		}
		for _, c := range []struct{ after, want uint64 }{{260, 271}, {600, 700}, {999, 1000}, {1, 2}} {
			if seq, _, ok, err := tx.NextHeld("r1", c.after); err != nil || !ok || seq != c.want {
				return fmt.Errorf("after %d: %d %v %v, want %d", c.after, seq, ok, err, c.want)
			}
		}
		if _, _, ok, err := tx.NextHeld("r1", 1000); ok || err != nil {
			return fmt.Errorf("after the last: %v %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// countingTxn counts the applier's looks at held events.
type countingTxn struct {
	hqstore.Txn
	looks int
}

func (c *countingTxn) Held(reg string, seq uint64) ([]byte, error) {
	c.looks++
	return c.Txn.Held(reg, seq)
}

func (c *countingTxn) NextHeld(reg string, after uint64) (uint64, []byte, bool, error) {
	c.looks++
	return c.Txn.NextHeld(reg, after)
}

// testTxnHeldWalks: events held at 3 and 60,001 (two gaps, the second
// within the far-ahead bound). Filling the first gap finds the next held
// event, a succession sends both to review, and an operator's gap
// acknowledgement on a store that did not keep HeldFrom checks the gap
// against them, each in a few looks at the held events, not one per
// number in between (review9: 60,000 round trips on PostgreSQL, 7.2 s
// for the commit that filled the gap).
func testTxnHeldWalks(t *testing.T, open TxnOpener) {
	const far = 60_001
	setup := func(t *testing.T) func(fn func(tx hqstore.Txn) error) error {
		s, in := open(t)
		ev := func(seq uint64) hqstore.Event {
			e := Earn("r1", seq, "m1", 1)
			e.Incarnation = "aaaa"
			return e
		}
		apply(t, s, ev(1))
		apply(t, s, ev(3), ev(far))
		return in
	}
	check := func(t *testing.T, c *countingTxn, what string) {
		t.Helper()
		if c.looks > 4 {
			t.Errorf("%s looked at the held events %d times, want at most 4", what, c.looks)
		}
	}
	t.Run("fill", func(t *testing.T) {
		in := setup(t)
		err := in(func(tx hqstore.Txn) error {
			c := &countingTxn{Txn: tx}
			e := Earn("r1", 2, "m1", 1)
			e.Incarnation = "aaaa"
			res, err := hqstore.ApplyIn(c, []hqstore.Event{e}, hqstore.Options{})
			if rs := res.Registers["r1"]; err != nil || rs.Watermark != 3 || rs.Held != 1 || rs.HeldFrom != far {
				return fmt.Errorf("%+v %v", rs, err)
			}
			check(t, c, "filling the gap")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("succession", func(t *testing.T) {
		in := setup(t)
		err := in(func(tx hqstore.Txn) error {
			c := &countingTxn{Txn: tx}
			e := Earn("r1", 2, "m2", 1)
			e.Incarnation, e.PrevIncarnation = "bbbb", "aaaa"
			res, err := hqstore.ApplyIn(c, []hqstore.Event{e}, hqstore.Options{})
			if rs := res.Registers["r1"]; err != nil || rs.Watermark != 2 || rs.Held != 0 || rs.Review != 2 || res.Reviewed != 2 {
				return fmt.Errorf("%+v reviewed %d: %v", rs, res.Reviewed, err)
			}
			check(t, c, "the succession")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("gap acknowledged", func(t *testing.T) {
		in := setup(t)
		for _, tc := range []struct {
			to  uint64
			err error
		}{{far, hqstore.ErrInvalid}, {far - 1, nil}} {
			err := in(func(tx hqstore.Txn) error {
				// Fill the first gap, then forget HeldFrom (a store
				// written before it was kept).
				c := &countingTxn{Txn: tx}
				e := Earn("r1", 2, "m1", 1)
				e.Incarnation = "aaaa"
				if _, err := hqstore.ApplyIn(tx, []hqstore.Event{e}, hqstore.Options{}); err != nil {
					return err
				}
				rs, _, err := tx.Register("r1")
				if err != nil || rs.Watermark != 3 {
					return fmt.Errorf("%+v %v", rs, err)
				}
				rs.HeldFrom = 0
				if err := tx.PutRegister(rs); err != nil {
					return err
				}
				g, err := hqstore.AcknowledgeGapIn(c, "r1", 4, tc.to, hqstore.Options{})
				if !errors.Is(err, tc.err) || err == nil && g.Released != 1 {
					return fmt.Errorf("gap 4..%d: %+v %v, want %v", tc.to, g, err, tc.err)
				}
				check(t, c, "the gap's check")
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}
