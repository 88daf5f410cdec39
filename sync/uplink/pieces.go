package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// Pieces says how far a catalogue delivered in pieces is (docs/protocol.md
// "Catalogue pieces"): the store document's version, the pieces held and
// wanted, the first missing ones, and whether the document is in force.
type Pieces struct {
	Version    uint64 `json:"version"`
	Have, Want int
	Missing    []int `json:"missing,omitempty"`
	Applied    bool  `json:"applied"`
	// Fetches counts the times the pieces were asked of the broker for
	// this version (the first time and every refetch).
	Fetches int `json:"fetches"`
}

func (p Pieces) String() string {
	s := fmt.Sprintf("store config version %d waiting for its catalogue: %d of %d pieces", p.Version, p.Have, p.Want)
	if len(p.Missing) > 0 {
		s += fmt.Sprintf(", missing %v", p.Missing)
	}
	return s
}

// pieceState is the pieced delivery in progress (guarded by Uplink.mu).
type pieceState struct {
	cur      *Pieces
	progress time.Time // last piece stored (or the manifest)
	fetched  time.Time // last time the pieces were asked for
	key      string    // the key that signed the staged document
}

// wantPieces records a pieced document waiting for pieces and asks the
// session to fetch them.
func (u *Uplink) wantPieces(p Pieces) {
	u.mu.Lock()
	if u.st.pieces.cur != nil && u.st.pieces.cur.Version == p.Version {
		p.Fetches = u.st.pieces.cur.Fetches
	}
	u.st.pieces.cur = &p
	u.st.pieces.progress = time.Now()
	u.mu.Unlock()
	select {
	case u.fetchSig <- struct{}{}:
	default:
	}
}

// applyPiece hands one verified piece to OnPiece. A piece of another
// version than the one staged (a leftover, or ahead of its document) is
// dropped quietly; an invalid one is refused and explained.
func (u *Uplink) applyPiece(ctx context.Context, t protocol.Topic, doc []byte) {
	fail := func(err error) {
		u.log.Warn("catalogue piece rejected", "err", err)
		u.count(func(s *state) { s.rejected++; s.cfgErr = err.Error() })
	}
	p, err := protocol.DecodePiece(doc, u.o.Store, t.Piece)
	if err != nil {
		fail(err)
		return
	}
	if u.o.OnPiece == nil {
		return
	}
	st, err := u.o.OnPiece(ctx, p, protocol.PieceDigest(doc))
	switch {
	case errors.Is(err, ledger.ErrOtherVersion), errors.Is(err, ledger.ErrStaleVersion):
		u.log.Debug("catalogue piece of another version ignored", "version", p.ConfigVersion, "index", p.Index, "err", err)
		u.count(func(s *state) { s.otherPieces++ })
		return
	case err != nil:
		fail(fmt.Errorf("catalogue piece %d of store config version %d: %w", p.Index, p.ConfigVersion, err))
		return
	}
	u.mu.Lock()
	if cur := u.st.pieces.cur; cur != nil && cur.Version == st.Version {
		st.Fetches = cur.Fetches
	}
	u.st.pieces.progress = time.Now()
	if st.Applied {
		u.st.pieces.cur = nil
		u.st.cfg.Store = st.Version
		if u.st.pieces.key != "" {
			u.st.keys.Store = u.st.pieces.key
		}
		u.st.cfgErr = ""
	} else {
		u.st.pieces.cur = &st
	}
	u.mu.Unlock()
	if st.Applied {
		u.log.Info("config applied", "scope", protocol.ScopeStore, "version", st.Version, "pieces", st.Want)
	}
}

// fetchPieces (session goroutine) subscribes to the store's catalogue
// pieces: the broker sends every retained piece, so a subscription is
// also how a register asks again for a missing piece or the whole
// version. It does nothing when no delivery is waiting.
func (s *session) fetchPieces(ctx context.Context, force bool) error {
	u := s.u
	u.mu.Lock()
	cur := u.st.pieces.cur
	due := cur != nil && (force || time.Since(u.st.pieces.progress) >= u.o.PieceTimeout && time.Since(u.st.pieces.fetched) >= u.o.PieceTimeout)
	if due {
		cur.Fetches++
		u.st.pieces.fetched = time.Now()
	}
	u.mu.Unlock()
	if !due {
		return nil
	}
	u.log.Info("asking the broker for catalogue pieces", "version", cur.Version, "have", cur.Have, "want", cur.Want, "fetch", cur.Fetches)
	if err := wait(ctx, s.conn.Subscribe(map[string]byte{protocol.CataloguePiecesFilter(u.o.Store): 1}), u.o.OpTimeout); err != nil {
		return fmt.Errorf("subscribe catalogue pieces: %w", err)
	}
	return nil
}
