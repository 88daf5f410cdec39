package hqstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// Txn is one transaction of a backend as the rules of ingest need it: the
// applier (ApplyIn) holds every rule of the package documentation and
// reads and writes only through Txn, so every backend applies a stream
// the same way. Records are the stored forms the applier builds (JSON, or
// the outbox record exactly as compared for duplicates); a backend stores
// them as they are. A nil slice from a getter means "none".
//
// A backend that runs several writers at once (PostgreSQL) must make
// Register and Member lock what they return until the transaction ends.
type Txn interface {
	Register(id string) (RegisterState, bool, error)
	PutRegister(rs RegisterState) error
	Member(id string) (MemberRow, bool, error)
	PutMember(m MemberRow) error
	Event(register string, seq uint64) ([]byte, error)
	PutEvent(register string, seq uint64, rec []byte) error
	Held(register string, seq uint64) ([]byte, error)
	PutHeld(register string, seq uint64, rec []byte) error
	DeleteHeld(register string, seq uint64) error
	// NextHeld returns the lowest-numbered event held beyond the gap
	// (PutHeld) above after, this transaction's own writes included; ok
	// is false when there is none. The applier walks the held events
	// with it, so a backend answers it without looking at every number.
	NextHeld(register string, after uint64) (seq uint64, rec []byte, ok bool, err error)
	Sale(id string) ([]byte, error)
	PutSale(id string, rec []byte) error
	Purchase(member, register string, seq uint64) ([]byte, error)
	PutPurchase(member, register string, seq uint64, rec []byte) error
	// MemberPurchases returns a member's purchase records in register,
	// then sequence order.
	MemberPurchases(member string) ([][]byte, error)
	Alias(alias string) (string, error)
	// PutAlias binds alias to member, replacing an earlier owner.
	PutAlias(alias, member string) error
	AddConflict(c Conflict) error
	AddDoubleSpend(d DoubleSpend) error
	Review(register, incarnation string, seq uint64) ([]byte, error)
	// PutReview stores (or replaces) a record held for review.
	PutReview(register, incarnation string, seq uint64, rec []byte) error
	// CountReview counts a stream's records held for review (dismissed
	// ones too), those this transaction put included.
	CountReview(register, incarnation string) (uint64, error)
	// EachReview calls fn for each record of a stream held for review,
	// in sequence order, this transaction's own writes included.
	EachReview(register, incarnation string, fn func(seq uint64, rec []byte) error) error
	// The policy's facts and holds (policy.go): per register, counters
	// by name (the sum of the sizes of the adjustments applied on a day,
	// named by the day; the points reversals gave back of one of its
	// redemptions, named "reversed/<seq>"), and the events the policy
	// holds (ParsePolicyHeld reads a record).
	PolicyAdjusted(register, day string) (int64, error)
	PutPolicyAdjusted(register, day string, n int64) error
	PolicyHeld(register string, seq uint64) ([]byte, error)
	PutPolicyHeld(register string, seq uint64, rec []byte) error
	DeletePolicyHeld(register string, seq uint64) error
	// MarkChanged records that a member's chain-wide view changed (it
	// waits for a summary) and that the member was seen, at time at, at
	// each of stores (where its summaries go; docs/protocol.md "Member
	// summaries"). Called once per touched member per batch, in member
	// order.
	MarkChanged(member string, stores []string, at time.Time) error
	// Shops returns every store where the member was seen (MarkChanged),
	// in any order; the policy reads it. Stores only told about the
	// member by a lookup (Streams.LookedUp) are not among them.
	Shops(member string) ([]string, error)
	// Running figures (figures.go): a sale's part in its member's
	// figures and a member's purchase days (FigureDays: those in
	// from..to, ascending or, desc, descending, at most limit unless 0;
	// a day with Sales 0 is deleted by PutFigureDay).
	SaleFigure(member, sale string) ([]byte, error)
	PutSaleFigure(member, sale string, rec []byte) error
	FigureDay(member string, day int) (DayFigure, bool, error)
	PutFigureDay(member string, d DayFigure) error
	FigureDays(member string, from, to, limit int, desc bool) ([]DayFigure, error)
	// Erasure returns a member's erasure record (erase.go; nil: not
	// erased); PutErasure stores one.
	Erasure(member string) ([]byte, error)
	PutErasure(member string, rec []byte) error
}

// MemberRow is a member's stored chain-wide view: the balance and, per
// register, the highest sequence included (rewritten by every point
// event), and the profile (ledger.Member as JSON).
type MemberRow struct {
	ID       string
	Balance  ledger.Points
	Included map[string]uint64
	Profile  json.RawMessage
	// Added is what PutMember gets besides the new Balance: the points
	// this transaction applied, by register (their sum is Balance minus
	// the balance read). A backend that keeps per-register sums
	// (PostgreSQL) adds these instead of writing Balance.
	Added map[string]ledger.Points

	// fetch, set by a backend that keeps profiles apart (bbolt), reads
	// the profile when it is first needed: Profile is then empty, and
	// empty in the row to put back when nobody read or changed it, which
	// leaves the stored profile as it is. Point events, the bulk of the
	// stream, need only the balance.
	fetch func() ([]byte, error)
}

func (m *memberRec) row() (MemberRow, error) {
	if m.fetch != nil && m.profileRaw == nil && !m.profileDirty {
		return MemberRow{ID: m.ID, Balance: m.Balance, Included: m.Included, Added: m.added, fetch: m.fetch}, nil
	}
	prof := m.profileRaw
	if m.profileDirty || prof == nil {
		p, err := m.profile()
		if err != nil {
			return MemberRow{}, err
		}
		if prof, err = json.Marshal(p); err != nil {
			return MemberRow{}, err
		}
	}
	return MemberRow{ID: m.ID, Balance: m.Balance, Included: m.Included, Profile: prof, Added: m.added}, nil
}

func recOf(r MemberRow) *memberRec {
	inc := r.Included
	if inc == nil {
		inc = map[string]uint64{}
	}
	return &memberRec{ID: r.ID, Balance: r.Balance, Included: inc, profileRaw: r.Profile, fetch: r.fetch}
}

// ApplyIn applies a batch of events inside tx by the package's rules and
// returns what it did; an error means tx must be rolled back. opts gives
// MaxHeld and OfflineRedeemLimit (defaults as for Open).
func ApplyIn(tx Txn, events []Event, opts Options) (Result, error) {
	a := newApplier(tx, opts.withDefaults())
	// Room for a member per event (capped), so the maps of a large batch
	// are not grown and rehashed member by member.
	n := min(len(events), 4096)
	a.members, a.touched = make(map[string]*memberRec, n), make(map[string]bool, n)
	for _, e := range events {
		if err := a.one(e); err != nil {
			return Result{}, err
		}
	}
	if err := a.flush(); err != nil {
		return Result{}, err
	}
	return a.res, nil
}

func newApplier(tx Txn, o Options) *applier {
	return &applier{
		tx: tx, opts: o,
		regs:    map[string]*RegisterState{},
		members: map[string]*memberRec{},
		touched: map[string]bool{},
		res:     Result{Registers: map[string]RegisterState{}},
	}
}

// SummaryIn builds a member's summary from tx: with figures, the twelve-
// month figures and retention view as of now from the member's purchases.
func SummaryIn(tx Txn, m MemberRow, figures bool, now time.Time) (MemberSummary, error) {
	var ftx Txn
	if figures {
		ftx = tx
	}
	return recOf(m).summary(ftx, now)
}

// ParseReview decodes a record stored by PutReview into the event held,
// and whether an operator dismissed it (then it is no longer listed).
func ParseReview(register, incarnation string, seq uint64, rec []byte) (Held, bool, error) {
	var r heldRec
	if err := json.Unmarshal(rec, &r); err != nil {
		return Held{}, false, fmt.Errorf("review %s/%s/%d: %w", register, incarnation, seq, err)
	}
	r.Record.Seq = seq
	return Held{Stream: Stream{Store: r.Store, Register: register, Incarnation: incarnation}, Reason: r.Reason, OutboxRecord: r.Record}, r.Dismissed, nil
}

// boltTxn is Txn over a bbolt transaction.
type boltTxn struct {
	tx      *bolt.Tx
	buckets map[string]*bolt.Bucket
	// shops and dirty are MarkChanged's buckets, once it has run.
	shops, dirty *bolt.Bucket
}

func newBoltTxn(tx *bolt.Tx) *boltTxn { return &boltTxn{tx: tx, buckets: map[string]*bolt.Bucket{}} }

// sub returns a register's nested bucket; nil in a read transaction when
// it does not exist.
func (b *boltTxn) sub(parent []byte, reg string) (*bolt.Bucket, error) {
	k := string(parent) + "\x00" + reg
	if bk, ok := b.buckets[k]; ok {
		return bk, nil
	}
	p := b.tx.Bucket(parent)
	if !b.tx.Writable() {
		return p.Bucket([]byte(reg)), nil
	}
	bk, err := p.CreateBucketIfNotExists([]byte(reg))
	if err != nil {
		return nil, err
	}
	if string(parent) == string(bEvents) {
		// A register's events are only ever appended (keys are the
		// sequence at watermark+1): full pages halve what each commit
		// splits and writes, as bbolt advises for append-only buckets.
		bk.FillPercent = 1.0
	}
	b.buckets[k] = bk
	return bk, nil
}

func (b *boltTxn) subGet(parent []byte, reg string, seq uint64) ([]byte, error) {
	bk, err := b.sub(parent, reg)
	if err != nil || bk == nil {
		return nil, err
	}
	return bk.Get(u64(seq)), nil
}

func (b *boltTxn) Register(id string) (RegisterState, bool, error) {
	v := b.tx.Bucket(bRegs).Get([]byte(id))
	rs, err := loadReg(b.tx, id)
	return rs, v != nil, err
}

func (b *boltTxn) PutRegister(rs RegisterState) error {
	v, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	return b.tx.Bucket(bRegs).Put([]byte(rs.Register), v)
}

// Member reads the member's row; its profile is read when first needed
// (MemberRow.fetch), unless the row still carries it (before schema 3).
func (b *boltTxn) Member(id string) (MemberRow, bool, error) {
	v := b.tx.Bucket(bMembers).Get([]byte(id))
	if v == nil {
		return MemberRow{}, false, nil
	}
	m, err := decodeMember(id, v)
	if err != nil {
		return MemberRow{}, false, err
	}
	r := MemberRow{ID: id, Balance: m.Balance, Included: m.Included, Profile: m.profileRaw}
	if len(r.Profile) == 0 {
		r.Profile = nil
		r.fetch = func() ([]byte, error) {
			if p := b.tx.Bucket(bProfiles).Get([]byte(id)); p != nil {
				return append([]byte(nil), p...), nil
			}
			return nil, nil
		}
	}
	return r, true, nil
}

// PutMember writes the member's row and, when it changed, its profile.
func (b *boltTxn) PutMember(r MemberRow) error {
	id := []byte(r.ID)
	if err := b.tx.Bucket(bMembers).Put(id, recOf(r).encodeRow()); err != nil {
		return err
	}
	if r.fetch != nil { // the profile was not read: it has not changed
		return nil
	}
	pb := b.tx.Bucket(bProfiles)
	switch cur := pb.Get(id); {
	case len(r.Profile) == 0 && cur != nil:
		return pb.Delete(id)
	case len(r.Profile) == 0 || bytes.Equal(cur, r.Profile):
		return nil
	}
	return pb.Put(id, r.Profile)
}

func (b *boltTxn) Event(reg string, seq uint64) ([]byte, error) { return b.subGet(bEvents, reg, seq) }

func (b *boltTxn) PutEvent(reg string, seq uint64, rec []byte) error {
	bk, err := b.sub(bEvents, reg)
	if err != nil {
		return err
	}
	return bk.Put(u64(seq), rec)
}

func (b *boltTxn) Held(reg string, seq uint64) ([]byte, error) { return b.subGet(bHeld, reg, seq) }

func (b *boltTxn) PutHeld(reg string, seq uint64, rec []byte) error {
	bk, err := b.sub(bHeld, reg)
	if err != nil {
		return err
	}
	return bk.Put(u64(seq), rec)
}

func (b *boltTxn) DeleteHeld(reg string, seq uint64) error {
	bk, err := b.sub(bHeld, reg)
	if err != nil {
		return err
	}
	return bk.Delete(u64(seq))
}

func (b *boltTxn) NextHeld(reg string, after uint64) (uint64, []byte, bool, error) {
	if after == math.MaxUint64 {
		return 0, nil, false, nil
	}
	bk, err := b.sub(bHeld, reg)
	if err != nil || bk == nil {
		return 0, nil, false, err
	}
	k, v := bk.Cursor().Seek(u64(after + 1))
	if k == nil {
		return 0, nil, false, nil
	}
	if len(k) != 8 {
		return 0, nil, false, fmt.Errorf("held key %q of %s: %w", k, reg, ErrInvalid)
	}
	return binary.BigEndian.Uint64(k), v, true, nil
}

func (b *boltTxn) Sale(id string) ([]byte, error) { return b.tx.Bucket(bSales).Get([]byte(id)), nil }

func (b *boltTxn) PutSale(id string, rec []byte) error {
	return b.tx.Bucket(bSales).Put([]byte(id), rec)
}

func (b *boltTxn) Purchase(member, reg string, seq uint64) ([]byte, error) {
	return b.tx.Bucket(bPurchases).Get(purchaseKey(member, reg, seq)), nil
}

func (b *boltTxn) PutPurchase(member, reg string, seq uint64, rec []byte) error {
	return b.tx.Bucket(bPurchases).Put(purchaseKey(member, reg, seq), rec)
}

func (b *boltTxn) MemberPurchases(member string) ([][]byte, error) {
	prefix := append([]byte(member), 0)
	var out [][]byte
	c := b.tx.Bucket(bPurchases).Cursor()
	for k, v := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
		out = append(out, v)
	}
	return out, nil
}

func (b *boltTxn) Alias(alias string) (string, error) {
	return string(b.tx.Bucket(bAliases).Get([]byte(alias))), nil
}

func (b *boltTxn) PutAlias(alias, member string) error {
	return b.tx.Bucket(bAliases).Put([]byte(alias), []byte(member))
}

func (b *boltTxn) addSeq(bucket []byte, v any) error {
	bk := b.tx.Bucket(bucket)
	n, err := bk.NextSequence()
	if err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return bk.Put(u64(n), raw)
}

func (b *boltTxn) AddConflict(c Conflict) error       { return b.addSeq(bConflicts, c) }
func (b *boltTxn) AddDoubleSpend(d DoubleSpend) error { return b.addSeq(bDouble, d) }

func (b *boltTxn) reviewBucket() (*bolt.Bucket, error) {
	if bk := b.tx.Bucket(bReview); bk != nil || !b.tx.Writable() {
		return bk, nil
	}
	return b.tx.CreateBucketIfNotExists(bReview)
}

func (b *boltTxn) Review(reg, inc string, seq uint64) ([]byte, error) {
	bk, err := b.reviewBucket()
	if err != nil || bk == nil {
		return nil, err
	}
	return bk.Get(append(reviewPrefix(reg, inc), u64(seq)...)), nil
}

func (b *boltTxn) PutReview(reg, inc string, seq uint64, rec []byte) error {
	bk, err := b.reviewBucket()
	if err != nil {
		return err
	}
	return bk.Put(append(reviewPrefix(reg, inc), u64(seq)...), rec)
}

func (b *boltTxn) EachReview(reg, inc string, fn func(seq uint64, rec []byte) error) error {
	bk, err := b.reviewBucket()
	if err != nil || bk == nil {
		return err
	}
	p := reviewPrefix(reg, inc)
	c := bk.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if len(k) != len(p)+8 {
			return fmt.Errorf("review key %q: %w", k, ErrInvalid)
		}
		if err := fn(binary.BigEndian.Uint64(k[len(p):]), v); err != nil {
			return err
		}
	}
	return nil
}

func (b *boltTxn) CountReview(reg, inc string) (uint64, error) {
	bk, err := b.reviewBucket()
	if err != nil || bk == nil {
		return 0, err
	}
	return countPrefix(bk, reviewPrefix(reg, inc)), nil
}

// Touches returns, sorted and without repeats, the registers and members
// that applying events may write: a backend with row locks takes them in
// this one order before ApplyIn, so two writers never wait on each other
// in a cycle. Invalid events count as they would be applied (their
// register's state records the rejection).
func Touches(events []Event) (registers, members []string) {
	registers, members, _ = TouchesCredited(events)
	return registers, members
}

// TouchesCredited is Touches, and also returns (sorted) the members that
// events touch only by adding points (point events with points >= 0,
// other than the once-per-member bonuses):
// applying those needs neither the member's balance nor its profile, so a
// backend may leave them unlocked and add the points (MemberRow.Added)
// without reading them. Events applied from those held earlier are not
// in events; a backend reads and locks their members when asked.
func TouchesCredited(events []Event) (registers, members, credited []string) {
	regs, mems := map[string]bool{}, map[string]bool{}
	credit := map[string]bool{} // false: touched otherwise too
	for _, e := range events {
		if e.Register != "" && len(e.Register) <= maxIDLen {
			regs[e.Register] = true
		}
		o, err := decode(e)
		if err != nil {
			continue
		}
		switch {
		case o.point != nil:
			id := o.point.MemberID
			mems[id] = true
			// A once-per-member bonus reads the member's profile and
			// what was credited (bonus.go): locked, like other touches.
			if c, seen := credit[id]; o.point.Points >= 0 && !onceBonus(o.point) && (!seen || c) {
				credit[id] = true
			} else {
				credit[id] = false
			}
		case o.member != nil:
			mems[o.member.ID] = true
			credit[o.member.ID] = false
		case o.consent != nil:
			mems[o.consent.MemberID] = true
			credit[o.consent.MemberID] = false
		case o.erased != "":
			mems[o.erased] = true
			credit[o.erased] = false
		case o.confirm != nil:
			mems[o.confirm.MemberID] = true
			credit[o.confirm.MemberID] = false
		case o.clock != nil:
			for _, c := range o.clock.Events {
				if c.Type == ledger.OutMember && c.MemberID != "" {
					mems[c.MemberID] = true
					credit[c.MemberID] = false
				}
			}
		}
	}
	for id, c := range credit {
		if !c {
			delete(credit, id)
		}
	}
	return sortedKeys(regs), sortedKeys(mems), sortedKeys(credit)
}

// SaleTouches returns the (member, sale) pairs whose running figures
// applying events' sales and refunds that name their member moves
// (figures.go), so a backend can read them ahead in one go.
func SaleTouches(events []Event) (members, sales []string) {
	for _, e := range events {
		if e.Type != ledger.OutSale && e.Type != ledger.OutRefund && e.Type != ledger.OutVoid {
			continue // no decoding for the bulk of the stream
		}
		o, err := decode(e)
		if err != nil {
			continue
		}
		switch {
		case o.sale != nil && o.sale.MemberID != "":
			members, sales = append(members, o.sale.MemberID), append(sales, o.sale.ID)
		case o.refund != nil && o.refund.MemberID != "":
			members, sales = append(members, o.refund.MemberID), append(sales, o.refund.SaleID)
		}
	}
	return members, sales
}

// StoredRecord is the form in which an event is stored and compared for
// duplicates (Txn.PutEvent's rec).
func StoredRecord(r ledger.OutboxRecord) []byte { return encodeRecord(r) }
