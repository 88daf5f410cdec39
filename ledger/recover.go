package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// SnapshotInfo says what a consistent copy of the ledger holds.
type SnapshotInfo struct {
	Seq         uint64 // the last event in the copy
	Incarnation string
	Bytes       int64
}

// Snapshot writes a consistent copy of the ledger file to w (like Backup)
// and says which events it holds; used by the second copy on another
// device (ledger/replica).
func (l *Ledger) Snapshot(w io.Writer) (SnapshotInfo, error) {
	var si SnapshotInfo
	err := l.viewCommitted(func(tx *bolt.Tx) error {
		si.Seq, si.Incarnation = getU64(tx.Bucket(bState), kSeq), string(tx.Bucket(bMeta).Get(kIncarnation))
		var err error
		si.Bytes, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return si, fmt.Errorf("ledger snapshot: %w", err)
	}
	return si, nil
}

// Recover appends events this ledger does not have to its outbox, so they
// reach head office: the events a copy of an older state of this ledger
// (a snapshot on a second device) lacks and the second device's log kept
// (ledger/replica). They must continue the sequence (the first is the
// last seq + 1, then one by one) under this register's ids. Only the
// outbox gets them: the sales, members and balances they carry come back
// to this register through head office's summaries. Anything else is
// ErrInvalid and changes nothing.
func (l *Ledger) Recover(recs []OutboxRecord) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	_, err := l.submit(context.Background(), func(x *wtx) (any, error) {
		for i, r := range recs {
			if r.Seq != x.seq+uint64(i)+1 {
				return nil, fmt.Errorf("ledger recover: event %d of %d has seq %d, want %d: %w", i+1, len(recs), r.Seq, x.seq+uint64(i)+1, ErrInvalid)
			}
			if r.ID != fmt.Sprintf("%s-%d", l.register, r.Seq) {
				return nil, fmt.Errorf("ledger recover: event %d has id %q, not this register's: %w", r.Seq, r.ID, ErrInvalid)
			}
			if !json.Valid(r.Data) {
				return nil, fmt.Errorf("ledger recover: event %d: data is not valid: %w", r.Seq, ErrInvalid)
			}
		}
		for _, r := range recs {
			x.put(bOutbox, u64(r.Seq), outboxValue(r, r.Data))
		}
		x.seq += uint64(len(recs)) // the committer stores it
		x.outbox = true
		return nil, nil
	})
	if err != nil {
		return 0, err
	}
	return len(recs), nil
}

// ErrNotFresh: Rebase on a ledger that has recorded events.
var ErrNotFresh = fmt.Errorf("ledger has events already: %w", ErrInvalid)

// Rebase makes a ledger that has never recorded an event continue a
// register's stream after w: its first event will be w+1, and w counts as
// confirmed (head office holds 1..w, from the ledger this one replaces).
// A register replacing a dead one learns w from head office's last ack to
// its id, so the new ledger's sequence numbers never reuse the old one's
// (docs/operations.md "Replacing a register"). A ledger with events that
// head office never confirmed (a replacement that sold before it first
// reached head office) keeps its numbers and sends them, under a new
// incarnation, after w (Wire, epoch.go); one with confirmed events gets
// ErrNotFresh and nothing changes.
func (l *Ledger) Rebase(w uint64) error {
	_, err := l.submit(context.Background(), func(x *wtx) (any, error) {
		if x.seq != 0 {
			return nil, x.renumberUnsent(w)
		}
		if getU64(x.tx.Bucket(bState), kConfirmed) != 0 || x.get(bMeta, kEpochs) != nil {
			return nil, fmt.Errorf("ledger rebase to %d: last seq %d: %w", w, x.seq, ErrNotFresh)
		}
		x.seq = w // the committer stores it
		x.put(bState, kConfirmed, u64(w))
		return nil, nil
	})
	return err
}
