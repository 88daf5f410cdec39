package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// memberRec is what the members bucket stores: the profile plus the
// materialised state the ledger keeps for it.
type memberRec struct {
	Member               Member          `json:"member"`
	Balance              Points          `json:"balance"` // sum of this register's events for the member
	Debt                 Points          `json:"debt,omitempty"`
	FirstBonusPending    bool            `json:"first_bonus_pending,omitempty"`
	BirthdayBonusGivenAt time.Time       `json:"birthday_bonus_given_at,omitzero"`
	BirthdayYears        []int           `json:"birthday_years,omitempty"` // birthday occurrences whose bonus was credited
	Purchases            int             `json:"purchases"`
	Fingerprint          string          `json:"fingerprint,omitempty"` // of the Enrol request
	ProfileSeq           uint64          `json:"profile_seq,omitempty"` // last local member/consent event
	Summary              *summaryState   `json:"summary,omitempty"`
	Offline              []offlineRedeem `json:"offline,omitempty"`
	// Untimed are the purchase index entries of an untrusted clock whose
	// time is not corrected yet: they count in every window (window.go).
	Untimed []untimedPurchase `json:"untimed,omitempty"`
}

type summaryState struct {
	Version   uint64          `json:"version"`
	Balance   Points          `json:"balance"`
	Covered   uint64          `json:"covered"`
	Spend12m  Money           `json:"spend_12m,omitempty"`
	Visits12m int             `json:"visits_12m,omitempty"`
	Retention json.RawMessage `json:"retention,omitempty"`
	// FirstBonus and BirthdayYear are MemberSummary's (schema 9 rows
	// with the mrBonus flag).
	FirstBonus   string `json:"first_bonus,omitempty"`
	BirthdayYear int    `json:"birthday_year,omitempty"`
	// Base is the sum of this register's point events for the member up
	// to Covered (schema 9), when BaseKnown: the effective balance is then
	// Balance + the member record's Balance - Base, without reading the
	// events after Covered (effective). Events are only ever appended
	// above the sequence a summary covers, so Base stays true until the
	// next summary. Records written before schema 9 lack it; effective
	// works it out from the events once and the member's next write keeps
	// it.
	Base      Points `json:"-"`
	BaseKnown bool   `json:"-"`
}

type offlineRedeem struct {
	Seq    uint64 `json:"seq"`
	Points Points `json:"points"`
}

// MemberSummary is head office's view of one member, sent down to
// registers (see the package doc, "Head-office overlay").
type MemberSummary struct {
	// Member is the chain-wide profile, so a card enrolled at another
	// store is found here.
	Member Member `json:"member"`
	// Balance is the chain-wide balance head office computed.
	Balance Points `json:"balance"`
	// Covered is the highest sequence number of THIS register's events
	// that Balance includes.
	Covered uint64 `json:"covered"`
	// Version orders summaries of the same member; older or equal ones are
	// ignored.
	Version uint64 `json:"version"`
	// Spend12m and Visits12m are head office's chain-wide net spend and
	// purchase days over the last twelve months.
	Spend12m  Money `json:"spend_12m,omitempty"`
	Visits12m int   `json:"visits_12m,omitempty"`
	// Retention is head office's retention view of the member (the JSON of
	// retention.MemberSummary), kept opaque here so the ledger does not
	// depend on the analytics; empty when head office sent none. It must
	// be a JSON object when present.
	Retention json.RawMessage `json:"retention,omitempty"`
	// FirstBonus and BirthdayYear are what head office credited the
	// member chain-wide of the once-per-member bonuses: FirstBonus
	// FirstBonusPending (the member bought, no first-purchase bonus yet)
	// or FirstBonusPaid, empty when head office has no purchase of the
	// member (or is older; any other value counts as empty); BirthdayYear
	// the latest birthday (year) it credited a birthday bonus for. The
	// rules see them with this register's own state ("Head-office
	// overlay" in the package documentation).
	FirstBonus   string `json:"first_bonus,omitempty"`
	BirthdayYear int    `json:"birthday_year,omitempty"`
}

// Values of MemberSummary.FirstBonus.
const (
	FirstBonusPending = "pending"
	FirstBonusPaid    = "paid"
)

// validID accepts ids and aliases: 1-128 bytes of printable characters.
// NUL is excluded because it separates key parts.
func validID(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty: %w", what, ErrInvalid)
	}
	if len(s) > 128 {
		return fmt.Errorf("%s is longer than 128 bytes: %w", what, ErrInvalid)
	}
	if err := noCard(what, s); err != nil {
		return err
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%s %q has a non-printable character: %w", what, s, ErrInvalid)
		}
	}
	return nil
}

func fingerprint(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

func validMember(m *Member) error {
	if err := validID("member id", m.ID); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range m.Aliases {
		if err := validID("alias", a); err != nil {
			return err
		}
		if seen[a] {
			return fmt.Errorf("alias %q listed twice: %w", a, ErrInvalid)
		}
		seen[a] = true
	}
	if len(m.Name) > 256 {
		return fmt.Errorf("name longer than 256 bytes: %w", ErrInvalid)
	}
	if err := noCards("name", m.Name, "contact phone", m.Contact.Phone, "contact email", m.Contact.Email,
		"consent note", m.Consent.Note, "consent channel", m.Consent.Channel, "tier", m.Tier, "language", m.Language); err != nil {
		return err
	}
	if m.Birthday != "" {
		if _, _, err := rules.ParseBirthday(m.Birthday); err != nil {
			return fmt.Errorf("birthday %q (want YYYY-MM-DD or --MM-DD): %w", m.Birthday, ErrInvalid)
		}
	}
	return nil
}

func (w *wtx) member(id string) (*memberRec, error) {
	var rec memberRec
	ok, err := w.getMember(id, &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("member %q: %w", id, ErrUnknownMember)
	}
	return &rec, nil
}

// getMember reads the member's record (either form, memberrow.go).
func (w *wtx) getMember(id string, rec *memberRec) (bool, error) {
	v := w.get(bRows, w.mem.rowKey(rowMemberRec, id, 0))
	if v == nil {
		return false, nil
	}
	if err := decodeMemberRow(v, rec); err != nil {
		return true, fmt.Errorf("decode member %q: %w", id, err)
	}
	return true, nil
}

func (w *wtx) saveMember(rec *memberRec) {
	v, err := encodeMemberRow(rec, &w.mem)
	if err != nil {
		w.fail(fmt.Errorf("encode member: %w", err))
		return
	}
	w.put(bRows, w.mem.rowKey(rowMemberRec, rec.Member.ID, 0), v)
}

// Enrol creates a member. It is idempotent by m.ID: enrolling the same
// profile again returns the stored member; a different profile under the
// same id is ErrConflict. Every alias must be free (ErrAliasTaken).
// EnrolledAt defaults to the clock's time.
func (l *Ledger) Enrol(ctx context.Context, m Member) (Member, error) {
	if err := validMember(&m); err != nil {
		return Member{}, fmt.Errorf("ledger enrol: %w", err)
	}
	m.Aliases = slices.Clone(m.Aliases)
	fp := fingerprint(m)
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		var old memberRec
		if found, err := w.getMember(m.ID, &old); err != nil {
			return nil, err
		} else if found && old.Fingerprint != fp {
			return nil, fmt.Errorf("ledger enrol %q: %w", m.ID, ErrConflict)
		} else if found {
			return old.Member, nil
		}
		for _, a := range m.Aliases {
			if owner := w.get(bAliases, []byte(a)); owner != nil {
				return nil, fmt.Errorf("ledger enrol %q: alias %q: %w", m.ID, a, ErrAliasTaken)
			}
		}
		mm := m
		if mm.EnrolledAt.IsZero() {
			mm.EnrolledAt, mm.EnrolledTrusted = w.now, w.trusted
		}
		if mm.HomeRegister == "" {
			mm.HomeRegister = w.l.register
		}
		if mm.Tier == "" {
			// A new member starts in the base tier (no spend, no visits),
			// not in no tier at all.
			if te, ok := w.eng.(interface {
				TierFor(spend12m int64, visits12m int) rules.Tier
			}); ok {
				mm.Tier = te.TierFor(0, 0).Name
			}
		}
		if mm.Consent.At.IsZero() && mm.Consent.Channel != "" {
			mm.Consent.At, mm.Consent.ClockTrusted = w.now, w.trusted
		}
		if mm.Consent.Channel != "" && len(mm.ConsentHistory) == 0 {
			mm.ConsentHistory = []Consent{mm.Consent}
		}
		rec := &memberRec{Member: mm, Fingerprint: fp}
		w.delta.Members++
		rec.ProfileSeq, _ = w.emit(OutMember, func(uint64, string) any { return mm })
		for _, a := range mm.Aliases {
			w.put(bAliases, []byte(a), []byte(mm.ID))
		}
		w.saveMember(rec)
		return mm, nil
	})
	if err != nil {
		return Member{}, err
	}
	return res.(Member), nil
}

// SetConsent records a consent change for the member and appends it to the
// consent history. Recording the same consent as the current one again
// changes nothing. At defaults to the clock's time.
func (l *Ledger) SetConsent(ctx context.Context, memberID string, c Consent) (Member, error) {
	if err := validID("member id", memberID); err != nil {
		return Member{}, fmt.Errorf("ledger consent: %w", err)
	}
	if c.Channel == "" {
		return Member{}, fmt.Errorf("ledger consent %q: channel is empty: %w", memberID, ErrInvalid)
	}
	if err := noCards("consent channel", c.Channel, "consent note", c.Note); err != nil {
		return Member{}, fmt.Errorf("ledger consent %q: %w", memberID, err)
	}
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		rec, err := w.member(memberID)
		if err != nil {
			return nil, fmt.Errorf("ledger consent: %w", err)
		}
		cc := c
		if cc.At.IsZero() {
			cc.At, cc.ClockTrusted = w.now, w.trusted
		}
		if h := rec.Member.ConsentHistory; len(h) > 0 {
			last := h[len(h)-1]
			if last.Given == cc.Given && last.Channel == cc.Channel && last.Note == cc.Note && (c.At.IsZero() || last.At.Equal(cc.At)) {
				return rec.Member, nil
			}
		}
		rec.Member.Consent = cc
		rec.Member.ConsentHistory = append(rec.Member.ConsentHistory, cc)
		m := rec.Member
		rec.ProfileSeq, _ = w.emit(OutConsent, func(uint64, string) any { return m })
		w.saveMember(rec)
		return m, nil
	})
	if err != nil {
		return Member{}, err
	}
	return res.(Member), nil
}

// ApplyMemberSummary installs head office's summary of a member: the
// profile (creating the member when this register has never seen it) and
// the chain-wide balance. Summaries with a Version not newer than the one
// held are ignored (nil error). Aliases in the summary are moved to this
// member if another local member held them: head office is the authority
// on aliases. Nothing is written to the outbox: the summary comes from
// head office.
func (l *Ledger) ApplyMemberSummary(ctx context.Context, s MemberSummary) error {
	if err := validMember(&s.Member); err != nil {
		return fmt.Errorf("ledger summary: %w", err)
	}
	if s.Version == 0 {
		return fmt.Errorf("ledger summary %q: version 0: %w", s.Member.ID, ErrInvalid)
	}
	if err := validSummaryFigures(&s); err != nil {
		return err
	}
	s.Member.Aliases = slices.Clone(s.Member.Aliases)
	_, err := l.submit(ctx, func(w *wtx) (any, error) {
		// Covered is in head office's numbers (Wire), which are the
		// ledger's own unless it was renumbered (epoch.go).
		c, err := w.localCovered(s.Covered)
		if err != nil {
			return nil, err
		}
		s.Covered = c
		if s.Covered > w.seq {
			return nil, fmt.Errorf("ledger summary %q: covers seq %d but this register is at %d: %w", s.Member.ID, s.Covered, w.seq, ErrInvalid)
		}
		var rec memberRec
		var found bool
		found, err = w.getMember(s.Member.ID, &rec)
		if err != nil {
			return nil, err
		}
		if found && rec.Summary != nil && s.Version <= rec.Summary.Version {
			return nil, nil
		}
		if !found {
			rec = memberRec{Member: Member{ID: s.Member.ID}}
			w.delta.Members++
		}
		// Take head office's profile unless a local profile change is
		// newer than what the summary covered.
		if !found || rec.ProfileSeq <= s.Covered {
			for _, a := range rec.Member.Aliases {
				if !slices.Contains(s.Member.Aliases, a) {
					w.del(bAliases, []byte(a))
				}
			}
			for _, a := range s.Member.Aliases {
				owner := w.get(bAliases, []byte(a))
				if owner != nil && string(owner) != s.Member.ID {
					if err := w.dropAlias(string(owner), a); err != nil {
						return nil, err
					}
				}
				w.put(bAliases, []byte(a), []byte(s.Member.ID))
			}
			rec.Member = s.Member
		}
		tail, err := eventsAfter(w.tx, s.Member.ID, s.Covered)
		if err != nil {
			return nil, err
		}
		rec.Summary = &summaryState{Version: s.Version, Balance: s.Balance, Covered: s.Covered,
			Spend12m: s.Spend12m, Visits12m: s.Visits12m, Retention: s.Retention,
			FirstBonus: s.FirstBonus, BirthdayYear: s.BirthdayYear,
			Base: rec.Balance - tail, BaseKnown: true}
		rec.Offline = slices.DeleteFunc(rec.Offline, func(o offlineRedeem) bool { return o.Seq <= s.Covered })
		w.saveMember(&rec)
		return nil, nil
	})
	return err
}

func (w *wtx) dropAlias(memberID, alias string) error {
	rec, err := w.member(memberID)
	if err != nil {
		return err
	}
	rec.Member.Aliases = slices.DeleteFunc(rec.Member.Aliases, func(a string) bool { return a == alias })
	w.saveMember(rec)
	return nil
}

// LookupAlias finds a member by any alias (card, phone).
func (l *Ledger) LookupAlias(alias string) (Member, error) {
	if err := noCard("look-up", alias); err != nil {
		return Member{}, err
	}
	var m Member
	err := l.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bAliases).Get([]byte(alias))
		if id == nil {
			return fmt.Errorf("ledger lookup alias %q: %w", alias, ErrUnknownMember)
		}
		rec, err := readMember(tx, string(id))
		if err != nil {
			return err
		}
		m = rec.Member
		return nil
	})
	return m, err
}

// Member returns a member by id.
func (l *Ledger) Member(id string) (Member, error) {
	if err := noCard("look-up", id); err != nil {
		return Member{}, err
	}
	var m Member
	err := l.view(func(tx *bolt.Tx) error {
		rec, err := readMember(tx, id)
		if err != nil {
			return err
		}
		m = rec.Member
		return nil
	})
	return m, err
}

func readMember(tx *bolt.Tx, id string) (*memberRec, error) {
	b := tx.Bucket(bRows).Get(memberKey(id))
	if b == nil {
		return nil, fmt.Errorf("member %q: %w", id, ErrUnknownMember)
	}
	var rec memberRec
	if err := decodeMemberRow(b, &rec); err != nil {
		return nil, fmt.Errorf("decode member %q: %w", id, err)
	}
	return &rec, nil
}

// Balance returns the member's effective balance: head office's chain-wide
// balance plus this register's events newer than the summary covered, or
// the sum of this register's events when no summary arrived yet.
func (l *Ledger) Balance(memberID string) (Points, error) {
	if err := noCard("look-up", memberID); err != nil {
		return 0, err
	}
	var p Points
	err := l.view(func(tx *bolt.Tx) error {
		rec, err := readMember(tx, memberID)
		if err != nil {
			return err
		}
		p, err = effective(tx, rec)
		return err
	})
	return p, err
}

// LocalBalance returns the sum of this register's point events for the
// member (the materialised balance Check verifies).
func (l *Ledger) LocalBalance(memberID string) (Points, error) {
	var p Points
	err := l.view(func(tx *bolt.Tx) error {
		rec, err := readMember(tx, memberID)
		if err != nil {
			return err
		}
		p = rec.Balance
		return nil
	})
	return p, err
}

// effective is the member's effective balance: head office's balance
// plus this register's events after the seq its summary covered (the
// member record's Balance less the summary's Base), or the local balance
// when no summary arrived. It costs the same whatever the member's
// history. A summary recorded before schema 9 has no Base: it is worked
// out from the events after Covered and set in rec, so a caller that
// saves rec keeps it.
func effective(tx *bolt.Tx, rec *memberRec) (Points, error) {
	s := rec.Summary
	if s == nil {
		return rec.Balance, nil
	}
	if !s.BaseKnown {
		tail, err := eventsAfter(tx, rec.Member.ID, s.Covered)
		if err != nil {
			return 0, err
		}
		s.Base, s.BaseKnown = rec.Balance-tail, true
	}
	return s.Balance + rec.Balance - s.Base, nil
}

// eventsAfter sums the points of this register's events for the member
// with a sequence number above seq.
func eventsAfter(tx *bolt.Tx, memberID string, seq uint64) (Points, error) {
	var sum Points
	prefix := rowPrefix(rowEvent, memberID)
	c := tx.Bucket(bRows).Cursor()
	for k, v := c.Seek(rowKey(rowEvent, memberID, seq+1)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		p, err := eventRowPoints(v)
		if err != nil {
			return 0, fmt.Errorf("decode event %q: %w", k, err)
		}
		sum += p
	}
	return sum, nil
}

// Events returns a member's point events recorded at this register, in
// sequence order.
func (l *Ledger) Events(memberID string) ([]PointEvent, error) {
	var out []PointEvent
	err := l.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bRows).Get(memberKey(memberID)) == nil {
			return fmt.Errorf("ledger events: member %q: %w", memberID, ErrUnknownMember)
		}
		prefix := rowPrefix(rowEvent, memberID)
		c := tx.Bucket(bRows).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 {
				continue // cannot happen: ids contain no NUL, kinds are one byte
			}
			var ev PointEvent
			if err := decodeEventRow(k, v, &ev); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// Purchases returns a member's purchase index (sales and refunds at this
// register) in sequence order. It reads only that member's rows.
func (l *Ledger) Purchases(memberID string) ([]Purchase, error) {
	var out []Purchase
	err := l.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bRows).Get(memberKey(memberID)) == nil {
			return fmt.Errorf("ledger purchases: member %q: %w", memberID, ErrUnknownMember)
		}
		return scanPrefix(tx.Bucket(bRows), rowPrefix(rowPurchase, memberID), func(v []byte) error {
			var p Purchase
			if err := decodePurchase(v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

func scanPrefix(b *bolt.Bucket, prefix []byte, fn func(v []byte) error) error {
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+8 {
			continue // cannot happen: ids contain no NUL, kinds are one byte
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}
