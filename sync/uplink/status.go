package uplink

import (
	"fmt"
	"time"
)

// Status is a snapshot of the link for the daemon, loyaltyctl and the
// cashier's signal.
type Status struct {
	Online bool
	// Pending is the number of events head office has not acknowledged.
	Pending int
	// Oldest is the wall time of the oldest pending event (zero when none);
	// OldestTrusted says whether that clock was synced.
	Oldest        time.Time
	OldestTrusted bool
	// Watermark is the last sequence number head office acknowledged.
	Watermark uint64
	// Published is the highest sequence number handed to the broker.
	Published uint64
	// LastAck is when the last acknowledgement arrived (local clock).
	LastAck time.Time
	// LastError is why the link last went down, empty while it is fine.
	LastError string
	// Config are the config versions in force; ConfigError is why the
	// last rejected config was rejected (empty after an accepted one).
	Config      ConfigVersions
	ConfigError string
	// MembersSeq is the last members message applied; MembersError why
	// the last one was rejected.
	MembersSeq   uint64
	MembersError string
	// AckError is why the last ack was refused (unsigned, or not signed
	// by a pinned key): the register forgot nothing on it and resends.
	// Empty until one is; cleared by a Confirm on a verified ack.
	AckError string
	// Erased counts the erasures carried out since start; EraseError is
	// why the last erase document or erasure failed (empty after one
	// that succeeded).
	Erased     uint64
	EraseError string
	// Pieces is the catalogue delivery in progress (nil when none);
	// OtherPieces counts pieces of another version ignored since start.
	Pieces      *Pieces
	OtherPieces uint64
	// Refused counts the documents from head office refused since start,
	// by reason (also counted in Rejected).
	Refused Refused
	// Rejected counts downstream messages rejected since start; Resends
	// counts rewinds to the watermark; Sessions counts connections.
	Rejected, Resends, Sessions uint64
	// Incarnation is this ledger's incarnation id (empty: legacy).
	Incarnation string
	// Notice is head office's word on why it holds this ledger's events
	// (zero when it holds none).
	Notice Notice
	// OtherIncarnation is the last other incarnation of this register id
	// that head office acknowledged (another ledger uses this id), and
	// OtherAcks how many such acks arrived since start.
	OtherIncarnation string
	OtherAcks        uint64
	// Takeover, when not empty, says that the broker session keeps being
	// taken over (connections lost within TakeoverWithin, several in a
	// row): another register may use this register id. Takeovers counts
	// such runs since start.
	Takeover  string
	Takeovers uint64
	// Fault is the link's own diagnosis when it is up and yet nothing
	// comes back (see Options.NoAckFault); empty when none.
	Fault string
	// Replaced is the incarnation of the ledger this new one replaces
	// (it continued that stream after sequence ReplacedAt); empty when
	// it did not.
	Replaced   string
	ReplacedAt uint64
	// Renumbered, when set, says this ledger sends its events from some
	// point on under a new incarnation after head office's watermark.
	Renumbered *Renumbered
}

// Status returns the current link status. It reads the ledger's outbox
// counters (a bbolt read transaction, which never waits for a sale).
func (u *Uplink) Status() Status {
	u.mu.Lock()
	s := Status{Online: u.st.online, Watermark: u.st.watermark, Published: u.st.published,
		LastAck: u.st.lastAck, LastError: u.st.lastErr, Config: u.st.cfg, ConfigError: u.st.cfgErr,
		MembersSeq: u.st.membersSeq, MembersError: u.st.membersErr, Refused: u.st.refused, AckError: u.st.ackErr,
		Erased: u.st.erased, EraseError: u.st.eraseErr,
		Rejected: u.st.rejected, Resends: u.st.resends, Sessions: u.st.sessions, Takeovers: u.st.takeovers, OtherPieces: u.st.otherPieces,
		Fault: u.faultLocked(time.Now())}
	if p := u.st.pieces.cur; p != nil {
		c := *p
		c.Missing = append([]int(nil), p.Missing...)
		s.Pieces = &c
	}
	lasting := u.st.online && time.Since(u.st.since) >= u.o.TakeoverWithin
	if u.st.quickLosses >= takeoverRun && !lasting {
		s.Takeover = fmt.Sprintf("the broker connection was taken over %d times in a row within %s of connecting: another register may use register id %s "+
			"(a copied config); give each register its own register.id (docs/operations.md)", u.st.quickLosses, u.o.TakeoverWithin, u.o.Register)
	}
	u.mu.Unlock()
	u.id.status(&s)
	if n, oldest, err := u.ob.OutboxStats(); err == nil {
		s.Pending = n
		if n > 0 {
			s.Oldest, s.OldestTrusted = oldest.WallTime, oldest.ClockTrusted
		}
	} else {
		s.Pending = -1
	}
	return s
}

// String is the one-line form: "online, 0 pending, last ack 2s ago,
// watermark 41" or "offline, 12 pending, oldest 10:02:11, ...".
func (s Status) String() string {
	state := "offline"
	if s.Online {
		state = "online"
	}
	out := fmt.Sprintf("%s, %d pending", state, s.Pending)
	if s.Pending > 0 && !s.Oldest.IsZero() {
		out += ", oldest " + s.Oldest.Format(time.DateTime)
		if !s.OldestTrusted {
			out += " (clock not synced)"
		}
	}
	if s.LastAck.IsZero() {
		out += ", no ack yet"
	} else {
		out += ", last ack " + s.LastAck.Format(time.DateTime)
	}
	out += fmt.Sprintf(", watermark %d", s.Watermark)
	if s.LastError != "" {
		out += ", last error: " + s.LastError
	}
	if s.ConfigError != "" {
		out += ", config rejected: " + s.ConfigError
	}
	if s.AckError != "" {
		out += ", " + s.AckError
	}
	if s.Pieces != nil {
		out += ", " + s.Pieces.String()
	}
	if s.Notice.Code != "" {
		out += fmt.Sprintf(", head office holds %d events: %s", s.Notice.Held, s.Notice.Text)
	}
	if s.Takeover != "" {
		out += ", " + s.Takeover
	}
	if s.Fault != "" {
		out += ", " + s.Fault
	}
	return out
}
