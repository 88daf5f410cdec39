package uplink

import (
	"sync"

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

	mu     sync.Mutex
	notice *protocol.Notice // from the last ack for our incarnation
	others uint64           // acks seen for another incarnation of our id
	other  string           // the last such incarnation
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
}

func (id *identity) status(s *Status) {
	id.mu.Lock()
	defer id.mu.Unlock()
	s.Incarnation = id.inc
	if id.notice != nil {
		s.Notice = Notice{Code: id.notice.Code, Held: id.notice.Held, Text: id.notice.Text}
	}
	s.OtherIncarnation = id.other
	s.OtherAcks = id.others
}
