package uplink

import (
	"fmt"
	"slices"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// Head office signs its acks (sync/signing, bound to the register's ack
// topic) and the register forgets or renumbers on a signed one only: an
// ack is what makes it forget events, and whoever can publish on the
// broker could otherwise make it forget what head office never got
// (docs/security.md). Verifying costs about 60 us here and 0.5 ms on a
// Pi, more than the rest of taking an ack, so it is lazy where it can be:
// an unsigned ack is refused at once; a signed one is read unverified
// (signing.Unverified) and its bytes are kept with the highest watermark;
// the session verifies them only when a Confirm is due (at most one
// verify per Confirm, coalesced by ConfirmEvery), on the Confirm's own
// goroutine. An ack that renumbers or continues a stream is verified
// before it does (rare). A gap request only makes the register resend:
// it is acted on unverified, as is an ack's notice (status text).

// ackProof is the live ack that carried a watermark, as received: the
// bytes to verify before a Confirm relies on it.
type ackProof struct {
	w     uint64
	topic string
	msg   []byte
	ok    bool // its signature was verified
}

// covers reports whether the proof, once verified, vouches for w.
func (p ackProof) covers(w uint64) bool { return p.msg != nil && w <= p.w }

// same reports whether q is the same ack as p.
func (p ackProof) same(q ackProof) bool {
	return p.msg != nil && p.w == q.w && string(p.msg) == string(q.msg)
}

// signedAck is an ack read from its envelope before its signature was
// checked; check verifies it once, when something is about to rely on it.
type signedAck struct {
	protocol.Ack
	topic   string
	msg     []byte
	checked bool
	good    bool
}

// check verifies the ack's signature (once) and counts a refusal.
func (u *Uplink) check(sa *signedAck) bool {
	if !sa.checked {
		sa.checked = true
		err := u.verifyAck(sa.topic, sa.msg)
		sa.good = err == nil
		if err != nil {
			u.refuseAck(sa.topic, err)
		}
	}
	return sa.good
}

// verifyAck checks head office's signature on an ack envelope.
func (u *Uplink) verifyAck(topic string, msg []byte) error {
	_, err := u.o.Keys.Open(topic, msg, protocol.MaxAckSize+signing.Overhead)
	if err != nil && u.o.Keys == nil {
		err = fmt.Errorf("%w (no head-office key pinned: sync.hq_keys)", err)
	}
	return err
}

// openAck reads an ack from its envelope without verifying the signature.
// An unsigned or unreadable one is refused (counted, and said in
// AckError): the register keeps its events and resends them.
func (u *Uplink) openAck(topic string, msg []byte) (*signedAck, bool) {
	if len(msg) > protocol.MaxAckSize+signing.Overhead {
		u.refuseAck(topic, fmt.Errorf("%w: ack of %d bytes", signing.ErrMalformed, len(msg)))
		return nil, false
	}
	doc, key, err := signing.UnverifiedKey(msg)
	if err == nil && u.o.Keys != nil && !u.o.Keys.Pinned(key) {
		// One signed by a key not pinned here is refused at once, like
		// an unsigned one (review11: refused only at Confirm, each one
		// sent every unconfirmed event again: 231,800 duplicates at head
		// office in 3 s from a register pinning another key).
		err = fmt.Errorf("%w: key %q", signing.ErrUnknownKey, key)
	}
	if err != nil {
		u.refuseAck(topic, err)
		return nil, false
	}
	a, err := protocol.DecodeAck(doc, u.o.Register)
	if err != nil {
		// An ack in a version this register does not speak is never
		// applied (its watermark might mean something else): the
		// events stay in the ledger and are resent until head office
		// answers in a version this register speaks.
		u.countVersion(err)
		u.reject(err.Error())
		return nil, false
	}
	return &signedAck{Ack: a, topic: topic, msg: slices.Clone(msg)}, true
}

// refuseAck counts an ack refused for its signature and says why in
// AckError.
func (u *Uplink) refuseAck(topic string, err error) {
	err = fmt.Errorf("refused ack from %s: %w; nothing is forgotten on it, the events are kept and resent "+
		"(head office signs its acks since this release: upgrade head office first, docs/operations.md)", topic, err)
	u.log.Warn("head-office ack refused", "err", err)
	u.count(func(s *state) {
		s.rejected++
		s.countRefusal(err)
		s.ackErr = err.Error()
	})
}
