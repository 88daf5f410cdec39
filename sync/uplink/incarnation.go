package uplink

import (
	"errors"
	"fmt"
	"sync"
	"time"

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
	reg string // this register's id, for the texts
	// rn, when the outbox renumbers (ledger.Wire), says which
	// incarnations are this ledger's; inc is then the current one.
	rn renumberer

	mu     sync.Mutex
	inc    string           // the incarnation events are sent under now
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
	// renumbered is the last epoch this ledger numbered after head
	// office's watermark.
	renumbered ledger.Epoch
	// lastPlain is the last plain ack naming an incarnation (head office's
	// stream for this register id), nil before one came.
	lastPlain *signedAck
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
	mine := a.Incarnation == "" || id.rn != nil && id.rn.Owns(a.Incarnation)
	id.mu.Lock()
	defer id.mu.Unlock()
	if !mine && a.Incarnation != id.inc {
		id.others++
		id.other = a.Incarnation
		return false
	}
	id.notice = a.Notice
	if a.Notice == nil && a.Incarnation != "" && a.Incarnation == id.inc {
		// Head office follows this ledger (a replacement was adopted):
		// the REPLACED line and its adopt command are done.
		id.replaced, id.replacedAt = "", 0
	}
	if id.lostTo != 0 && a.Watermark >= id.lostTo {
		id.lostFrom, id.lostTo = 0, 0
	}
	return true
}

// Renumbered says that this ledger sends its events from local number
// FromLocal on under a new incarnation, as First on the wire: it was
// restored from an older backup or replaced a register and had sold
// before it first reached head office (docs/operations.md).
type Renumbered struct {
	Incarnation string `json:"incarnation"`
	// Continues is the incarnation it declares it continues (head office
	// follows it at once); empty: head office adopts it.
	Continues string `json:"continues,omitempty"`
	FromLocal uint64 `json:"from_local"`
	First     uint64 `json:"first"`
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
	if e := id.renumbered; e.Incarnation != "" {
		s.Renumbered = &Renumbered{Incarnation: e.Incarnation, Continues: e.Prev, FromLocal: e.From, First: e.From + e.Delta}
	}
	switch {
	case id.notice != nil:
		s.Notice = Notice{Code: id.notice.Code, Held: id.notice.Held, Text: id.notice.Text}
	case id.lostTo != 0:
		s.Notice = Notice{Code: NoticeLost, Held: id.lostTo - id.lostFrom + 1, From: id.lostFrom, To: id.lostTo,
			Text: fmt.Sprintf("head office lost events %d..%d of this register after confirming them (restored from a backup?) and this register "+
				"no longer keeps them: at head office, run loyalty-hq register gap -config FILE %s %d %d (or -store FILE with serve stopped; docs/operations.md)", id.lostFrom, id.lostTo, id.reg, id.lostFrom, id.lostTo)}
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
func (u *Uplink) continueStream(sa *signedAck) bool {
	a := sa.Ack
	rb, ok := u.ob.(rebaser)
	if !ok || a.Incarnation == "" || a.Watermark == 0 || !u.id.fresh() {
		return false
	}
	// Only on head office's word (a signed ack): a forged one would make
	// the new ledger number its events after a watermark of the forger's.
	if !u.check(sa) || !u.id.tryRebase() {
		return false
	}
	if err := rb.Rebase(a.Watermark); err != nil {
		if !errors.Is(err, ledger.ErrNotFresh) {
			u.log.Warn("continue the stream of the ledger this one replaces", "err", err)
		}
		return false
	}
	u.log.Warn("new ledger: continuing this register's stream after head office's watermark; head office must adopt it (loyalty-hq register adopt)",
		"after", a.Watermark, "old_incarnation", a.Incarnation)
	u.id.rebased(a.Incarnation, a.Watermark)
	u.id.refresh()
	return true
}

// fresh reports whether continueStream has not tried yet.
func (id *identity) fresh() bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	return !id.rebaseTried
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

// renumberer is implemented by an Outbox that can send a ledger's events
// under a new incarnation, numbered after head office's watermark
// (ledger.Wire): a ledger restored from an older backup, or a replacement
// that sold before it first reached head office.
type renumberer interface {
	Owns(inc string) bool
	Incarnation() (string, error)
	Reincarnate(claim bool) (ledger.Epoch, error)
	Learn(inc string, w uint64) (ledger.Epoch, bool, error)
	LearnNothing() (ledger.Epoch, bool, error)
	Ahead(w uint64) (bool, error)
	Waiting() (ledger.Epoch, bool, error)
	OutboxStamped(after uint64, max int) ([]ledger.OutboxRecord, ledger.Stamp, error)
}

// refresh reads the incarnation events are sent under now.
func (id *identity) refresh() {
	if id.rn == nil {
		return
	}
	inc, err := id.rn.Incarnation()
	if err != nil {
		return
	}
	id.mu.Lock()
	id.inc = inc
	id.mu.Unlock()
}

func (id *identity) current() string {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.inc
}

// renumber looks at a plain ack (no hold notice: its watermark is head
// office's stream) before it is applied. An ack for this ledger's current
// incarnation beyond its last event means the ledger is an older copy
// (restored from a backup without loyaltyctl register restore): from its
// next event on it sends under a new incarnation that declares the old one
// its predecessor, numbered after head office's watermark, so head office
// follows it at once and nothing it records collides with what head office
// holds. A new incarnation waiting for its numbers (after a restore) takes
// them from the ack. It reports whether the ack's watermark now counts
// for this ledger (the numbers skipped are held at head office).
func (u *Uplink) renumber(sa *signedAck) bool {
	a := sa.Ack
	rn := u.id.rn
	if rn == nil || a.Incarnation == "" || a.Notice != nil && a.Notice.Code != protocol.NoticePolicy {
		return false
	}
	last := *sa // Restore checks its own copy
	u.id.mu.Lock()
	u.id.lastPlain = &last
	u.id.mu.Unlock()
	if a.Incarnation == u.id.current() && a.Watermark > 0 {
		// Renumbering only on head office's word (a signed ack, checked
		// here: rare): a forged watermark would send this ledger's
		// events under numbers of the forger's choosing.
		if ahead, err := rn.Ahead(a.Watermark); err == nil && ahead && u.check(sa) {
			ep, err := rn.Reincarnate(true)
			if err != nil {
				u.log.Error("ledger restored from an older backup: start a new incarnation", "err", err)
				return false
			}
			u.log.Warn("head office holds more of this ledger's stream than the ledger has: it was restored from an older backup; "+
				"its next events go under a new incarnation after head office's watermark", "watermark", a.Watermark,
				"incarnation", ep.Incarnation, "from_local", ep.From)
			u.count(func(st *state) { st.lastErr = "" })
		}
	}
	if _, waits, err := rn.Waiting(); err != nil || !waits || !u.check(sa) {
		return false
	}
	ep, ok, err := rn.Learn(a.Incarnation, a.Watermark)
	if err != nil {
		u.log.Error("number the new incarnation after head office's watermark", "err", err)
		return false
	}
	if !ok {
		return false
	}
	u.log.Warn("new incarnation numbered after head office's watermark", "incarnation", ep.Incarnation,
		"first", ep.From+ep.Delta, "from_local", ep.From, "continues", ep.Prev)
	u.id.refresh()
	u.id.mu.Lock()
	u.id.ahead = 0
	u.id.renumbered = ep
	u.id.mu.Unlock()
	return true
}

// waiting reports whether a new incarnation waits for head office's
// watermark (loyaltyctl register restore).
func (u *Uplink) waiting() bool {
	if u.id.rn == nil {
		return false
	}
	_, w, err := u.id.rn.Waiting()
	return err == nil && w
}

// noAckToLearn numbers a waiting incarnation right after the ledger's
// previous numbers when a session brought no ack at all within
// firstAckWait: the broker keeps no acknowledgement to this register id,
// so head office has none of its stream (a register id it never heard
// of) or the broker lost it (head office then holds the events until an
// operator adopts the incarnation).
func (u *Uplink) noAckToLearn() {
	ep, ok, err := u.id.rn.LearnNothing()
	if err != nil {
		u.log.Error("number the new incarnation", "err", err)
		return
	}
	if !ok {
		return
	}
	u.log.Warn("no acknowledgement from head office to this register id: the new incarnation goes on with the ledger's own numbers",
		"incarnation", ep.Incarnation, "first", ep.From+ep.Delta)
	u.id.refresh()
	u.id.mu.Lock()
	u.id.renumbered = ep
	u.id.mu.Unlock()
}

// ErrNoRenumbering: Restore on an uplink whose outbox cannot renumber.
var ErrNoRenumbering = errors.New("uplink: this ledger cannot start a new incarnation")

// Restore starts a new incarnation with the ledger's next event that
// claims the stream head office follows for this register id
// (loyaltyctl register restore: a ledger restored from a backup, or a
// fresh one, on a register head office knows). Its numbers come from head
// office's last plain ack when one was seen, else from the next session's
// (docs/operations.md "Restoring a register").
func (u *Uplink) Restore() (ledger.Epoch, error) {
	rn := u.id.rn
	if rn == nil {
		return ledger.Epoch{}, ErrNoRenumbering
	}
	ep, err := rn.Reincarnate(true)
	if err != nil {
		return ledger.Epoch{}, err
	}
	u.log.Warn("restore: the ledger's next events go under a new incarnation that continues head office's stream for this register id",
		"incarnation", ep.Incarnation, "from_local", ep.From)
	u.id.mu.Lock()
	last := u.id.lastPlain
	u.id.mu.Unlock()
	u.mu.Lock()
	quiet := u.st.online && u.st.acks == 0 && time.Since(u.st.since) > firstAckWait
	u.mu.Unlock()
	switch {
	case last != nil:
		u.renumber(last)
	case quiet:
		u.noAckToLearn()
	}
	if _, waits, err := rn.Waiting(); err == nil && !waits {
		u.id.mu.Lock()
		eps := u.id.renumbered
		u.id.mu.Unlock()
		return eps, nil
	}
	return ep, nil
}
