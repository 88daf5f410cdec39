package uplink

import (
	"errors"
	"fmt"
	"sync"

	"github.com/loyalty-terminal/loyalty/ledger"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// incarnationSource is implemented by an Outbox that knows its ledger's
// incarnation (*ledger.Ledger does). Without it the register sends events
// without one (the legacy incarnation).
type incarnationSource interface {
	Incarnation() (string, error)
}

// identity is this register's ledger incarnation and what head office last
// said about it.
type identity struct {
	inc string // immutable after New
	reg string // this register's id, for the texts

	mu     sync.Mutex
	notice *protocol.Notice // from the last ack for our incarnation
	others uint64           // acks seen for another incarnation of our id
	other  string           // the last such incarnation
	// ahead is a watermark head office acknowledged for this incarnation
	// beyond the ledger's last event (0: none since the last confirm).
	ahead uint64
	// lostFrom..lostTo are events head office asked for again after it
	// had confirmed them and this ledger pruned them (0: none).
	lostFrom, lostTo uint64
	// rebaseTried: continueStream ran; replaced and replacedAt: the
	// incarnation this new ledger continues, after which sequence.
	rebaseTried bool
	replaced    string
	replacedAt  uint64
}

// NoticeLost is the status notice code for events head office confirmed,
// then lost (it was restored from a backup), which this ledger no longer
// has.
const NoticeLost = "lost"

// lost records that head office asked for events from..to again after
// confirming them.
func (id *identity) lost(from, to uint64) {
	id.mu.Lock()
	id.lostFrom, id.lostTo = from, max(id.lostTo, to)
	id.mu.Unlock()
}

// behind records that head office acknowledged w for this ledger, beyond
// its last event: head office has events of this incarnation the ledger
// does not, so the ledger is an older copy (restored from a backup).
func (id *identity) behind(w uint64) {
	id.mu.Lock()
	id.ahead = max(id.ahead, w)
	id.mu.Unlock()
}

// caughtUp clears behind after a confirm succeeded.
func (id *identity) caughtUp() {
	id.mu.Lock()
	id.ahead = 0
	id.mu.Unlock()
}

// forUs reports whether an ack applies to this ledger: an ack naming no
// incarnation comes from a head office older than incarnations and covers
// the register id as before; one naming another incarnation is for another
// ledger using this register id and is applied to nothing. It records the
// ack's notice (or its absence) for Status.
func (id *identity) forUs(a protocol.Ack) bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	if a.Incarnation != "" && a.Incarnation != id.inc {
		id.others++
		id.other = a.Incarnation
		return false
	}
	id.notice = a.Notice
	if id.lostTo != 0 && a.Watermark >= id.lostTo {
		id.lostFrom, id.lostTo = 0, 0
	}
	return true
}

// Notice is head office's word on this register's events, for Status.
type Notice struct {
	// Code is a protocol.Notice* code; empty when all is well.
	Code string
	// Held is how many of this ledger's events head office holds.
	Held uint64
	// Text says what is wrong and what to do.
	Text string
	// From..To are the events head office lost and this ledger no longer
	// keeps (Code NoticeLost only).
	From, To uint64
}

func (id *identity) status(s *Status) {
	id.mu.Lock()
	defer id.mu.Unlock()
	s.Incarnation = id.inc
	switch {
	case id.notice != nil:
		s.Notice = Notice{Code: id.notice.Code, Held: id.notice.Held, Text: id.notice.Text}
	case id.lostTo != 0:
		s.Notice = Notice{Code: NoticeLost, Held: id.lostTo - id.lostFrom + 1, From: id.lostFrom, To: id.lostTo,
			Text: fmt.Sprintf("head office lost events %d..%d of this register after confirming them (restored from a backup?) and this register "+
				"no longer keeps them: at head office, run loyalty-hq register gap %s %d %d (docs/operations.md)", id.lostFrom, id.lostTo, id.reg, id.lostFrom, id.lostTo)}
	case id.ahead != 0:
		s.Notice = Notice{Code: protocol.NoticeReused, Text: fmt.Sprintf("head office holds events of this ledger up to sequence %d, beyond its last one: "+
			"this ledger looks restored from an older backup; its new events are held at head office. Do not delete it; see docs/operations.md", id.ahead)}
	}
	s.OtherIncarnation = id.other
	s.OtherAcks = id.others
	s.Replaced, s.ReplacedAt = id.replaced, id.replacedAt
}

// rebaser is implemented by an Outbox that can make a ledger without
// events continue a stream (*ledger.Ledger does).
type rebaser interface {
	Rebase(w uint64) error
}

// continueStream handles head office's ack to another incarnation of this
// register id while this ledger has never recorded an event: a register
// replacing a dead one (a new card, same config). The ledger then
// continues that stream after head office's watermark, so its numbers
// never reuse the old ledger's; head office holds its events until an
// operator adopts the new incarnation (loyalty-hq register adopt). Tried
// once: a ledger with events keeps its numbers (and head office holds
// them, as for a second register with the same id).
func (u *Uplink) continueStream(a protocol.Ack) bool {
	rb, ok := u.ob.(rebaser)
	if !ok || a.Incarnation == "" || a.Watermark == 0 || !u.id.tryRebase() {
		return false
	}
	if err := rb.Rebase(a.Watermark); err != nil {
		if !errors.Is(err, ledger.ErrNotFresh) {
			u.log.Warn("continue the stream of the ledger this one replaces", "err", err)
		}
		return false
	}
	u.log.Warn("new ledger: continuing this register's stream after head office's watermark; head office must adopt it (loyalty-hq register adopt)",
		"after", a.Watermark, "old_incarnation", a.Incarnation, "incarnation", u.id.inc)
	u.id.rebased(a.Incarnation, a.Watermark)
	return true
}

// tryRebase reports whether continueStream may try (once).
func (id *identity) tryRebase() bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.rebaseTried {
		return false
	}
	id.rebaseTried = true
	return true
}

func (id *identity) rebased(old string, w uint64) {
	id.mu.Lock()
	id.replaced, id.replacedAt = old, w
	id.mu.Unlock()
}
