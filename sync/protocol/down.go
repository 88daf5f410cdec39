package protocol

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Downstream and status size limits, checked before any parsing.
const (
	MaxAckSize     = 1 << 10 // bytes
	MaxStatusSize  = 4 << 10
	MaxConfigSize  = 1 << 20
	MaxMembersSize = 1 << 20
	MaxMembers     = 5000 // member summaries per message
)

// Bounds on head office's numbers, the same as head office's store keeps
// for itself: a document beyond them is malformed, whoever signed it, so
// no single message can give a member 2^40 points or push a version or
// sequence to the top of its range (after which nothing genuine would be
// newer).
const (
	// MaxBalance bounds a summary's balance in either direction
	// (hqstore's bound on a point event's amount).
	MaxBalance = ledger.Points(1) << 40
	// MaxConfigVersion bounds config_version (integers above it do not
	// survive a float64 round trip in other JSON tools).
	MaxConfigVersion = uint64(1) << 53
	// MaxMembersSeq bounds a members message's seq: head office's epoch
	// (restarts) in the high 32 bits and a counter in the low 32.
	MaxMembersSeq = uint64(1) << 56
)

// Ack is head office's acknowledgement to one register. Watermark is the
// highest sequence number such that every event 1..Watermark is durably
// applied at head office; the register may forget events up to it. Gap, when
// non-zero, asks the register to resend from that sequence number (it is
// always Watermark+1 when head office saw a later event first). GapTo, when
// non-zero, ends the request: head office holds the events after it, so
// the register resends Gap..GapTo only and goes on from where it was. Head
// office sends GapTo only to registers that list AckGapTo in their status
// (Status.AckFields): a register before it refuses an ack with a field it
// does not know.
//
// Incarnation names the ledger incarnation the ack is for; head office sets
// it when the register's events carried one. A register applies an ack that
// names another incarnation to nothing (another ledger uses its id), so it
// never prunes an event head office holds different content for. Notice,
// when present, says why head office holds this incarnation's events
// instead of applying them (docs/protocol.md "Held events").
type Ack struct {
	V           int     `json:"v"`
	Register    string  `json:"register"`
	Incarnation string  `json:"incarnation,omitempty"`
	Watermark   uint64  `json:"watermark"`
	Gap         uint64  `json:"gap,omitempty"`
	GapTo       uint64  `json:"gap_to,omitempty"`
	Notice      *Notice `json:"notice,omitempty"`
}

// AckGapTo names the ack field gap_to in Status.AckFields.
const AckGapTo = "gap_to"

// AckSigned in Status.AckFields says the register takes signed acks only
// (sync/signing, bound to its ack topic; docs/protocol.md "Acks"): head
// office signs every ack to it. Registers before it take bare acks and
// get them as before.
const AckSigned = "signed"

// AckFields are the optional ack fields this version understands beyond
// those every register of v1 does; a register lists them in its status
// (Status.AckFields) so head office sends them only to registers that
// accept them.
var AckFields = []string{AckGapTo, AckSigned}

// MemberBonus names the member summary fields first_bonus and
// birthday_year in Status.MemberFields.
const MemberBonus = "bonus"

// MemberFields are the optional member summary fields this version
// understands beyond those every register of v1 does; a register lists
// them in its status (Status.MemberFields) so head office sends them only
// to registers that accept them (a register before it refuses a members
// message with a field it does not know).
var MemberFields = []string{MemberBonus}

// Values of MemberSummary.FirstBonus.
const (
	FirstBonusPending = ledger.FirstBonusPending
	FirstBonusPaid    = ledger.FirstBonusPaid
)

// Notice codes: why head office holds a register's events.
const (
	// NoticeIncarnation: another ledger incarnation is bound to this
	// register id at head office (a replaced or restored ledger, or a
	// second register configured with the same id).
	NoticeIncarnation = "incarnation"
	// NoticeStore: the register sends under another store than the one
	// head office has it in (moved without confirming the move).
	NoticeStore = "store"
	// NoticeReused: sequence numbers head office already holds came with
	// different content from the same incarnation (a ledger restored from
	// a backup older than what head office has).
	NoticeReused = "reused"
	// NoticePolicy: head office applied these events to the register's
	// stream (the watermark moves on) but holds their effect for review:
	// its policy refused them (points beyond what the rule set allows, an
	// adjustment over the caps, a card moved between members). Held counts
	// them; Text says why the latest was held.
	NoticePolicy = "policy"
)

// NoticeCodes are the notice codes this version understands; a register
// lists them in its status (Status.Notices) so head office sends a notice
// code only to registers that accept it (docs/protocol.md "Evolving the
// protocol"). Registers that list none accept the first three.
var NoticeCodes = []string{NoticeIncarnation, NoticeStore, NoticeReused, NoticePolicy}

// LegacyNotice reports whether every register accepts code, including
// those whose status lists no notice codes.
func LegacyNotice(code string) bool {
	return code == NoticeIncarnation || code == NoticeStore || code == NoticeReused
}

// MaxNoticeText bounds a notice's text.
const MaxNoticeText = 400

// Notice is head office's word to a register about events it holds.
type Notice struct {
	Code string `json:"code"`
	// Held is how many of this incarnation's events head office holds.
	Held uint64 `json:"held"`
	// Text says what is wrong and what to do, for status and display.
	Text string `json:"text"`
}

// EncodeAck encodes an ack, setting V.
func EncodeAck(a Ack) ([]byte, error) {
	a.V = Version
	if err := a.validate(a.Register); err != nil {
		return nil, err
	}
	return json.Marshal(a)
}

// DecodeAck decodes and validates an ack received on the ack topic of
// register.
func DecodeAck(b []byte, register string) (Ack, error) {
	var a Ack
	if len(b) > MaxAckSize {
		return a, fmt.Errorf("%w: ack of %d bytes", ErrTooLarge, len(b))
	}
	a, ok := decodeAckPlain(b)
	if !ok {
		if err := lenientUnmarshal(b, &a); err != nil {
			return Ack{}, fmt.Errorf("ack: %w", err)
		}
	}
	if err := a.validate(register); err != nil {
		return Ack{}, err
	}
	return a, nil
}

func (a Ack) validate(register string) error {
	if a.V != Version {
		return fmt.Errorf("ack: %w: v=%d, this program speaks v=%d (docs/protocol.md \"Upgrade order\")", ErrVersion, a.V, Version)
	}
	if a.Register != register {
		return fmt.Errorf("ack: %w: register %q", ErrMismatch, a.Register)
	}
	if a.Gap != 0 && a.Gap <= a.Watermark {
		return fmt.Errorf("ack: %w: gap %d not above watermark %d", ErrMalformed, a.Gap, a.Watermark)
	}
	if a.GapTo != 0 && (a.Gap == 0 || a.GapTo < a.Gap) {
		return fmt.Errorf("ack: %w: gap_to %d without a gap at or below it (gap %d)", ErrMalformed, a.GapTo, a.Gap)
	}
	if a.Incarnation != "" {
		if err := ValidID(a.Incarnation); err != nil {
			return fmt.Errorf("ack: incarnation: %w", err)
		}
	}
	if n := a.Notice; n != nil {
		switch n.Code {
		case NoticeIncarnation, NoticeStore, NoticeReused, NoticePolicy:
		default:
			return fmt.Errorf("ack: %w: notice code %q", ErrMalformed, n.Code)
		}
		if len(n.Text) > MaxNoticeText {
			return fmt.Errorf("ack: %w: notice of %d bytes", ErrTooLarge, len(n.Text))
		}
	}
	return nil
}

// Register states in Status.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// Status is a register's retained status. The broker publishes the
// "offline" form as the register's last will when the connection dies
// without a clean disconnect, so it carries only what was known at connect.
type Status struct {
	V        int    `json:"v"`
	Store    string `json:"store"`
	Register string `json:"register"`
	State    string `json:"state"`
	// Pending is the number of events not yet acknowledged by head office.
	Pending uint64 `json:"pending"`
	// Watermark is the last acknowledged sequence number.
	Watermark uint64 `json:"watermark"`
	// At is the register's wall time when it wrote the status, with
	// ClockTrusted saying whether that clock was synced.
	At           time.Time `json:"at,omitzero"`
	ClockTrusted bool      `json:"clock_trusted"`

	// What a fleet view shows; all optional (registers older than them
	// send none, and head office ignores fields it does not know).
	// Published is the highest sequence number handed to the broker.
	Published uint64 `json:"published,omitempty"`
	// Software is the register's build version.
	Software string `json:"software,omitempty"`
	// Config are the config versions in force per scope.
	Config *StatusConfig `json:"config,omitempty"`
	// ConfigError, MembersError, LastError: why the last config or
	// members document was refused, why the link last failed.
	ConfigError  string `json:"config_error,omitempty"`
	MembersSeq   uint64 `json:"members_seq,omitempty"`
	MembersError string `json:"members_error,omitempty"`
	// Incarnation is the ledger incarnation of the register publishing
	// this status; Takeovers how many times its broker session was taken
	// over in a row soon after connecting (another register on this id).
	// Head office names two registers on one id from these
	// (docs/operations.md "A copied config").
	Incarnation string `json:"incarnation,omitempty"`
	Takeovers   uint64 `json:"takeovers,omitempty"`
	// MembersMax is the highest summary version the register applied
	// since it started (at least MembersSeq): head office compares it with
	// its counter to find out that it was restored from an older backup.
	MembersMax uint64 `json:"members_max,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Fault is the register's own diagnosis of its link, e.g. connected
	// but never acknowledged (MaxStatusText bytes at most).
	Fault string `json:"fault,omitempty"`
	// Notices are the ack notice codes the register accepts (NoticeCodes);
	// absent from registers before it, which accept only the legacy ones
	// and refuse a whole ack with any other.
	Notices []string `json:"notices,omitempty"`
	// AckFields are the optional ack fields the register understands
	// (AckFields); absent from registers before it, which refuse an ack
	// with a field they do not know.
	AckFields []string `json:"ack_fields,omitempty"`
	// MemberFields are the optional member summary fields the register
	// understands (MemberFields); absent from registers before it, which
	// refuse a members message with a field they do not know.
	MemberFields []string `json:"member_fields,omitempty"`
}

// StatusConfig are the config versions a register has in force.
type StatusConfig struct {
	Chain uint64 `json:"chain"`
	Store uint64 `json:"store"`
}

// MaxStatusText bounds each text field of a status, so the whole stays
// within MaxStatusSize.
const MaxStatusText = 400

// EncodeStatus encodes a status, setting V.
func EncodeStatus(s Status) ([]byte, error) {
	s.V = Version
	if err := s.validate(s.Store, s.Register); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// DecodeStatus decodes and validates a status from the given register.
func DecodeStatus(b []byte, store, register string) (Status, error) {
	var s Status
	if len(b) > MaxStatusSize {
		return s, fmt.Errorf("%w: status of %d bytes", ErrTooLarge, len(b))
	}
	if err := lenientUnmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	if err := s.validate(store, register); err != nil {
		return Status{}, err
	}
	return s, nil
}

func (s Status) validate(store, register string) error {
	if s.V != Version {
		return fmt.Errorf("status: %w: v=%d", ErrVersion, s.V)
	}
	if s.Store != store || s.Register != register {
		return fmt.Errorf("status: %w: %s/%s", ErrMismatch, s.Store, s.Register)
	}
	if s.State != StateOnline && s.State != StateOffline {
		return fmt.Errorf("status: %w: state %q", ErrMalformed, s.State)
	}
	if len(s.Notices) > 16 {
		return fmt.Errorf("status: %w: %d notice codes", ErrTooLarge, len(s.Notices))
	}
	if len(s.AckFields) > 16 || len(s.MemberFields) > 16 {
		return fmt.Errorf("status: %w: %d ack fields, %d member fields", ErrTooLarge, len(s.AckFields), len(s.MemberFields))
	}
	texts := append([]string{s.Software, s.ConfigError, s.MembersError, s.LastError, s.Fault}, s.Notices...)
	texts = append(texts, s.MemberFields...)
	for _, t := range append(texts, s.AckFields...) {
		if len(t) > MaxStatusText {
			return fmt.Errorf("status: %w: text of %d bytes", ErrTooLarge, len(t))
		}
	}
	return nil
}

// Config scopes.
const (
	ScopeChain = "chain" // on ChainConfigTopic, for every register
	ScopeStore = "store" // on StoreConfigTopic, overrides chain for one store
)

// Product is one entry of the product catalogue: what a scanned SKU costs
// and which category it counts in for the points rules.
type Product struct {
	SKU      string       `json:"sku"`
	Name     string       `json:"name"`
	Category string       `json:"category,omitempty"`
	Price    ledger.Money `json:"price"`
}

// Config is a versioned configuration document, published retained by head
// office. ConfigVersion increases with every publication in its scope; a
// register applies a document only when its ConfigVersion is higher than
// the one in force for that scope (see Newer), so a stale retained message
// or a replay can never roll a register back.
type Config struct {
	V             int            `json:"v"`
	Scope         string         `json:"scope"`
	Store         string         `json:"store,omitempty"` // set when Scope is ScopeStore
	ConfigVersion uint64         `json:"config_version"`
	IssuedAt      time.Time      `json:"issued_at,omitzero"`
	Rules         *rules.RuleSet `json:"rules,omitempty"`
	Catalogue     []Product      `json:"catalogue,omitempty"`
	// CataloguePieces, in a store document instead of Catalogue, says the
	// catalogue comes in pieces on CataloguePieceTopic (catalogue.go).
	CataloguePieces *CataloguePieces `json:"catalogue_pieces,omitempty"`
	// SignedBy is the id of head office's key that signed the document
	// (signing.PublicKey.ID), set by the register that verified it; never
	// on the wire.
	SignedBy string `json:"-"`
}

// EncodeConfig validates and encodes a config document, setting V.
func EncodeConfig(c Config) ([]byte, error) {
	c.V = Version
	if err := c.validate(c.Scope, c.Store); err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("config: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// DecodeConfig decodes and validates a config document that arrived on the
// topic t (ChainConfigTopic or StoreConfigTopic). The rule set, when
// present, must pass rules.Validate; the catalogue must have unique SKUs and
// positive prices (as the ledger's catalogue requires).
func DecodeConfig(b []byte, t Topic) (Config, error) {
	var c Config
	if len(b) > MaxConfigSize {
		return c, fmt.Errorf("config: %w: %d bytes", ErrTooLarge, len(b))
	}
	if err := strictUnmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	scope := ScopeChain
	if t.Store != "" {
		scope = ScopeStore
	}
	if t.Kind != KindConfig {
		return Config{}, fmt.Errorf("config: %w: topic kind %q", ErrTopic, t.Kind)
	}
	if err := c.validate(scope, t.Store); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c Config) validate(scope, store string) error {
	if c.V != Version {
		return fmt.Errorf("config: %w: v=%d", ErrVersion, c.V)
	}
	if c.Scope != scope || c.Store != store {
		return fmt.Errorf("config: %w: scope %q store %q", ErrMismatch, c.Scope, c.Store)
	}
	if c.Scope != ScopeChain && c.Scope != ScopeStore {
		return fmt.Errorf("config: %w: scope %q", ErrMalformed, c.Scope)
	}
	if c.ConfigVersion == 0 {
		return fmt.Errorf("config: %w: config_version missing", ErrMalformed)
	}
	if c.ConfigVersion > MaxConfigVersion {
		return fmt.Errorf("config: %w: config_version %d above %d", ErrMalformed, c.ConfigVersion, MaxConfigVersion)
	}
	if c.Rules != nil {
		if err := c.Rules.Validate(); err != nil {
			return fmt.Errorf("config: %w: %w", ErrMalformed, err)
		}
	}
	seen := make(map[string]bool, len(c.Catalogue))
	for i, p := range c.Catalogue {
		if p.SKU == "" || len(p.SKU) > 64 {
			return fmt.Errorf("config: %w: catalogue[%d].sku %q", ErrMalformed, i, p.SKU)
		}
		if seen[p.SKU] {
			return fmt.Errorf("config: %w: catalogue[%d].sku %q repeated", ErrMalformed, i, p.SKU)
		}
		seen[p.SKU] = true
		if p.Price <= 0 {
			return fmt.Errorf("config: %w: catalogue[%d].price %d must be positive", ErrMalformed, i, p.Price)
		}
	}
	if cp := c.CataloguePieces; cp != nil {
		if c.Scope != ScopeStore {
			return fmt.Errorf("config: %w: catalogue_pieces only in a store document", ErrMalformed)
		}
		if len(c.Catalogue) > 0 {
			return fmt.Errorf("config: %w: both catalogue and catalogue_pieces", ErrMalformed)
		}
		if err := cp.validate(); err != nil {
			return err
		}
	}
	return nil
}

// Newer reports whether a document with version next may replace the one in
// force with version current. Equal versions are replays and are ignored,
// lower ones are stale (out of order) and rejected by the receiver.
func Newer(current, next uint64) bool { return next > current }

// MemberSummary is head office's chain-wide view of one member. Balance
// includes, for each register, exactly the events up to Included[register];
// a register overlays its own events after Included[itself] to get a
// balance that is never stale for what it did itself. The register hands
// it to ledger.ApplyMemberSummary with Covered = Included[itself] and
// Version = the enclosing message's Seq.
type MemberSummary struct {
	MemberID string        `json:"member_id"`
	Balance  ledger.Points `json:"balance"`
	Tier     string        `json:"tier,omitempty"`
	// Spend12m is the member's chain-wide net spend (sales less refunds)
	// and Visits12m their distinct purchase days, both over the twelve
	// months before head office computed the summary.
	Spend12m  ledger.Money      `json:"spend_12m"`
	Visits12m int               `json:"visits_12m"`
	Included  map[string]uint64 `json:"included,omitempty"`
	// Retention is head office's retention view of the member from its
	// chain-wide purchases (see docs/protocol.md for the rule); absent when
	// head office has no purchase of the member, and then the register
	// decides from its local history. Optional: older head offices omit it.
	Retention *retention.MemberSummary `json:"retention,omitempty"`
	// Member is the profile (aliases, name, consent), sent so a member who
	// enrolled at another store is recognised here. Optional.
	Member *ledger.Member `json:"member,omitempty"`
	// FirstBonus is the member's first-purchase bonus chain-wide:
	// FirstBonusPending (head office has a purchase of the member and
	// credited no first-purchase bonus) or FirstBonusPaid (it credited
	// one); absent when head office has no purchase of the member.
	// BirthdayYear is the latest birthday (year) head office credited a
	// birthday bonus for. Sent only to registers that list MemberBonus in
	// their status; absent from older head offices. A register decides
	// its bonuses with them (docs/protocol.md "Member summaries"); a value
	// of first_bonus it does not know counts as absent.
	FirstBonus   string `json:"first_bonus,omitempty"`
	BirthdayYear int    `json:"birthday_year,omitempty"`
}

// MemberSummaries is one members message for a store: the part (From, Seq]
// of the store's member-summary stream (docs/protocol.md "Member
// summaries"). Every member of the store whose summary sits in that range
// of the stream is in the message, each with its summary as of a moment
// when the stream's head was at least Seq, so Seq is each summary's version
// (ledger.MemberSummary.Version). A register whose position P satisfies
// From <= P < Seq moves to Seq; a message with From > P leaves a gap that
// the register asks head office to fill (CatchUp); one with Seq <= P
// brings nothing new. A message without From (nil) is in the older form
// (older head offices, and this one for stores with registers of the
// previous release): its summaries apply by version, and a register of
// this release asks for the stream from its position (docs/protocol.md
// "Member summaries").
type MemberSummaries struct {
	V       int             `json:"v"`
	Store   string          `json:"store"`
	From    *uint64         `json:"from,omitempty"`
	Seq     uint64          `json:"seq"`
	Members []MemberSummary `json:"members"`
}

// EncodeMembers validates and encodes a members message, setting V.
func EncodeMembers(m MemberSummaries) ([]byte, error) {
	m.V = Version
	if err := m.validate(m.Store); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode members: %w", err)
	}
	if len(b) > MaxMembersSize {
		return nil, fmt.Errorf("members: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// DecodeMembers decodes and validates a members message for store.
func DecodeMembers(b []byte, store string) (MemberSummaries, error) {
	var m MemberSummaries
	if len(b) > MaxMembersSize {
		return m, fmt.Errorf("members: %w: %d bytes", ErrTooLarge, len(b))
	}
	if err := strictUnmarshal(b, &m); err != nil {
		return MemberSummaries{}, fmt.Errorf("members: %w", err)
	}
	if err := m.validate(store); err != nil {
		return MemberSummaries{}, err
	}
	return m, nil
}

func (m MemberSummaries) validate(store string) error {
	if m.V != Version {
		return fmt.Errorf("members: %w: v=%d", ErrVersion, m.V)
	}
	if m.Store != store {
		return fmt.Errorf("members: %w: store %q", ErrMismatch, m.Store)
	}
	if m.Seq == 0 {
		return fmt.Errorf("members: %w: seq missing", ErrMalformed)
	}
	if m.Seq > MaxMembersSeq {
		return fmt.Errorf("members: %w: seq %d above %d", ErrMalformed, m.Seq, MaxMembersSeq)
	}
	if m.From != nil && *m.From >= m.Seq {
		return fmt.Errorf("members: %w: from %d not below seq %d", ErrMalformed, *m.From, m.Seq)
	}
	if len(m.Members) > MaxMembers {
		return fmt.Errorf("members: %w: %d summaries", ErrTooLarge, len(m.Members))
	}
	seen := make(map[string]bool, len(m.Members))
	for i, s := range m.Members {
		if s.MemberID == "" || len(s.MemberID) > 128 {
			return fmt.Errorf("members: %w: members[%d].member_id %q", ErrMalformed, i, s.MemberID)
		}
		if seen[s.MemberID] {
			return fmt.Errorf("members: %w: members[%d].member_id %q repeated", ErrMalformed, i, s.MemberID)
		}
		seen[s.MemberID] = true
		if s.Member != nil && s.Member.ID != s.MemberID {
			return fmt.Errorf("members: %w: members[%d].member.id %q", ErrMalformed, i, s.Member.ID)
		}
		if s.Balance > MaxBalance || s.Balance < -MaxBalance {
			return fmt.Errorf("members: %w: members[%d].balance %d beyond ±%d", ErrMalformed, i, s.Balance, MaxBalance)
		}
		for reg, seq := range s.Included {
			if seq > MaxMembersSeq {
				return fmt.Errorf("members: %w: members[%d].included[%s] %d", ErrMalformed, i, reg, seq)
			}
		}
		if s.Spend12m < 0 || s.Visits12m < 0 {
			return fmt.Errorf("members: %w: members[%d] negative spend_12m or visits_12m", ErrMalformed, i)
		}
		if err := validRetention(s.Retention); err != nil {
			return fmt.Errorf("members: members[%d].retention: %w", i, err)
		}
		if err := validBonus(s); err != nil {
			return fmt.Errorf("members: members[%d]: %w", i, err)
		}
		for reg := range s.Included {
			if err := ValidID(reg); err != nil {
				return fmt.Errorf("members: members[%d].included: %w", i, err)
			}
		}
	}
	return nil
}

// validRetention checks head office's retention view of a member. Status
// and segment are free lowercase words (a newer head office may add
// values; a register that does not know one shows no due/sleeping prompt
// for it) so that a new word never makes a register refuse a whole
// members message.
func validRetention(r *retention.MemberSummary) error {
	if r == nil {
		return nil
	}
	for _, w := range []string{string(r.Status), string(r.Segment)} {
		if len(w) > 32 {
			return fmt.Errorf("%w: status or segment %q over 32 bytes", ErrMalformed, w)
		}
		for i := 0; i < len(w); i++ {
			if c := w[i]; !(c >= 'a' && c <= 'z' || c == '_' || c == '-') {
				return fmt.Errorf("%w: status or segment %q", ErrMalformed, w)
			}
		}
	}
	if r.PurchaseDays < 0 || r.PurchaseDays > 1<<20 {
		return fmt.Errorf("%w: purchase_days %d", ErrMalformed, r.PurchaseDays)
	}
	if !(r.MeanInterval >= 0 && r.MeanInterval <= 1e6) { // also refuses NaN
		return fmt.Errorf("%w: mean_interval_days %g", ErrMalformed, r.MeanInterval)
	}
	if r.LastPurchase != "" {
		if _, err := time.Parse(time.DateOnly, r.LastPurchase); err != nil {
			return fmt.Errorf("%w: last_purchase %q", ErrMalformed, r.LastPurchase)
		}
	}
	if len(r.Offer) > 200 {
		return fmt.Errorf("%w: offer over 200 bytes", ErrMalformed)
	}
	return nil
}

// validBonus checks a summary's bonus state: first_bonus a lowercase word
// of at most 16 letters (a newer head office may add values), the
// birthday year 0..9999.
func validBonus(s MemberSummary) error {
	if len(s.FirstBonus) > 16 {
		return fmt.Errorf("%w: first_bonus of %d bytes", ErrMalformed, len(s.FirstBonus))
	}
	for _, r := range s.FirstBonus {
		if r < 'a' || r > 'z' {
			return fmt.Errorf("%w: first_bonus %q", ErrMalformed, s.FirstBonus)
		}
	}
	if s.BirthdayYear < 0 || s.BirthdayYear > 9999 {
		return fmt.Errorf("%w: birthday_year %d", ErrMalformed, s.BirthdayYear)
	}
	return nil
}
