package hqstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// bReview holds the events head office could not place, keyed
// "<register>\x00<incarnation>\x00<seq>": they are neither applied nor
// acknowledged to the ledger that sent them, which keeps them.
var bReview = []byte("review")

// Reasons an event is held for review (the protocol's notice codes).
const (
	// ReviewIncarnation: another ledger incarnation is bound to the
	// register id (a replaced or restored ledger, or a second register
	// configured with the same id).
	ReviewIncarnation = "incarnation"
	// ReviewStore: the register sent under another store than the one it
	// is bound to (moved without a confirmed move).
	ReviewStore = "store"
	// ReviewReused: a sequence number already applied came again from the
	// same incarnation with different content (a ledger restored from a
	// backup older than head office's copy).
	ReviewReused = "reused"
)

// Stream names one ledger's stream of a register: head office applies one
// incarnation per register id and holds the others for review.
type Stream struct {
	Store       string `json:"store"`
	Register    string `json:"register"`
	Incarnation string `json:"incarnation,omitempty"`
}

// Hold is what one Apply held for review from one stream: the reason, how
// many of that stream's events are held in all, and the watermark that may
// be acknowledged to it.
type Hold struct {
	Stream
	Reason    string `json:"reason"`
	Held      uint64 `json:"held"`
	Watermark uint64 `json:"watermark"`
	// Bound is the incarnation and store the register id is bound to.
	BoundIncarnation string `json:"bound_incarnation,omitempty"`
	BoundStore       string `json:"bound_store,omitempty"`
	Text             string `json:"text"`
}

// Held is one event held for review.
type Held struct {
	Stream
	Reason string `json:"reason"`
	// Code and Text, for Reason ReviewPolicy, say which check held the
	// event and why (sync/hq/policy).
	Code string `json:"code,omitempty"`
	Text string `json:"text,omitempty"`
	ledger.OutboxRecord
}

// SortHeld puts a review list in the order Backend.Review promises: by
// register, incarnation and sequence number (stable: a policy hold and a
// review of the same number keep their order).
func SortHeld(hs []Held) {
	sort.SliceStable(hs, func(i, j int) bool {
		if hs[i].Register != hs[j].Register {
			return hs[i].Register < hs[j].Register
		}
		if hs[i].Incarnation != hs[j].Incarnation {
			return hs[i].Incarnation < hs[j].Incarnation
		}
		return hs[i].Seq < hs[j].Seq
	})
}

type heldRec struct {
	Reason string              `json:"reason"`
	Store  string              `json:"store"`
	Record ledger.OutboxRecord `json:"record"`
	// Dismissed: an operator ended the review of this ReviewReused event
	// (ResolveIn); it is kept, out of Review, so a resend of it is known.
	Dismissed bool `json:"dismissed,omitempty"`
}

func reviewPrefix(register, inc string) []byte {
	return []byte(register + "\x00" + inc + "\x00")
}

// reviewText says what is wrong and what to do, for the register's status
// and display and head office's report. The command to run comes before
// the explanation: a notice is cut at protocol.MaxNoticeText bytes, and
// with ids of up to protocol.MaxIDLen characters only the explanation may
// be cut (TestReviewTextKeepsTheCommand).
func reviewText(h Hold) string {
	switch h.Reason {
	case ReviewIncarnation:
		return fmt.Sprintf("another ledger uses this register id. If this register replaced the old one, keep this ledger; head office adopts it with: "+
			"loyalty-hq register adopt -config FILE %s %s. If it is a second register, give it its own register.id "+
			"(head office follows incarnation %.8s; this one is %.8s; docs/operations.md)",
			h.Register, h.Incarnation, h.BoundIncarnation, h.Incarnation)
	case ReviewStore:
		return fmt.Sprintf("if it was moved, confirm the move at head office: loyalty-hq register move -config FILE %s %s (head office has register %s in store %s, not %s)",
			h.Register, h.Store, h.Register, h.BoundStore, h.Store)
	default:
		return fmt.Sprintf("head office already holds other events under these sequence numbers of register %s: this ledger looks restored from an older backup; "+
			"do not delete it, call support (docs/operations.md)", h.Register)
	}
}

// ReusedText is what head office tells a register whose events it holds
// as ReviewReused.
func ReusedText(register string) string {
	return reviewText(Hold{Stream: Stream{Register: register}, Reason: ReviewReused})
}

// hold keeps e for review instead of applying it.
func (a *applier) hold(rs *RegisterState, e Event, o op, reason string, wm uint64) error {
	st := Stream{Store: e.Store, Register: e.Register, Incarnation: e.Incarnation}
	if a.res.Holds == nil {
		a.res.Holds = map[Stream]Hold{}
	}
	h, ok := a.res.Holds[st]
	if !ok {
		h = Hold{Stream: st, Reason: reason, Watermark: wm, BoundIncarnation: rs.Incarnation, BoundStore: rs.Store}
		n, err := a.tx.CountReview(e.Register, e.Incarnation)
		if err != nil {
			return err
		}
		h.Held = n
	}
	h.Watermark = min(h.Watermark, wm)
	prev, err := a.tx.Review(e.Register, e.Incarnation, e.Seq)
	if err != nil {
		return err
	}
	if prev != nil && dismissed(prev) {
		// Other content under a number whose event an operator
		// dismissed: held afresh in its place.
		prev = nil
	}
	kept := prev != nil
	own := reason == ReviewReused && e.Incarnation == rs.Incarnation
	if prev == nil {
		if h.Held >= uint64(a.opts.MaxHeld) && !own {
			// (The bound incarnation's reused events are always kept:
			// the acks stay below the first of them only while it is
			// here, and there are at most as many as the register's
			// own events; review7: past MaxHeld one was acknowledged
			// and forgotten.)
			// The ledger keeps it (nothing was acknowledged).
			rs.Dropped++
			a.res.Dropped++
		} else {
			v, err := json.Marshal(heldRec{Reason: reason, Store: e.Store, Record: o.e.OutboxRecord})
			if err != nil {
				return err
			}
			if err := a.tx.PutReview(e.Register, e.Incarnation, e.Seq, v); err != nil {
				return err
			}
			h.Held++
			rs.Review++
			a.res.Reviewed++
			kept = true
		}
	}
	if kept && own && (rs.ReusedFrom == 0 || e.Seq < rs.ReusedFrom) {
		// Every later ack to the register stays below it, not only this
		// batch's notice (a store written before ReusedFrom learns it
		// from the register's next resend).
		rs.ReusedFrom = e.Seq
	}
	if e.Incarnation == rs.Incarnation && rs.ReusedFrom != 0 {
		// Whatever the reason of this hold (reused, or a store the
		// register was moved to meanwhile), its notice goes to the bound
		// ledger, whose events from ReusedFrom on head office holds with
		// other content: it must not acknowledge them (review9: a store
		// hold's notice, sent to the new store's topic where the acker's
		// cap does not apply, acknowledged the reused event).
		h.Watermark = min(h.Watermark, rs.ReusedFrom-1)
	}
	h.Text = reviewText(h)
	a.res.Holds[st] = h
	return nil
}

// reviewedAs reads e's number in e's incarnation's review list: whether
// the record there holds e's event (same) and whether an operator
// dismissed it. Nothing there: both false.
func (a *applier) reviewedAs(e Event, o op) (same, dismissed bool, err error) {
	v, err := a.tx.Review(e.Register, e.Incarnation, e.Seq)
	if err != nil || v == nil {
		return false, false, err
	}
	var r heldRec
	if json.Unmarshal(v, &r) != nil {
		return false, false, nil
	}
	return sameRecord(r.Record, o.e.OutboxRecord), r.Dismissed, nil
}

// sameRecord reports whether two records are the same event as stored.
func sameRecord(a, b ledger.OutboxRecord) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// dismissed reports whether rec, a record held for review, was dismissed.
func dismissed(rec []byte) bool {
	var r heldRec
	return json.Unmarshal(rec, &r) == nil && r.Dismissed
}

// resolveReused ends the review of the bound incarnation's event seq
// held as ReviewReused: dismiss leaves it unapplied for good (the record
// stays, marked, so a resend of it is a duplicate) and lets the acks go
// past it; approve is refused (its number belongs to another event of
// the stream). ErrNotHeld when no such event waits for review.
func (a *applier) resolveReused(rs *RegisterState, seq uint64, approve bool) error {
	v, err := a.tx.Review(rs.Register, rs.Incarnation, seq)
	if err != nil {
		return err
	}
	var r heldRec
	if v != nil {
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("review %s/%d: %w", rs.Register, seq, err)
		}
	}
	switch {
	case v == nil || r.Dismissed:
		return fmt.Errorf("%s seq %d: %w", rs.Register, seq, ErrNotHeld)
	case r.Reason != ReviewReused:
		return fmt.Errorf("%s seq %d is held as %q, not decided by review (docs/operations.md): %w", rs.Register, seq, r.Reason, ErrInvalid)
	case approve:
		return fmt.Errorf("%s seq %d is held as %q: head office's stream has another event under this number, so it cannot be applied; "+
			"record its sale again if it counts, then dismiss it: %w", rs.Register, seq, r.Reason, ErrInvalid)
	}
	// The first of the others still held, before this one is marked (a
	// backend may write only at commit).
	var from uint64
	err = a.tx.EachReview(rs.Register, rs.Incarnation, func(s uint64, rec []byte) error {
		if s == seq || from != 0 {
			return nil
		}
		var o heldRec
		if err := json.Unmarshal(rec, &o); err != nil {
			return fmt.Errorf("review %s/%d: %w", rs.Register, s, err)
		}
		if o.Reason == ReviewReused && !o.Dismissed {
			from = s
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.Dismissed = true
	nv, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := a.tx.PutReview(rs.Register, rs.Incarnation, seq, nv); err != nil {
		return err
	}
	rs.Review -= min(rs.Review, 1)
	rs.ReusedFrom = from
	return nil
}

func countPrefix(b *bolt.Bucket, p []byte) uint64 {
	var n uint64
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	return n
}

// place decides whether e belongs to the stream head office applies for
// its register id. It binds a register seen for the first time to e's
// store and incarnation, and a register whose events so far came without
// an incarnation (the legacy incarnation) to the first incarnation that
// carries its stream on (the next sequence number, or one already applied
// with the same content). Otherwise it returns the reason to hold e and
// the watermark that may be acknowledged to e's ledger.
func (a *applier) place(rs *RegisterState, e Event, o op) (reason string, wm uint64, err error) {
	fresh := rs.Watermark == 0 && rs.Seen == 0 && rs.Store == "" && rs.Incarnation == "" && rs.Review == 0
	if fresh {
		rs.Incarnation = e.Incarnation
		rs.Store = e.Store
		return "", 0, nil
	}
	if e.Incarnation != rs.Incarnation && rs.Incarnation != "" && e.PrevIncarnation == rs.Incarnation && e.Seq == rs.Watermark+1 {
		// A ledger restored from an older copy of the incarnation head
		// office follows goes on under a new one, numbered after head
		// office's watermark: follow it (the old one's events are held
		// from now on).
		rs.Follow(e.Incarnation)
		rs.Successions++
	}
	if e.Incarnation != rs.Incarnation {
		if rs.Incarnation != "" || e.Incarnation == "" {
			return ReviewIncarnation, 0, nil
		}
		// Legacy stream, first event with an incarnation.
		cont := e.Seq == rs.Watermark+1
		if !cont && e.Seq <= rs.Watermark {
			prev, err := a.tx.Event(e.Register, e.Seq)
			if err != nil {
				return "", 0, err
			}
			cont = bytes.Equal(prev, o.raw)
		}
		if !cont {
			return ReviewIncarnation, 0, nil
		}
		rs.Incarnation = e.Incarnation
		rs.ReusedFrom = 0
	}
	if rs.Store != "" && e.Store != "" && e.Store != rs.Store {
		return ReviewStore, rs.Watermark, nil
	}
	if rs.Store == "" {
		rs.Store = e.Store
	}
	return "", 0, nil
}

// Review lists the events held for review, by register, incarnation and
// sequence number: those head office could not place (another
// incarnation or store, a reused number) and those its policy held
// (Reason ReviewPolicy).
func (s *Store) Review() ([]Held, error) {
	var out []Held
	err := s.db.View(func(tx *bolt.Tx) error {
		ph, err := policyHeld(tx)
		if err != nil {
			return err
		}
		out = append(out, ph...)
		b := tx.Bucket(bReview)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			j := bytes.IndexByte(k[i+1:], 0) + i + 1
			if i < 0 || j <= i || len(k) != j+9 {
				return fmt.Errorf("review key %q: %w", k, ErrInvalid)
			}
			var r heldRec
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("review %q: %w", k, err)
			}
			if r.Dismissed {
				return nil
			}
			r.Record.Seq = binary.BigEndian.Uint64(k[j+1:])
			out = append(out, Held{Stream: Stream{Store: r.Store, Register: string(k[:i]), Incarnation: string(k[i+1 : j])},
				Reason: r.Reason, OutboxRecord: r.Record})
			return nil
		})
	})
	SortHeld(out)
	return out, err
}

// NothingHeldFrom is MoveRegister's refusal (both stores) of a move of
// register from store from to store to when head office holds none of
// its events sent under to.
func NothingHeldFrom(register, from, to string) error {
	return fmt.Errorf("move %s: head office holds no event that %s sent under store %s (it is in store %s); check the store id (the register's held events name it: loyalty-hq review), or pass -force to confirm a move before the register sent anything: %w",
		register, register, to, from, ErrInvalid)
}

// MoveRegister confirms that register now belongs to store to: events it
// sends under to are applied from now on, and those held for review
// because they came under to are dropped from the review list (the
// register never had them acknowledged, keeps them and resends them).
// Events already applied stay as they were recorded. It returns how many
// held events were released. Unless force is set, a move to a store from
// which head office holds none of the register's events is refused
// (ErrInvalid, NothingHeldFrom): a mistyped store would otherwise bind
// the register to it, and every event it sends under its real store would
// then be held.
func (s *Store) MoveRegister(register, to string, force bool) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		rs, err := loadReg(tx, register)
		if err != nil {
			return err
		}
		if rs.Store == "" {
			return fmt.Errorf("move %s: head office has never heard from this register: %w", register, ErrInvalid)
		}
		if rs.Store == to {
			return fmt.Errorf("move %s: already in store %s: %w", register, to, ErrInvalid)
		}
		from := rs.Store
		rs.Store = to
		if b := tx.Bucket(bReview); b == nil && !force {
			return NothingHeldFrom(register, from, to)
		} else if b != nil {
			p := reviewPrefix(register, rs.Incarnation)
			var del [][]byte
			c := b.Cursor()
			for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
				var r heldRec
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("review %q: %w", k, err)
				}
				if r.Reason == ReviewStore && r.Store == to {
					del = append(del, append([]byte(nil), k...))
				}
			}
			if len(del) == 0 && !force {
				return NothingHeldFrom(register, from, to)
			}
			for _, k := range del {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n = len(del)
			rs.Review -= min(rs.Review, uint64(n))
		}
		v, err := json.Marshal(rs)
		if err != nil {
			return err
		}
		return tx.Bucket(bRegs).Put([]byte(register), v)
	})
	return n, err
}
