package ledger

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// StatementLine is one point event of a member's statement with the
// running sum of this register's events up to and including it.
type StatementLine struct {
	PointEvent
	Running Points `json:"running"`
}

// Statement is everything that explains a member's balance on this
// register: every point event this register wrote for the member, in
// sequence order with a running sum, and head office's chain-wide figure
// when one was received. Balance = HQBalance + the events after HQCovered
// (or the running sum when there is no summary); see the package doc.
type Statement struct {
	Member    Member          `json:"member"`
	Lines     []StatementLine `json:"lines"`
	Local     Points          `json:"local"`      // sum of the lines
	HQBalance *Points         `json:"hq_balance"` // head office's chain-wide balance, if a summary arrived
	HQCovered uint64          `json:"hq_covered"` // the last of this register's events it includes
	Balance   Points          `json:"balance"`    // the effective balance the till uses
}

// Statement returns the statement of the member with this id
// (ErrUnknownMember when there is none).
func (l *Ledger) Statement(memberID string) (Statement, error) {
	if err := noCard("look-up", memberID); err != nil {
		return Statement{}, err
	}
	m, err := l.Member(memberID)
	if err != nil {
		return Statement{}, fmt.Errorf("ledger statement: %w", err)
	}
	evs, err := l.Events(memberID)
	if err != nil {
		return Statement{}, fmt.Errorf("ledger statement: %w", err)
	}
	st := Statement{Member: m, Lines: make([]StatementLine, 0, len(evs))}
	for _, ev := range evs {
		st.Local += ev.Points
		st.Lines = append(st.Lines, StatementLine{PointEvent: ev, Running: st.Local})
	}
	if sum, ok, err := l.MemberSummary(memberID); err != nil {
		return Statement{}, fmt.Errorf("ledger statement: %w", err)
	} else if ok {
		b := sum.Balance
		st.HQBalance, st.HQCovered = &b, sum.Covered
	}
	if st.Balance, err = l.Balance(memberID); err != nil {
		return Statement{}, fmt.Errorf("ledger statement: %w", err)
	}
	return st, nil
}

// ForEachRefund calls fn with every refund and void recorded on this
// register, in the order of their ids.
func (l *Ledger) ForEachRefund(fn func(Refund) error) error {
	return l.viewCommitted(func(tx *bolt.Tx) error { return forEachRefund(tx, fn) })
}

func forEachRefund(tx *bolt.Tx, fn func(Refund) error) error {
	c := tx.Bucket(bOps).Cursor()
	for _, kind := range []string{"refund", "void"} {
		prefix := opKey(kind, "")
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var op opRec
			if err := json.Unmarshal(v, &op); err != nil {
				return fmt.Errorf("decode %s %q: %w", kind, k[len(prefix):], err)
			}
			var r SaleResult
			if err := json.Unmarshal(op.Result, &r); err != nil {
				return fmt.Errorf("decode %s %q: %w", kind, k[len(prefix):], err)
			}
			if r.Refund == nil {
				return fmt.Errorf("%s %q has no refund record: %w", kind, k[len(prefix):], ErrInconsistent)
			}
			if err := fn(*r.Refund); err != nil {
				return err
			}
		}
	}
	return nil
}

// Refunds returns the refunds and voids of one sale, in sequence order.
func (l *Ledger) Refunds(saleID string) ([]Refund, error) {
	var out []Refund
	// (in view, not ForEachRefund: a receipt look-up must not ask for a
	// checkpoint)
	err := l.view(func(tx *bolt.Tx) error {
		return forEachRefund(tx, func(r Refund) error {
			if r.SaleID == saleID {
				out = append(out, r)
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Refund) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, err
}

// ForEachPointEvent calls fn with every point event on this register,
// member by member and, within a member, in sequence order.
func (l *Ledger) ForEachPointEvent(fn func(PointEvent) error) error {
	return l.viewCommitted(func(tx *bolt.Tx) error {
		return tx.Bucket(bRows).ForEach(func(k, v []byte) error {
			if len(k) < 10 || k[0] == 0 || rowKind(k) != rowEvent { // (not the expiry index)
				return nil
			}
			var ev PointEvent
			if err := decodeEventRow(k, v, &ev); err != nil {
				return fmt.Errorf("decode event row %q: %w", k, err)
			}
			return fn(ev)
		})
	})
}
