package hqstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// schemaVersion is the layout this program writes and reads: 2 added the
// running figures (figures.go), rebuilt from the purchases when a store
// of version 1 is opened for writing; 3 keeps members' profiles apart
// from their rows (bProfiles). A row written before 3 still carries its
// profile and is read as it is, and moves its profile out when it is
// next written, so opening an older store rewrites nothing; a program
// before 3 refuses a store of 3 (it would not see the profiles).
const schemaVersion = 3

// Bucket names. Per-register buckets are nested under bEvents and bHeld.
var (
	bMeta      = []byte("meta")
	bRegs      = []byte("registers")
	bEvents    = []byte("events")
	bHeld      = []byte("held")
	bMembers   = []byte("members")
	bProfiles  = []byte("member_profiles") // member -> profile JSON (schema 3)
	bAliases   = []byte("aliases")
	bSales     = []byte("sales")
	bPurchases = []byte("purchases")
	bConflicts = []byte("conflicts")
	bDouble    = []byte("doublespends")
	bConfig    = []byte("config")
	allBuckets = [][]byte{bMeta, bRegs, bEvents, bHeld, bMembers, bProfiles, bAliases, bSales, bPurchases, bConflicts, bDouble, bConfig, bReview, bPolicyHeld, bPolicyAdjust, bFigSales, bFigDays}
)

// Options configures Open. A nil *Options means defaults.
type Options struct {
	// LockTimeout bounds the wait for the file lock, so a second head-office
	// process fails fast. Default 1s.
	LockTimeout time.Duration
	// MaxHeld bounds the events held beyond a gap per register; more are
	// dropped (and resent by the register). Default 10,000.
	MaxHeld int
	// OfflineRedeemLimit is the registers' configured offline redemption
	// limit; a double spend whose overdraft exceeds it is flagged, because
	// the limit should have prevented it. 0 flags every double spend.
	OfflineRedeemLimit ledger.Points
	// ReadOnly opens the file for reports; Apply and PublishConfig fail.
	ReadOnly bool
	// Policy, when set, checks every event as it is applied (see
	// SetPolicy, which sets it on an open store). Default none.
	Policy *policy.Policy
	// Clock gives "now" for the twelve-month figures and the retention
	// view of member summaries (Spend12m, Visits12m and the retention
	// status depend on it). Default: the system clock. Head office's own
	// clock is NTP-disciplined, so its trust flag is not consulted.
	Clock clock.Clock
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.LockTimeout <= 0 {
		r.LockTimeout = time.Second
	}
	if r.MaxHeld <= 0 {
		r.MaxHeld = 10000
	}
	r.Clock = clock.Or(r.Clock)
	return r
}

// Store is an open head-office store. Its methods are safe for concurrent
// use; Apply calls are serialised by bbolt's single writer.
type Store struct {
	db   *bolt.DB
	opts Options
	path string
	// broken is set after a failed commit; every later write gets it.
	broken *atomic.Pointer[error]
	// policy, when set, checks every event as it is applied (policy.go).
	policy *atomic.Pointer[policy.Policy]
}

// Event is one upstream event as head office received it: the register's
// outbox record plus who sent it.
type Event struct {
	Register string // the sending register (CloudEvents source)
	Store    string // the register's store, from the topic; may be empty
	// Incarnation is the sending ledger's incarnation; empty for a
	// register older than incarnations (the legacy incarnation).
	Incarnation string
	// PrevIncarnation is the incarnation this one declares it continues
	// (a ledger restored from an older backup, numbered after head
	// office's watermark); empty when none.
	PrevIncarnation string
	ledger.OutboxRecord

	// prepared is the event decoded and validated ahead of the
	// transaction (Prepare); nil: the applier decodes it.
	prepared *prepared
}

// RegisterState is head office's view of one register's stream.
type RegisterState struct {
	Register string `json:"register"`
	Store    string `json:"store,omitempty"`
	// Incarnation is the ledger incarnation whose stream head office
	// applies under this register id (empty: the legacy incarnation).
	Incarnation string `json:"incarnation,omitempty"`
	// Successions counts the times a new incarnation that declared it
	// continues the followed one took over (a ledger restored from an
	// older backup: docs/protocol.md "Incarnations").
	Successions uint64 `json:"successions,omitempty"`
	// Review counts this register id's events held for review (another
	// incarnation, another store, a reused sequence number).
	Review    uint64 `json:"review,omitempty"`
	Watermark uint64 `json:"watermark"` // every seq <= Watermark is durably applied
	Held      int    `json:"held"`      // events held beyond a gap
	Seen      uint64 `json:"seen"`      // highest sequence ever received
	// Gap is true when events beyond the watermark were received (held or
	// dropped, Seen > Watermark): the register should resend from
	// Watermark+1.
	Gap bool `json:"gap"`
	// HeldFrom is the lowest event held beyond the gap (0: none, or not
	// known in a store written before it was kept).
	HeldFrom uint64 `json:"held_from,omitempty"`
	// DroppedFrom is the lowest event dropped for lying far beyond the
	// watermark (more than heldAhead): the gap head office waits for
	// ends below it when nothing is held (0: none).
	DroppedFrom uint64 `json:"dropped_from,omitempty"`
	// HeldIncarnation is the incarnation whose events are held beyond the
	// gap: the one followed when they came (empty: none held, or a store
	// written before it was kept). When head office follows another one
	// (a succession, an adoption) they are moved to review as that
	// incarnation's, never drained into the new stream.
	HeldIncarnation string `json:"held_incarnation,omitempty"`
	// WaitFrom..WaitTo are the events head office waits for while Gap is
	// true: from the watermark up to the first event held beyond it.
	WaitFrom     uint64 `json:"wait_from,omitempty"`
	WaitTo       uint64 `json:"wait_to,omitempty"`
	Applied      uint64 `json:"applied"`
	Duplicates   uint64 `json:"duplicates"`
	Conflicts    uint64 `json:"conflicts"`
	Rejected     uint64 `json:"rejected"`
	Dropped      uint64 `json:"dropped"`
	LastRejected string `json:"last_rejected,omitempty"`
	// PolicyHeld counts this register's events head office's policy
	// holds for review (applied to the stream, not to balances or
	// members); PolicyNote says why the latest was held.
	PolicyHeld uint64 `json:"policy_held,omitempty"`
	PolicyNote string `json:"policy_note,omitempty"`
	// ReusedFrom is the lowest sequence number of the bound
	// incarnation's events held for review as ReviewReused and not yet
	// dismissed (0: none). Every ack to the register acknowledges at
	// most ReusedFrom-1, so its ledger keeps them (docs/protocol.md
	// "Incarnations"); AckWatermark gives it.
	ReusedFrom uint64 `json:"reused_from,omitempty"`
}

// AckWatermark is the watermark head office may acknowledge to the
// register: its watermark, or, while events of its bound incarnation are
// held as ReviewReused, the number below the first of them.
func (rs RegisterState) AckWatermark() uint64 {
	if rs.ReusedFrom != 0 {
		return min(rs.Watermark, rs.ReusedFrom-1)
	}
	return rs.Watermark
}

// NoLongerFollowed is called just before head office follows another
// incarnation (a succession, an adoption): the events held beyond the gap
// are named as the followed one's, in a store written before
// HeldIncarnation was kept, so the applier moves them to review instead
// of draining them into the new stream.
func (rs *RegisterState) NoLongerFollowed() {
	if rs.Held > 0 && rs.HeldIncarnation == "" {
		rs.HeldIncarnation = rs.Incarnation
	}
	rs.DroppedFrom = 0 // the old ledger's numbers say nothing of the new one's
}

// Follow makes head office follow incarnation inc from now on (a
// succession, an adoption): NoLongerFollowed, and the reused hold, the old
// incarnation's, ends (its events stay listed for review).
func (rs *RegisterState) Follow(inc string) {
	rs.NoLongerFollowed()
	rs.Incarnation = inc
	rs.ReusedFrom = 0
}

// gapEnd is the last number of the gap head office waits for (below the
// watermark + 1 when none): below the first event held beyond it, else
// below the first dropped far beyond it, else the highest seen.
func (rs *RegisterState) gapEnd() uint64 {
	switch {
	case rs.Held > 0 && rs.HeldFrom > rs.Watermark:
		return rs.HeldFrom - 1
	case rs.DroppedFrom > rs.Watermark+1:
		return rs.DroppedFrom - 1
	}
	return rs.Seen
}

// Result is what one Apply did.
type Result struct {
	// Registers holds, for every register in the batch, its state after
	// the commit; acknowledge exactly Registers[r].Watermark.
	Registers  map[string]RegisterState
	Applied    int
	Duplicates int
	Held       int
	Dropped    int
	Conflicts  []Conflict
	Rejected   []error // each wraps ErrInvalid and names the event
	// Reviewed counts the events newly held for review; Holds says, per
	// stream that sent such events in this batch, why and what to tell it.
	Reviewed int
	Holds    map[Stream]Hold
	// Members lists (sorted) the members whose chain-wide view changed.
	Members []string
	// PolicyHolds lists the events head office's policy held in this
	// batch (they count as applied to their stream).
	PolicyHolds []PolicyHold
}

// Conflict kinds.
const (
	ConflictEvent = "event" // same (register, seq) or id, different content
	ConflictAlias = "alias" // alias enrolled for two different members
	ConflictSale  = "sale"  // sale id already recorded by another event
)

// Conflict is a reported clash; the first version is kept, the second is
// never applied over it.
type Conflict struct {
	Kind     string `json:"kind"`
	Register string `json:"register"`
	Seq      uint64 `json:"seq"`
	ID       string `json:"id"`
	Alias    string `json:"alias,omitempty"`
	Member   string `json:"member,omitempty"` // the member that claimed the alias
	Owner    string `json:"owner,omitempty"`  // the member that owns it
	Detail   string `json:"detail"`
}

// DoubleSpend is a point event that took a member's chain-wide balance
// below zero: the same points were spent at two registers while offline.
type DoubleSpend struct {
	MemberID     string           `json:"member_id"`
	Register     string           `json:"register"`
	Seq          uint64           `json:"seq"`
	EventID      string           `json:"event_id"`
	Kind         ledger.EventKind `json:"kind"`
	Points       ledger.Points    `json:"points"`
	BalanceAfter ledger.Points    `json:"balance_after"`
	Overdraft    ledger.Points    `json:"overdraft"`     // how far below zero
	ExceedsLimit bool             `json:"exceeds_limit"` // overdraft > OfflineRedeemLimit
}

// MemberSummary is head office's chain-wide picture of a member, as sent
// down to registers.
type MemberSummary struct {
	Member  ledger.Member `json:"member"`
	Balance ledger.Points `json:"balance"`
	// Included maps each register to the highest sequence number of its
	// events for this member that Balance and Member include; a register
	// overlays its own events above that number.
	Included map[string]uint64 `json:"included"`
	// Spend12m and Visits12m are the member's net spend and purchase days
	// over the 365 days up to the summary's computation; Retention is the
	// member's retention view by the rhythm rule (retention.RhythmStatus), nil
	// without a counted purchase. EachMember and Member leave them zero.
	Spend12m  ledger.Money             `json:"spend_12m"`
	Visits12m int                      `json:"visits_12m"`
	Retention *retention.MemberSummary `json:"retention,omitempty"`
	// FirstBonus is the member's first-purchase bonus state chain-wide
	// (FirstBonusPending, FirstBonusPaid; empty: no purchase seen), and
	// BirthdayYear the latest birthday year head office credited a
	// birthday bonus for (0: none), so a register pays each once per
	// member (bonus.go). Like the figures, left empty by EachMember and
	// Member.
	FirstBonus   string `json:"first_bonus,omitempty"`
	BirthdayYear int    `json:"birthday_year,omitempty"`
}

// memberRec is a member's stored chain-wide view. Its row is a small
// binary record (balance and per-register sequences, rewritten by every
// point event); the profile's JSON is kept apart (bProfiles), decoded and
// re-encoded only when a member event changes it, and written only when
// it changed: point events are the bulk of the stream, JSON was most of
// their cost, and rewriting each profile with its balance at every batch
// more than doubled the pages a commit writes.
type memberRec struct {
	ID       string
	Balance  ledger.Points
	Included map[string]uint64
	// added is the points applied since the record was read, by
	// register (MemberRow.Added).
	added map[string]ledger.Points
	// shops are the stores the member was touched from in the batch
	// being applied (applier.shop).
	shops []string

	profileRaw []byte // stored JSON of the profile, until decoded
	// fetch reads profileRaw when it is first needed (MemberRow.fetch).
	fetch        func() ([]byte, error)
	prof         *ledger.Member
	profileDirty bool
}

// profile returns the member's profile, decoding it on first use.
func (m *memberRec) profile() (*ledger.Member, error) {
	if m.prof != nil {
		return m.prof, nil
	}
	p := &ledger.Member{ID: m.ID}
	if m.profileRaw == nil && m.fetch != nil {
		raw, err := m.fetch()
		if err != nil {
			return nil, fmt.Errorf("member %q profile: %w", m.ID, err)
		}
		m.profileRaw, m.fetch = raw, nil
	}
	if len(m.profileRaw) > 0 {
		if err := json.Unmarshal(m.profileRaw, p); err != nil {
			return nil, fmt.Errorf("member %q profile: %w", m.ID, err)
		}
	}
	m.prof = p
	return p, nil
}

// encodeRow encodes the member's row, without the profile (schema 3).
func (m *memberRec) encodeRow() []byte {
	regs := make([]string, 0, len(m.Included))
	for r := range m.Included {
		regs = append(regs, r)
	}
	sort.Strings(regs)
	b := make([]byte, 0, 10+len(regs)*24)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Balance))
	b = binary.BigEndian.AppendUint16(b, uint16(len(regs)))
	for _, r := range regs {
		b = append(b, byte(len(r)))
		b = append(b, r...)
		b = binary.BigEndian.AppendUint64(b, m.Included[r])
	}
	return b
}

func decodeMember(id string, v []byte) (*memberRec, error) {
	bad := func() error { return fmt.Errorf("member %q: record truncated: %w", id, ErrInvalid) }
	if len(v) < 10 {
		return nil, bad()
	}
	m := &memberRec{ID: id, Balance: ledger.Points(binary.BigEndian.Uint64(v)), Included: map[string]uint64{}}
	n := int(binary.BigEndian.Uint16(v[8:]))
	v = v[10:]
	for i := 0; i < n; i++ {
		if len(v) < 1 || len(v) < 1+int(v[0])+8 {
			return nil, bad()
		}
		l := int(v[0])
		m.Included[string(v[1:1+l])] = binary.BigEndian.Uint64(v[1+l:])
		v = v[1+l+8:]
	}
	m.profileRaw = append([]byte(nil), v...)
	return m, nil
}

// saleRec is the sales index: enough to attribute refunds and voids.
type saleRec struct {
	Register string       `json:"register"`
	Seq      uint64       `json:"seq"`
	MemberID string       `json:"member_id,omitempty"`
	Total    ledger.Money `json:"total"`
	Refunded ledger.Money `json:"refunded"`
	Voided   bool         `json:"voided,omitempty"`
	// Allow is what head office's policy allows the sale to earn, set
	// when a policy was in force as it was applied (policy.go).
	Allow *saleAllow `json:"allow,omitempty"`
}

// Open opens or creates the store at path.
func Open(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	// NoFreelistSync: the freelist is rebuilt by a scan at open instead of
	// being written at every commit; head office commits large batches
	// continuously and opens rarely, so the trade (bbolt's own) favours
	// it. It does not weaken durability of the data pages.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, ReadOnly: o.ReadOnly,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType, InitialMmapSize: 1 << 27})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, opts: o, path: path, broken: new(atomic.Pointer[error]), policy: new(atomic.Pointer[policy.Policy])}
	if o.ReadOnly {
		err = db.View(func(tx *bolt.Tx) error { return checkSchema(tx, false) })
	} else {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return checkSchema(tx, true)
		})
	}
	if err == nil && !o.ReadOnly {
		// bbolt syncs a new file but not its directory entry.
		err = durable.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// update runs fn in a write transaction. When fn fails nothing is written;
// when the commit fails (writing or syncing the file) the store refuses
// this and every later write with ErrStorage, as a failed sync leaves the
// page cache untrustworthy.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	if b := s.broken.Load(); b != nil {
		return *b
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		err = fmt.Errorf("%w: commit: %w", ErrStorage, err)
		later := fmt.Errorf("%w: nothing more is written until loyalty-hq restarts (an earlier commit failed: %v)", ErrStorage, err)
		s.broken.Store(&later)
		return err
	}
	return nil
}

func checkSchema(tx *bolt.Tx, write bool) error {
	m := tx.Bucket(bMeta)
	if m == nil {
		return fmt.Errorf("not a head-office store (no meta bucket): %w", ErrInvalid)
	}
	v := m.Get([]byte("schema"))
	if v == nil {
		if !write {
			return fmt.Errorf("store not initialised: %w", ErrInvalid)
		}
		return m.Put([]byte("schema"), u64(schemaVersion))
	}
	got := binary.BigEndian.Uint64(v)
	if got > schemaVersion {
		return fmt.Errorf("schema %d, this program knows %d: %w", got, schemaVersion, ErrSchemaTooNew)
	}
	if got < 2 && write {
		if err := rebuildFigures(tx); err != nil {
			return fmt.Errorf("schema 2 (running figures): %w", err)
		}
	}
	if got < schemaVersion && write {
		// 3 needs no rewrite: rows that carry their profile are read as
		// they are (memberIn).
		return m.Put([]byte("schema"), u64(schemaVersion))
	}
	return nil
}

// rebuildFigures computes every member's running figures from the
// purchases (schema 1 to 2).
func rebuildFigures(tx *bolt.Tx) error {
	bt := newBoltTxn(tx)
	c := tx.Bucket(bPurchases).Cursor()
	var member string
	var recs [][]byte
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		err := RebuildFiguresIn(bt, member, recs)
		recs = nil
		return err
	}
	for k, v := c.First(); k != nil; k, v = c.Next() {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return fmt.Errorf("purchase key %q: %w", k, ErrInvalid)
		}
		if string(k[:i]) != member {
			if err := flush(); err != nil {
				return err
			}
			member = string(k[:i])
		}
		recs = append(recs, append([]byte(nil), v...))
	}
	return flush()
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// Watermark returns the register's applied watermark (0 if never seen).
func (s *Store) Watermark(register string) (uint64, error) {
	var w uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		rs, err := loadReg(tx, register)
		w = rs.Watermark
		return err
	})
	return w, err
}

// RegisterState returns one register's state (the zero state with its
// id when head office has never heard of it).
func (s *Store) RegisterState(register string) (RegisterState, error) {
	var rs RegisterState
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rs, err = loadReg(tx, register)
		return err
	})
	return rs, err
}

// Registers returns every register's state, sorted by id.
func (s *Store) Registers() ([]RegisterState, error) {
	var out []RegisterState
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bRegs).ForEach(func(k, v []byte) error {
			var rs RegisterState
			if err := json.Unmarshal(v, &rs); err != nil {
				return fmt.Errorf("register %q: %w", k, err)
			}
			out = append(out, rs)
			return nil
		})
	})
	return out, err
}

func loadReg(tx *bolt.Tx, register string) (RegisterState, error) {
	rs := RegisterState{Register: register}
	v := tx.Bucket(bRegs).Get([]byte(register))
	if v == nil {
		return rs, nil
	}
	if err := json.Unmarshal(v, &rs); err != nil {
		return rs, fmt.Errorf("register %q: %w", register, err)
	}
	return rs, nil
}

func loadMember(tx *bolt.Tx, id string) (*memberRec, error) {
	v := tx.Bucket(bMembers).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	return memberIn(tx, id, v)
}

// memberIn decodes a member's row v and reads its profile, unless the row
// carries it (written before schema 3).
func memberIn(tx *bolt.Tx, id string, v []byte) (*memberRec, error) {
	m, err := decodeMember(id, v)
	if err != nil || len(m.profileRaw) > 0 {
		return m, err
	}
	if pb := tx.Bucket(bProfiles); pb != nil { // nil: a store before 3 opened read-only
		if p := pb.Get([]byte(id)); p != nil {
			m.profileRaw = append([]byte(nil), p...)
		}
	}
	return m, nil
}

// summary is the member's summary; with tx, it includes the figures from
// the member's purchases as of now.
func (m *memberRec) summary(tx Txn, now time.Time) (MemberSummary, error) {
	p, err := m.profile()
	if err != nil {
		return MemberSummary{}, err
	}
	var out MemberSummary
	if tx != nil {
		if out.Spend12m, out.Visits12m, out.Retention, err = runningFigures(tx, m.ID, source.Enrolled(*p), now); err != nil {
			return MemberSummary{}, fmt.Errorf("member %q: %w", m.ID, err)
		}
		if out.FirstBonus, out.BirthdayYear, err = bonusSummary(tx, m.ID, out.Retention != nil); err != nil {
			return MemberSummary{}, fmt.Errorf("member %q: %w", m.ID, err)
		}
	}
	inc := make(map[string]uint64, len(m.Included))
	for k, v := range m.Included {
		inc[k] = v
	}
	mem := *p
	mem.Aliases = append([]string(nil), mem.Aliases...)
	out.Member, out.Balance, out.Included = mem, m.Balance, inc
	return out, nil
}

// Member returns a member's merged profile.
func (s *Store) Member(id string) (ledger.Member, error) {
	sum, err := s.summaryOf(id, false)
	return sum.Member, err
}

// Summary returns a member's chain-wide summary, with the figures from the
// member's purchases as of the store's clock.
func (s *Store) Summary(id string) (MemberSummary, error) {
	return s.summaryOf(id, true)
}

func (s *Store) summaryOf(id string, figures bool) (MemberSummary, error) {
	var out MemberSummary
	now, _ := s.opts.Clock.Now()
	err := s.db.View(func(tx *bolt.Tx) error {
		var ftx Txn
		if figures {
			ftx = newBoltTxn(tx)
		}
		m, err := loadMember(tx, id)
		if err != nil {
			return err
		}
		if m == nil {
			return fmt.Errorf("member %q: %w", id, ErrUnknownMember)
		}
		out, err = m.summary(ftx, now)
		return err
	})
	return out, err
}

// Summaries returns the summaries of the given members in one read
// transaction, in the order given; ids never seen are skipped.
func (s *Store) Summaries(ids []string) ([]MemberSummary, error) {
	out := make([]MemberSummary, 0, len(ids))
	now, _ := s.opts.Clock.Now()
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, id := range ids {
			m, err := loadMember(tx, id)
			if err != nil {
				return err
			}
			if m == nil {
				continue
			}
			sum, err := m.summary(newBoltTxn(tx), now)
			if err != nil {
				return err
			}
			out = append(out, sum)
		}
		return nil
	})
	return out, err
}

// Balance returns a member's chain-wide balance.
func (s *Store) Balance(id string) (ledger.Points, error) {
	sum, err := s.Summary(id)
	return sum.Balance, err
}

// LookupAlias finds a member by any alias.
func (s *Store) LookupAlias(alias string) (ledger.Member, error) {
	var id string
	if err := s.db.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bAliases).Get([]byte(alias)))
		return nil
	}); err != nil {
		return ledger.Member{}, err
	}
	if id == "" {
		return ledger.Member{}, fmt.Errorf("alias %q: %w", alias, ErrUnknownMember)
	}
	return s.Member(id)
}

// EachMember calls fn for every member in id order; an error from fn stops
// the walk and is returned.
func (s *Store) EachMember(fn func(m ledger.Member) error) error {
	return s.eachSummary(false, func(sum MemberSummary) error { return fn(sum.Member) })
}

// EachSummary calls fn for every member's summary in id order, with the
// figures from purchases as of the store's clock.
func (s *Store) EachSummary(fn func(MemberSummary) error) error {
	return s.eachSummary(true, fn)
}

func (s *Store) eachSummary(figures bool, fn func(MemberSummary) error) error {
	now, _ := s.opts.Clock.Now()
	return s.db.View(func(tx *bolt.Tx) error {
		var ftx Txn
		if figures {
			ftx = newBoltTxn(tx)
		}
		return tx.Bucket(bMembers).ForEach(func(k, v []byte) error {
			m, err := memberIn(tx, string(k), v)
			if err != nil {
				return err
			}
			sum, err := m.summary(ftx, now)
			if err != nil {
				return err
			}
			return fn(sum)
		})
	})
}

// purchaseKey orders purchases by member, then register, then sequence.
func purchaseKey(member, register string, seq uint64) []byte {
	k := make([]byte, 0, len(member)+len(register)+10)
	k = append(k, member...)
	k = append(k, 0)
	k = append(k, register...)
	k = append(k, 0)
	return append(k, u64(seq)...)
}

func purchaseMember(k []byte) string {
	for i, c := range k {
		if c == 0 {
			return string(k[:i])
		}
	}
	return string(k)
}

// EachPurchase calls fn for every purchase entry of every member, grouped
// by member (in id order), then by register and sequence. Refunds and voids
// are entries with a negative Amount naming the original SaleID. Sort by
// WallTime yourself if you need time order (and mind ClockTrusted).
func (s *Store) EachPurchase(fn func(memberID string, p ledger.Purchase) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bPurchases).ForEach(func(k, v []byte) error {
			var p ledger.Purchase
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("purchase %q: %w", k, err)
			}
			return fn(purchaseMember(k), p)
		})
	})
}

// Purchases returns one member's purchase entries (register, then sequence
// order).
func (s *Store) Purchases(memberID string) ([]ledger.Purchase, error) {
	var out []ledger.Purchase
	prefix := append([]byte(memberID), 0)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bPurchases).Cursor()
		for k, v := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
			var p ledger.Purchase
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("purchase %q: %w", k, err)
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// Conflicts returns every recorded conflict in the order found.
func (s *Store) Conflicts() ([]Conflict, error) {
	var out []Conflict
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bConflicts).ForEach(func(_, v []byte) error {
			var c Conflict
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// DoubleSpends returns the double-spend report: every point event that took
// a member's chain-wide balance below zero, in the order applied.
func (s *Store) DoubleSpends() ([]DoubleSpend, error) {
	var out []DoubleSpend
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bDouble).ForEach(func(_, v []byte) error {
			var d DoubleSpend
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// ConfigDoc is one recorded, versioned config document.
type ConfigDoc struct {
	Kind    string          `json:"kind"`
	Version uint64          `json:"version"`
	Doc     json.RawMessage `json:"doc"`
}

// RecordConfig records doc as the version in force of a kind of config
// document (head office uses the topic as the kind). The version must be
// greater than the last one recorded (ErrStaleConfig); validating the
// content is the caller's job.
func (s *Store) RecordConfig(kind string, version uint64, doc json.RawMessage) error {
	if kind == "" || version == 0 || !json.Valid(doc) {
		return fmt.Errorf("config %q version %d: need a kind, a positive version and JSON: %w", kind, version, ErrInvalid)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bConfig)
		if v := b.Get([]byte(kind)); v != nil {
			var prev ConfigDoc
			if err := json.Unmarshal(v, &prev); err != nil {
				return fmt.Errorf("config %q: %w", kind, err)
			}
			if version <= prev.Version {
				return fmt.Errorf("config %q version %d, published %d: %w", kind, version, prev.Version, ErrStaleConfig)
			}
		}
		v, err := json.Marshal(ConfigDoc{Kind: kind, Version: version, Doc: doc})
		if err != nil {
			return err
		}
		return b.Put([]byte(kind), v)
	})
}

// ForgetConfig drops the recorded document of a kind (Backend).
func (s *Store) ForgetConfig(kind string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bConfig).Delete([]byte(kind))
	})
}

// Configs returns the latest recorded document of every kind.
func (s *Store) Configs() ([]ConfigDoc, error) {
	var out []ConfigDoc
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bConfig).ForEach(func(_, v []byte) error {
			var d ConfigDoc
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Check verifies bbolt's consistency and the store's invariants: every
// register's events are contiguous up to its watermark (but for the gaps an
// operator acknowledged, AcknowledgeGap), held events lie
// beyond it, the review bookkeeping matches the records held for review
// (ReviewCounter), and every member's balance equals the sum of the
// member's applied point events.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var cerr error
		for err := range tx.Check() { // drain: Check's goroutine writes them all
			if cerr == nil {
				cerr = fmt.Errorf("check: %w", err)
			}
		}
		if cerr != nil {
			return cerr
		}
		sums := map[string]ledger.Points{}
		policyHeld := policyHeldSeqs(tx)
		err := tx.Bucket(bRegs).ForEach(func(k, v []byte) error {
			var rs RegisterState
			if err := json.Unmarshal(v, &rs); err != nil {
				return err
			}
			evs := tx.Bucket(bEvents).Bucket(k)
			gaps := gapsOf(tx, k) // acknowledged: no register has them
			var n uint64
			if evs != nil {
				c := evs.Cursor()
				for ek, ev := c.First(); ek != nil; ek, ev = c.Next() {
					n++
					for to, ok := gaps[n]; ok; to, ok = gaps[n] {
						n = to + 1
					}
					if seq := binary.BigEndian.Uint64(ek); seq != n {
						return fmt.Errorf("check: register %s: event seq %d where %d expected", k, seq, n)
					}
					var rec ledger.OutboxRecord
					if err := json.Unmarshal(ev, &rec); err != nil {
						return fmt.Errorf("check: register %s seq %d: %w", k, n, err)
					}
					if rec.Type == ledger.OutPoints && !policyHeld[string(policyKey(string(k), n))] {
						var pe ledger.PointEvent
						if err := json.Unmarshal(rec.Data, &pe); err != nil {
							return fmt.Errorf("check: register %s seq %d: %w", k, n, err)
						}
						sums[pe.MemberID] += pe.Points
					}
				}
			}
			for to, ok := gaps[n+1]; ok; to, ok = gaps[n+1] {
				n = to // the watermark was moved over a gap at the end
			}
			if n != rs.Watermark {
				return fmt.Errorf("check: register %s: events up to %d, watermark %d", k, n, rs.Watermark)
			}
			rs.Register = string(k)
			rc := NewReviewCounter(rs)
			if rb := tx.Bucket(bReview); rb != nil {
				p := append(append([]byte(nil), k...), 0)
				c := rb.Cursor()
				for rk, rv := c.Seek(p); rk != nil && bytes.HasPrefix(rk, p); rk, rv = c.Next() {
					rest := rk[len(p):]
					i := bytes.IndexByte(rest, 0)
					if i < 0 || len(rest) != i+1+8 {
						return fmt.Errorf("check: register %s: review key %q", k, rk)
					}
					rc.Add(string(rest[:i]), binary.BigEndian.Uint64(rest[i+1:]), rv)
				}
			}
			held := 0
			if hb := tx.Bucket(bHeld).Bucket(k); hb != nil {
				c := hb.Cursor()
				for hk, _ := c.First(); hk != nil; hk, _ = c.Next() {
					if held == 0 {
						rc.Held(binary.BigEndian.Uint64(hk))
					}
					held++
					if binary.BigEndian.Uint64(hk) <= rs.Watermark {
						return fmt.Errorf("check: register %s: held seq %d at or below watermark %d", k, binary.BigEndian.Uint64(hk), rs.Watermark)
					}
				}
			}
			if held != rs.Held {
				return fmt.Errorf("check: register %s: %d held, state says %d", k, held, rs.Held)
			}
			return rc.Err()
		})
		if err != nil {
			return err
		}
		var ids []string
		err = tx.Bucket(bMembers).ForEach(func(k, v []byte) error {
			m, err := decodeMember(string(k), v)
			if err != nil {
				return err
			}
			if m.Balance != sums[string(k)] {
				return fmt.Errorf("check: member %s: balance %d, events sum to %d", k, m.Balance, sums[string(k)])
			}
			ids = append(ids, string(k))
			return nil
		})
		if err != nil {
			return err
		}
		sort.Strings(ids)
		for id, sum := range sums {
			if i := sort.SearchStrings(ids, id); (i == len(ids) || ids[i] != id) && sum != 0 {
				return fmt.Errorf("check: member %s has point events but no record", id)
			}
		}
		if pb := tx.Bucket(bProfiles); pb != nil {
			if err := pb.ForEach(func(k, v []byte) error {
				if i := sort.SearchStrings(ids, string(k)); i == len(ids) || ids[i] != string(k) {
					return fmt.Errorf("check: profile of %s, who has no member record", k)
				}
				if !json.Valid(v) {
					return fmt.Errorf("check: profile of %s is not JSON", k)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		now, _ := s.opts.Clock.Now()
		bt := newBoltTxn(tx)
		if err := tx.Bucket(bMembers).ForEach(func(k, _ []byte) error {
			return CheckFiguresIn(bt, string(k), now)
		}); err != nil {
			return err
		}
		return checkStreams(tx)
	})
}

// NextEpoch durably increments and returns a counter, so that message
// sequence numbers built on it keep increasing across restarts.
func (s *Store) NextEpoch() (uint64, error) {
	var n uint64
	err := s.update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bMeta)
		if v := m.Get([]byte("epoch")); v != nil {
			n = binary.BigEndian.Uint64(v)
		}
		n++
		return m.Put([]byte("epoch"), u64(n))
	})
	if err != nil {
		return 0, fmt.Errorf("next epoch: %w", err)
	}
	return n, nil
}

// Snapshot writes a consistent copy of the whole store file to w from one
// read transaction, while Apply goes on (bbolt's Tx.WriteTo): head
// office's staff read reports from the live shop this way (loyalty-hq
// serve's GET /snapshot). It returns the bytes written.
func (s *Store) Snapshot(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
