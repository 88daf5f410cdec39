package uplink

import (
	"context"
	"fmt"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// applyErase carries out the erasures of a verified erase document
// (docs/protocol.md "Member erasure"). Each is done once (the ledger
// remembers); a replayed document, which can only list erasures head
// office signed for this store, changes nothing new. A failed erasure is
// tried again at the next delivery of the (retained) document.
func (u *Uplink) applyErase(ctx context.Context, b []byte) {
	fail := func(err error) {
		u.log.Warn("erase document not carried out", "err", err)
		u.countVersion(err)
		u.count(func(s *state) { s.rejected++; s.eraseErr = err.Error() })
	}
	d, err := protocol.DecodeErase(b, u.o.Store)
	if err != nil {
		fail(err)
		return
	}
	if u.o.OnErase == nil {
		fail(fmt.Errorf("erase document with %d erasures: erasure is not wired here", len(d.Erasures)))
		return
	}
	for _, e := range d.Erasures {
		did, err := u.o.OnErase(ctx, e.Member, e.N)
		if err != nil {
			fail(fmt.Errorf("erasure %d of member %s: %w", e.N, e.Member, err))
			return
		}
		if did {
			u.log.Info("member erased on head office's word", "member", e.Member, "erasure", e.N)
			u.count(func(s *state) { s.erased++ })
		}
	}
	u.count(func(s *state) { s.eraseErr = "" })
}

// subscribeErase subscribes to the store's erase topic on its own: a
// broker whose ACL predates the topic refuses it, and that must not keep
// the register off the network (the refusal is logged and shown as the
// erase error).
func (u *Uplink) subscribeErase(ctx context.Context, conn broker.Conn) {
	if err := wait(ctx, conn.Subscribe(map[string]byte{protocol.EraseTopic(u.o.Store): 1}), u.o.OpTimeout); err != nil {
		err = fmt.Errorf("subscribe %s (is the broker ACL current? loyalty-hq acl): %w", protocol.EraseTopic(u.o.Store), err)
		u.log.Warn("erase documents not received", "err", err)
		u.count(func(s *state) { s.eraseErr = err.Error() })
	}
}
