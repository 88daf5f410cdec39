package uplink

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// DefaultNoAckFault is how long a link may be up, with events sent, and
// no acknowledgement come back before the register says why that may be.
const DefaultNoAckFault = 5 * time.Minute

// Fault is the link's own diagnosis (Status.Fault) without reading the
// ledger: empty when there is none.
func (u *Uplink) Fault() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.faultLocked(time.Now())
}

// faultLocked names the fault a broker cannot: the connection is up and
// events went out, but for NoAckFault nothing came back. The broker drops
// the publishes of a client its ACL does not allow without a word (a
// register using another register's certificate, or a user name the ACL
// does not know), and a head office that is down looks the same from
// here. Callers hold u.mu.
func (u *Uplink) faultLocked(now time.Time) string {
	st := &u.st
	if !st.online || st.published <= st.watermark {
		return ""
	}
	since := st.since
	if st.lastAck.After(since) {
		since = st.lastAck
	}
	d := now.Sub(since)
	if since.IsZero() || d < u.o.NoAckFault {
		return ""
	}
	return fmt.Sprintf("connected, %d sent, no acknowledgement for %s: check this register's certificate identity "+
		"(or user name) and the broker's ACL, or whether head office is running", st.published-st.watermark, d.Truncate(time.Second))
}

// fleetStatus fills the fields of the retained status that head office's
// fleet page shows.
func (u *Uplink) fleetStatus(s *protocol.Status) {
	clip := func(t string) string {
		if len(t) <= protocol.MaxStatusText {
			return t
		}
		i := protocol.MaxStatusText
		for i > 0 && !utf8.RuneStart(t[i]) {
			i--
		}
		return t[:i]
	}
	inc := u.id.current() // under the identity's lock, which refresh takes
	u.mu.Lock()
	defer u.mu.Unlock()
	s.Watermark = u.st.watermark
	s.Published = u.st.published
	s.Software = clip(u.o.Software)
	s.Config = &protocol.StatusConfig{Chain: u.st.cfg.Chain, Store: u.st.cfg.Store}
	s.ConfigError = clip(u.st.cfgErr)
	s.MembersSeq = u.st.membersSeq
	s.Incarnation, s.Takeovers = inc, u.st.takeovers
	s.MembersMax = max(u.st.membersMax, u.st.membersSeq)
	s.MembersError = clip(u.st.membersErr)
	s.LastError = clip(u.st.lastErr)
	s.Fault = clip(u.faultLocked(time.Now()))
	s.Notices = protocol.NoticeCodes
	s.AckFields = protocol.AckFields
	s.MemberFields = protocol.MemberFields
}
