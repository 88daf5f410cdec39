package uplink

import (
	"fmt"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// Refused counts documents from head office refused by reason: not
// signed, signed by a key not pinned here, a signature that does not
// match, an envelope that cannot be read, and replays (a genuine document
// older than the one in force).
type Refused struct {
	Unsigned     uint64 `json:"unsigned"`
	UnknownKey   uint64 `json:"unknown_key"`
	BadSignature uint64 `json:"bad_signature"`
	Malformed    uint64 `json:"malformed"`
	Replayed     uint64 `json:"replayed"`
	// Version counts documents (acks, config, members) in a protocol
	// version this register does not speak (docs/protocol.md
	// "Evolving the protocol").
	Version uint64 `json:"version"`
}

// Each calls f with every reason and its count (for metrics).
func (r Refused) Each(f func(reason string, n uint64)) {
	f("unsigned", r.Unsigned)
	f("unknown_key", r.UnknownKey)
	f("bad_signature", r.BadSignature)
	f("malformed", r.Malformed)
	f("replayed", r.Replayed)
	f("version", r.Version)
}

// verify checks head office's signature on a config or members message
// and returns the document inside and the id of the key that signed it. A
// refused one is counted and explained in ConfigError or MembersError;
// what is in force stays.
func (u *Uplink) verify(t protocol.Topic, topic string, msg []byte) ([]byte, string, bool) {
	limit := protocol.MaxConfigSize
	switch t.Kind {
	case protocol.KindMembers:
		limit = protocol.MaxMembersSize
	case protocol.KindCatalogue:
		limit = protocol.MaxPieceSize
	case protocol.KindErase:
		limit = protocol.MaxEraseSize
	}
	doc, key, err := u.o.Keys.Verify(topic, msg, limit+signing.Overhead)
	if err == nil {
		return doc, key, true
	}
	if u.o.Keys == nil {
		err = fmt.Errorf("%w (no head-office key pinned: sync.hq_keys)", err)
	}
	err = fmt.Errorf("refused %s document from %s: %w", t.Kind, topic, err)
	u.log.Warn("head-office document refused", "err", err)
	u.count(func(s *state) {
		s.rejected++
		s.countRefusal(err)
		switch t.Kind {
		case protocol.KindMembers:
			s.membersErr = err.Error()
		case protocol.KindErase:
			s.eraseErr = err.Error()
		default:
			s.cfgErr = err.Error()
		}
	})
	return nil, "", false
}

// countRefusal counts a head-office message refused for its signature by
// the reason signing gives (acks and documents alike).
func (s *state) countRefusal(err error) {
	switch signing.Reason(err) {
	case "unsigned":
		s.refused.Unsigned++
	case "unknown_key":
		s.refused.UnknownKey++
	case "bad_signature":
		s.refused.BadSignature++
	default:
		s.refused.Malformed++
	}
}
