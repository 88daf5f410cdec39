package ledger

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// kMembersPos is the register's position in its store's member-summary
// stream (docs/protocol.md "Member summaries"): every summary of the stream
// up to it has been applied.
var kMembersPos = []byte("members_position")

// MembersPosition returns the position in the store's member-summary
// stream recorded by SetMembersPosition; 0 for a ledger that has none (a
// new register, or one older than positions), which catches up from the
// start of the stream.
func (l *Ledger) MembersPosition() (uint64, error) {
	var p uint64
	err := l.view(func(tx *bolt.Tx) error {
		p = getU64(tx.Bucket(bMeta), kMembersPos)
		return nil
	})
	return p, err
}

// SetMembersPosition records the position in the store's member-summary
// stream up to which every summary has been applied. It never moves the
// position back: a lower p is ignored.
func (l *Ledger) SetMembersPosition(ctx context.Context, p uint64) error {
	_, err := l.submit(ctx, func(w *wtx) (any, error) {
		if p > getU64(w.tx.Bucket(bMeta), kMembersPos) {
			w.put(bMeta, kMembersPos, u64(p))
		}
		return nil, nil
	})
	return err
}
