package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/replica"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// Status is the document of GET /v1/status (docs/api.md).
type Status struct {
	Version      string            `json:"version"`
	Register     string            `json:"register"`
	Store        string            `json:"store"`
	UptimeS      int64             `json:"uptime_s"`
	ClockTrusted bool              `json:"clock_trusted"`
	Ledger       *LedgerStatus     `json:"ledger,omitempty"`
	LedgerError  string            `json:"ledger_error,omitempty"`
	Devices      []DeviceStatus    `json:"devices"`
	Sync         SyncStatus        `json:"sync"`
	Checkout     string            `json:"checkout"`
	SimDevices   map[string]string `json:"simulated_devices,omitempty"`
	// Clock is the ledger's view of the clock: trusted, synced, a fault
	// ("behind"/"ahead" of the trusted time seen), the high-water mark and
	// how many events wait for their time to be corrected.
	Clock *ledger.ClockStatus `json:"clock,omitempty"`
	// Replica is the second copy of the ledger (ledger.replica_dir);
	// absent when none is configured. Its behind is what a card death
	// would lose now.
	Replica *replica.Status `json:"replica,omitempty"`
	// ClockNote says in words what an untrusted or faulty clock holds
	// back; empty when the clock is trusted.
	ClockNote string `json:"clock_note,omitempty"`
}

// The clock notes of the status document.
const (
	NoteClockUnsynced = "The clock is not synchronised by NTP yet (a Pi has no real-time clock): campaigns, expiry, tier changes and cashier prompts wait until it is; sales and points are recorded."
	NoteClockFault    = "The clock disagrees with the trusted time seen before: expiry waits and tiers use the last trusted time. If the clock is right, confirm it: loyaltyctl clock confirm."
)

// SyncStatus is the sync part of Status: "online/offline, N pending,
// oldest T".
type SyncStatus struct {
	Enabled   bool      `json:"enabled"`
	Online    bool      `json:"online"`
	Pending   int       `json:"pending"`
	Oldest    time.Time `json:"oldest,omitzero"`
	LagS      int64     `json:"lag_s"`
	LastError string    `json:"last_error,omitempty"`
	Summary   string    `json:"summary"`
	// Config are head office's config versions in force (chain, store);
	// ConfigError is why the last config document was refused (the
	// previous one stays in force), empty after an accepted one.
	Config      *uplink.ConfigVersions `json:"config,omitempty"`
	ConfigError string                 `json:"config_error,omitempty"`
	// MembersError is why the last member summaries were refused;
	// Refused counts head office's documents refused by reason (unsigned,
	// unknown_key, bad_signature, malformed, replayed).
	MembersError string `json:"members_error,omitempty"`
	// AckError is why the last ack was refused (unsigned, or not signed
	// by a pinned key: nothing was forgotten on it, the events are kept
	// and resent); empty once a signed ack confirmed events.
	AckError string `json:"ack_error,omitempty"`
	// Erased counts head office's erasures carried out since start;
	// EraseError is why the last erase document or erasure failed.
	Erased     uint64          `json:"erased,omitempty"`
	EraseError string          `json:"erase_error,omitempty"`
	Refused    *uplink.Refused `json:"refused,omitempty"`
	// CataloguePieces is the catalogue delivery in progress (a store
	// document whose catalogue comes in pieces; docs/protocol.md
	// "Catalogue pieces"): absent when none is waiting.
	CataloguePieces *CataloguePieces `json:"catalogue_pieces,omitempty"`
	// MembersSeq is the position in head office's member-summary stream:
	// the last summaries message applied (0: none yet).
	MembersSeq uint64 `json:"members_seq"`
	// Fault is the link's own diagnosis: connected, events sent, and no
	// acknowledgement for sync.no_ack_fault_after (and why that may be).
	Fault string `json:"fault,omitempty"`
	// Incarnation is this ledger's incarnation id (docs/protocol.md
	// "Incarnations").
	Incarnation string `json:"incarnation,omitempty"`
	// Held is head office's word on why it holds this register's events
	// instead of applying them, and what to do; absent when it holds none.
	Held *HeldStatus `json:"held,omitempty"`
	// OtherLedger says that head office acknowledges another ledger under
	// this register id (a second register with the same register.id).
	OtherLedger string `json:"other_ledger,omitempty"`
	// Takeover says that the broker session keeps being taken over
	// (another register with this register id, most likely).
	Takeover string `json:"takeover,omitempty"`
	// Replaced says that this new ledger continues the stream of the
	// ledger it replaced (a new card), which head office must adopt.
	Replaced string `json:"replaced,omitempty"`
	// Renumbered says that this ledger, restored from an older copy,
	// sends its new events under a new incarnation after head office's
	// watermark (docs/operations.md "Restoring a register").
	Renumbered string `json:"renumbered,omitempty"`
}

// CataloguePieces is a pieced catalogue not complete yet; the previous
// catalogue stays in force until every piece is there.
type CataloguePieces struct {
	Version uint64 `json:"version"`
	Have    int    `json:"have"`
	Want    int    `json:"want"`
	Missing []int  `json:"missing,omitempty"`
	Fetches int    `json:"fetches"`
	// OtherVersion counts pieces of another version ignored since start.
	OtherVersion uint64 `json:"other_version"`
}

// HeldStatus is head office's notice on events it holds for review.
type HeldStatus struct {
	Reason string `json:"reason"` // incarnation, store, reused or lost
	Events uint64 `json:"events"`
	Text   string `json:"text"`
	// From..To are the sequence numbers head office lost and this
	// register no longer keeps (reason lost only).
	From uint64 `json:"from,omitempty"`
	To   uint64 `json:"to,omitempty"`
}

// StatusInput is what the status document is made of, read from the
// register's parts at one moment.
type StatusInput struct {
	Version, Register, Store string
	Now                      time.Time // for the sync lag
	Uptime                   time.Duration
	ClockTrusted             bool
	Ledger                   ledger.Stats
	LedgerErr                error // Ledger is unset when the ledger did not answer
	Devices                  []device.Health
	Simulated                map[string]string // simulated device name -> path
	Checkout                 string            // the checkout state
	// Sync is the uplink's status; nil when no uplink runs (sync disabled,
	// or SyncErr says why it could not start).
	Sync    *uplink.Status
	SyncErr error
	// Clock is the ledger's clock status; nil when it could not be read.
	Clock *ledger.ClockStatus
	// Replica is the second copy's status; nil when none is configured.
	Replica *replica.Status
	// OutboxOldest is the wall time of the oldest event head office has
	// not confirmed, when no uplink runs (zero: none pending).
	OutboxOldest time.Time
}

// NewStatus builds the status document.
func NewStatus(in StatusInput) Status {
	st := Status{Version: in.Version, Register: in.Register, Store: in.Store, UptimeS: int64(in.Uptime.Seconds()),
		ClockTrusted: in.ClockTrusted, Devices: []DeviceStatus{}, Checkout: in.Checkout}
	if in.LedgerErr != nil {
		st.LedgerError = in.LedgerErr.Error()
	} else {
		l := NewLedgerStatus(in.Ledger)
		st.Ledger = &l
	}
	for _, d := range in.Devices {
		st.Devices = append(st.Devices, DeviceStatus{Name: d.Name, Path: d.Path, State: string(d.State), LastError: d.LastError,
			Reopens: d.Reopens, Frames: d.Frames, Rejects: d.Rejects, Faults: d.Faults})
	}
	if len(in.Simulated) > 0 {
		st.SimDevices = in.Simulated
	}
	st.Sync = newSyncStatus(in)
	st.Clock = in.Clock
	st.Replica = in.Replica
	switch {
	case in.Clock != nil && in.Clock.Fault != "":
		st.ClockNote = NoteClockFault
	case !in.ClockTrusted:
		st.ClockNote = NoteClockUnsynced
	}
	return st
}

func newSyncStatus(in StatusInput) SyncStatus {
	var s SyncStatus
	if u := in.Sync; u != nil {
		s = SyncStatus{Enabled: true, Online: u.Online, Pending: u.Pending, Oldest: u.Oldest, LastError: u.LastError,
			Config: &u.Config, ConfigError: u.ConfigError, MembersError: u.MembersError, AckError: u.AckError, Refused: &u.Refused,
			Erased: u.Erased, EraseError: u.EraseError,
			Incarnation: u.Incarnation, MembersSeq: u.MembersSeq, Fault: u.Fault}
		if p := u.Pieces; p != nil {
			s.CataloguePieces = &CataloguePieces{Version: p.Version, Have: p.Have, Want: p.Want, Missing: p.Missing,
				Fetches: p.Fetches, OtherVersion: u.OtherPieces}
		}
		if u.Notice.Code != "" {
			s.Held = &HeldStatus{Reason: u.Notice.Code, Events: u.Notice.Held, Text: u.Notice.Text, From: u.Notice.From, To: u.Notice.To}
		}
		s.Takeover = u.Takeover
		if u.Replaced != "" {
			s.Replaced = fmt.Sprintf("this new ledger continues the stream of ledger %.8s after event %d; at head office, adopt it: loyalty-hq register adopt -config FILE %s %s",
				u.Replaced, u.ReplacedAt, in.Register, u.Incarnation)
		}
		if r := u.Renumbered; r != nil {
			if r.Continues != "" {
				s.Renumbered = fmt.Sprintf("this ledger (restored from an older copy, or by loyaltyctl register restore) sends its events from its number %d on to head office as %d on, under incarnation %.8s, which continues ledger %.8s; head office follows it by itself",
					r.FromLocal, r.First, r.Incarnation, r.Continues)
			} else {
				s.Renumbered = fmt.Sprintf("this ledger's events from its number %d on go to head office as %d on, under incarnation %.8s; at head office, adopt it: loyalty-hq register adopt -config FILE %s %s",
					r.FromLocal, r.First, r.Incarnation, in.Register, r.Incarnation)
			}
		}
		if u.OtherIncarnation != "" {
			s.OtherLedger = fmt.Sprintf("head office acknowledges another ledger (incarnation %.8s) under this register id: if another register uses the same register.id, give one of them its own", u.OtherIncarnation)
		}
		if !u.Oldest.IsZero() {
			s.LagS = int64(in.Now.Sub(u.Oldest).Seconds())
		}
	} else if in.LedgerErr == nil {
		// Without an uplink the outbox still counts what head office has
		// not confirmed; a register whose sync could not start is
		// "enabled" but offline, a standalone one "disabled" (and not
		// online: nothing reaches head office).
		s = SyncStatus{Online: false, Pending: in.Ledger.OutboxPending, Enabled: in.SyncErr != nil}
		if s.Pending > 0 && !in.OutboxOldest.IsZero() {
			s.Oldest = in.OutboxOldest
			s.LagS = int64(in.Now.Sub(in.OutboxOldest).Seconds())
		}
		if in.SyncErr != nil {
			s.LastError = "sync not started: " + in.SyncErr.Error()
		}
	}
	state := "online"
	if !s.Online {
		state = "offline"
	}
	if !s.Enabled {
		state = "disabled"
	}
	s.Summary = fmt.Sprintf("%s, %d pending", state, s.Pending)
	if !s.Oldest.IsZero() {
		s.Summary += ", oldest " + s.Oldest.UTC().Format(time.RFC3339)
	}
	if s.Held != nil {
		s.Summary += fmt.Sprintf(", %d held at head office (%s)", s.Held.Events, s.Held.Reason)
	}
	if s.Fault != "" {
		s.Summary += ", no acknowledgement"
	}
	return s
}

// LedgerStatus is the ledger part of the status document.
type LedgerStatus struct {
	Members       int    `json:"members"`
	Sales         int    `json:"sales"`
	Events        int    `json:"events"`
	OutboxPending int    `json:"outbox_pending"`
	LastSeq       uint64 `json:"last_seq"`
	Confirmed     uint64 `json:"confirmed"`
	// KeptFrom..Confirmed are the confirmed events still kept for a head
	// office restored from a backup (ledger.keep_confirmed_days), taking
	// KeptBytes.
	KeptFrom         uint64 `json:"kept_from"`
	KeptBytes        int64  `json:"kept_bytes"`
	FileSize         int64  `json:"file_size"`
	RuleVersion      int    `json:"rule_version"`
	CatalogueVersion int    `json:"catalogue_version"`
}

// NewLedgerStatus maps the ledger's counters onto the status document.
func NewLedgerStatus(st ledger.Stats) LedgerStatus {
	return LedgerStatus{Members: st.Members, Sales: st.Sales, Events: st.Events, OutboxPending: st.OutboxPending, LastSeq: st.LastSeq,
		Confirmed: st.Confirmed, KeptFrom: st.KeptFrom, KeptBytes: st.KeptBytes, FileSize: st.FileSize, RuleVersion: st.RuleVersion, CatalogueVersion: st.CatalogueVersion}
}

// DeviceStatus is one device in the status document.
type DeviceStatus struct {
	Name      string           `json:"name"`
	Path      string           `json:"path,omitempty"`
	State     string           `json:"state"`
	LastError string           `json:"last_error,omitempty"`
	Reopens   int              `json:"reopens"`
	Frames    int64            `json:"frames"`
	Rejects   map[string]int64 `json:"rejects,omitempty"`
	Faults    map[string]int64 `json:"faults,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if s.o.Status == nil {
		st, err := s.o.Ledger.Stats()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, 200, map[string]any{"ledger": NewLedgerStatus(st)})
		return
	}
	writeJSON(w, 200, s.o.Status(r.Context()))
}
