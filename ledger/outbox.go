package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Outbox returns up to max records (default 256 when max <= 0) with
// Seq > after, in sequence order.
func (l *Ledger) Outbox(after uint64, max int) ([]OutboxRecord, error) {
	if max <= 0 {
		max = 256
	}
	var out []OutboxRecord
	err := l.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			var r OutboxRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("ledger outbox: decode %d: %w", keySeq(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Confirm records head office's acknowledged watermark (every seq <= w is
// durably applied at head office) and prunes the outbox up to it. The
// watermark never moves backwards: an older w is a no-op. A w beyond the
// last sequence written is ErrPruneNotAllowed.
func (l *Ledger) Confirm(w uint64) error {
	_, err := l.submit(context.Background(), func(x *wtx) (any, error) {
		if w > x.seq {
			return nil, fmt.Errorf("ledger confirm %d: last seq is %d: %w", w, x.seq, ErrPruneNotAllowed)
		}
		meta := x.tx.Bucket(bMeta)
		cur := getU64(meta, kConfirmed)
		if w <= cur {
			return nil, nil
		}
		b := x.tx.Bucket(bOutbox)
		c := b.Cursor()
		var keys [][]byte
		for k, _ := c.First(); k != nil && keySeq(k) <= w; k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			x.del(bOutbox, k)
		}
		x.put(bMeta, kConfirmed, u64(w))
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
		meta := tx.Bucket(bMeta)
		pending = int(getU64(meta, kSeq) - getU64(meta, kConfirmed))
		if _, v := tx.Bucket(bOutbox).Cursor().First(); v != nil {
			return json.Unmarshal(v, &oldest)
		}
		return nil
	})
	return pending, oldest, err
}

// Confirmed returns the watermark head office last confirmed.
func (l *Ledger) Confirmed() (uint64, error) {
	var w uint64
	err := l.view(func(tx *bolt.Tx) error {
		w = getU64(tx.Bucket(bMeta), kConfirmed)
		return nil
	})
	return w, err
}
