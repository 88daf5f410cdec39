package ledger

import (
	"context"
	"fmt"

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
// stream up to which every summary has been applied, and key, the id of
// head office's key that signed the part that moved it there
// (DocKeys.Members; "": not known). It never moves the position back: a
// lower p is ignored.
func (l *Ledger) SetMembersPosition(ctx context.Context, p uint64, key string) error {
	_, err := l.submit(ctx, func(w *wtx) (any, error) {
		meta := w.tx.Bucket(bMeta)
		if p <= getU64(meta, kMembersPos) {
			return nil, nil
		}
		w.put(bMeta, kMembersPos, u64(p))
		if key == "" {
			return nil, nil
		}
		k, err := readDocKeys(meta)
		if err != nil || k.Members == key {
			return nil, err
		}
		k.Members = key
		w.putJSON(bMeta, kDocKeys, k)
		return nil, nil
	})
	return err
}

// RebaseMembers starts the register's position in its store's
// member-summary stream again from 0, for a position set by summaries of
// a key no longer pinned (DocKeys.Lifts: a leaked key the operator
// removed) when a summary of seq, signed by key (pinned), arrives. Every
// member summary of a version above seq is dropped in the same
// transaction: head office's own stream is not there yet, so they came
// from the removed key, and kept they would hold back head office's
// summaries of those members (a summary is applied only over an older
// one). Such a member's balance is this register's own again until head
// office's summary arrives; the register then catches up on the whole
// stream. It returns the number of summaries dropped.
func (l *Ledger) RebaseMembers(ctx context.Context, seq uint64, key string) (int, error) {
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		meta := w.tx.Bucket(bMeta)
		k, err := readDocKeys(meta)
		if err != nil {
			return nil, err
		}
		var ids []string
		err = forEachMemberRow(w.tx, func(id string, v []byte) error {
			var rec memberRec
			if err := decodeMemberRow(v, &rec); err != nil {
				return fmt.Errorf("decode member %q: %w", id, err)
			}
			if rec.Summary != nil && rec.Summary.Version > seq {
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			rec, err := w.member(id)
			if err != nil {
				return nil, err
			}
			rec.Summary = nil
			w.saveMember(rec)
		}
		w.put(bMeta, kMembersPos, u64(0))
		k.Members = key
		w.putJSON(bMeta, kDocKeys, k)
		return len(ids), nil
	})
	if err != nil {
		return 0, err
	}
	return res.(int), nil
}
