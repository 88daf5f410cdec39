package ledger

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Outbox returns up to max records (default 256 when max <= 0) with
// Seq > after, in sequence order: those waiting for head office and, when
// after is below the confirmed watermark, the confirmed ones still kept
// (see Kept).
func (l *Ledger) Outbox(after uint64, max int) ([]OutboxRecord, error) {
	if max <= 0 {
		max = 256
	}
	var out []OutboxRecord
	err := l.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			r, err := decodeOutbox(tx, k, v)
			if err != nil {
				return fmt.Errorf("ledger outbox: decode %d: %w", keySeq(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Confirm records head office's acknowledged watermark (every seq <= w is
// durably applied at head office). The watermark never moves backwards: an
// older w is a no-op. A w beyond the last sequence written is
// ErrPruneNotAllowed. Confirmed records stay in the outbox for the keep
// window (Options.KeepConfirmedFor, bounded by KeepConfirmedBytes), so a
// head office restored from an older backup can ask for them again
// (Outbox returns them like any other); Confirm forgets those beyond it.
func (l *Ledger) Confirm(w uint64) error {
	_, err := l.submit(context.Background(), func(x *wtx) (any, error) {
		if w > x.seq {
			return nil, fmt.Errorf("ledger confirm %d: last seq is %d: %w", w, x.seq, ErrPruneNotAllowed)
		}
		cur := getU64(x.tx.Bucket(bState), kConfirmed)
		if w <= cur {
			return nil, nil
		}
		kept := int64(getU64(x.tx.Bucket(bState), kKept))
		c := x.tx.Bucket(bOutbox).Cursor()
		for k, v := c.Seek(u64(cur + 1)); k != nil && keySeq(k) <= w; k, v = c.Next() {
			kept += int64(len(v))
		}
		x.put(bState, kConfirmed, u64(w))
		x.prune(w, kept)
		return nil, nil
	})
	return err
}

// OutboxNotify returns a channel that receives a value (non-blocking send,
// capacity 1) after each commit that added outbox records.
func (l *Ledger) OutboxNotify() <-chan struct{} { return l.notify }

// OutboxStats reports how many records wait for head office and the oldest
// of them (zero when none), for "offline, N pending, oldest T".
func (l *Ledger) OutboxStats() (pending int, oldest OutboxRecord, err error) {
	err = l.view(func(tx *bolt.Tx) error {
		state := tx.Bucket(bState)
		pending = int(getU64(state, kSeq) - getU64(state, kConfirmed))
		if k, v := tx.Bucket(bOutbox).Cursor().Seek(u64(getU64(state, kConfirmed) + 1)); k != nil {
			var err error
			oldest, err = decodeOutbox(tx, k, v)
			return err
		}
		return nil
	})
	return pending, oldest, err
}

// Confirmed returns the watermark head office last confirmed.
func (l *Ledger) Confirmed() (uint64, error) {
	var w uint64
	err := l.view(func(tx *bolt.Tx) error {
		w = getU64(tx.Bucket(bState), kConfirmed)
		return nil
	})
	return w, err
}
