package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"time"

	bolt "go.etcd.io/bbolt"
)

// lotRec is an expiry lot: points credited together, expiring together.
// The key is the member and the sequence number of the crediting event.
type lotRec struct {
	Remaining Points    `json:"remaining"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// lotPart is how much of one lot a negative movement consumed, kept so a
// give-back restores the same lots with their original expiry.
type lotPart struct {
	Lot       uint64    `json:"lot"`
	Points    Points    `json:"points"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// pointEvent writes ev (kind, member, points, links filled by the caller):
// it allocates the sequence number and id, writes the outbox record and
// the member's event row, moves the materialised balance and the lots.
// Positive points first pay off debt (negative movements that found no
// lot), then go back to the restore lots (a give-back) or form a new lot;
// negative points consume lots oldest first and return what they took.
func (w *wtx) pointEvent(rec *memberRec, ev PointEvent, restore []lotPart) (PointEvent, []lotPart) {
	ev = w.pointEventNoLots(rec, ev)
	var parts []lotPart
	switch {
	case ev.Points > 0:
		rest := ev.Points
		pay := min(rec.Debt, rest)
		rec.Debt -= pay
		rest -= pay
		for _, p := range restore {
			if rest == 0 {
				break
			}
			n := min(p.Points, rest)
			rest -= n
			k := rowKey(rowLot, rec.Member.ID, p.Lot)
			lot, ok := w.getLot(k)
			if !ok {
				lot = lotRec{ExpiresAt: p.ExpiresAt}
			}
			lot.Remaining += n
			w.putLot(k, lot)
		}
		if rest > 0 {
			// Credits of one operation with the same expiry share a lot
			// (a sale's lines and bonuses): fewer rows per sale.
			if j := w.joinLot; j != nil && j.member == rec.Member.ID && j.expires.Equal(ev.ExpiresAt) {
				if j.held {
					j.lot.Remaining += rest
					break
				}
				if lot, ok := w.getLot(j.key); ok {
					lot.Remaining += rest
					w.put(bRows, j.key, encodeLot(lot, &w.mem))
					break
				}
			}
			k := w.mem.rowKey(rowLot, rec.Member.ID, ev.Seq)
			lot := lotRec{Remaining: rest, ExpiresAt: ev.ExpiresAt}
			if w.holdLots {
				w.putHeldLot() // of another expiry
				// a new lot (ev.Seq was just allocated): index its expiry
				w.indexExpiry(rec.Member.ID, lot.ExpiresAt)
				w.joinLot = &joinLot{member: rec.Member.ID, key: k, expires: ev.ExpiresAt, lot: lot, held: true}
				break
			}
			w.putLot(k, lot)
			w.joinLot = &joinLot{member: rec.Member.ID, key: k, expires: ev.ExpiresAt}
		}
	case ev.Points < 0:
		need := -ev.Points
		prefix := rowPrefix(rowLot, rec.Member.ID)
		c := w.tx.Bucket(bRows).Cursor()
		type upd struct {
			k   []byte
			lot lotRec
		}
		var ups []upd
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && need > 0; k, v = c.Next() {
			var lot lotRec
			if err := decodeLot(v, &lot); err != nil {
				if w.rowErr == nil {
					w.rowErr = fmt.Errorf("decode lot %q: %w", k, err) // fails the op: see (*wtx).run
				}
				return ev, nil
			}
			n := min(lot.Remaining, need)
			need -= n
			lot.Remaining -= n
			parts = append(parts, lotPart{Lot: keySeq(k), Points: n, ExpiresAt: lot.ExpiresAt})
			ups = append(ups, upd{append([]byte(nil), k...), lot})
		}
		for _, u := range ups {
			if u.lot.Remaining == 0 {
				w.delLot(u.k, u.lot)
			} else {
				w.put(bRows, u.k, encodeLot(u.lot, &w.mem))
			}
		}
		rec.Debt += need
	}
	return ev, parts
}

func keySeq(k []byte) uint64 {
	var s uint64
	for _, b := range k[len(k)-8:] {
		s = s<<8 | uint64(b)
	}
	return s
}

// Adjust credits (positive) or debits (negative) points manually. id is
// the idempotency key; reason and operator are required. A debit may not
// take the effective balance below zero (ErrInsufficient). Credits expire
// as the rules in force say for points earned now.
func (l *Ledger) Adjust(ctx context.Context, id, memberID string, pts Points, reason, operator string) (PointEvent, error) {
	if err := validID("adjustment id", id); err != nil {
		return PointEvent{}, fmt.Errorf("ledger adjust: %w", err)
	}
	if err := validID("member id", memberID); err != nil {
		return PointEvent{}, fmt.Errorf("ledger adjust %q: %w", id, err)
	}
	if pts == 0 || pts == math.MinInt64 {
		return PointEvent{}, fmt.Errorf("ledger adjust %q: points %d: %w", id, pts, ErrInvalid)
	}
	if reason == "" || operator == "" {
		return PointEvent{}, fmt.Errorf("ledger adjust %q: reason and operator are required: %w", id, ErrInvalid)
	}
	fp := fingerprint([]any{memberID, pts, reason, operator})
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		ev, _, err := once(w, "adjust", id, fp, func() (PointEvent, error) {
			return w.adjust(id, memberID, pts, reason, operator)
		})
		return ev, err
	})
	if err != nil {
		return PointEvent{}, err
	}
	return res.(PointEvent), nil
}

func (w *wtx) adjust(id, memberID string, pts Points, reason, operator string) (PointEvent, error) {
	rec, err := w.member(memberID)
	if err != nil {
		return PointEvent{}, fmt.Errorf("ledger adjust %q: %w", id, err)
	}
	eff, err := effective(w.tx, rec)
	if err != nil {
		return PointEvent{}, err
	}
	if _, ok := addPoints(eff, pts); !ok {
		return PointEvent{}, fmt.Errorf("ledger adjust %q: balance overflow: %w", id, ErrInvalid)
	}
	if pts < 0 && eff+pts < 0 {
		return PointEvent{}, fmt.Errorf("ledger adjust %q: balance %d, debit %d: %w", id, eff, -pts, ErrInsufficient)
	}
	ev := PointEvent{Kind: KindAdjust, Points: pts, Reason: reason, Operator: operator}
	if pts > 0 && w.trusted {
		ev.ExpiresAt = w.eng.ExpiryFor(w.now) // untrusted: dated at correction
	}
	ev, _ = w.pointEvent(rec, ev, nil)
	w.saveMember(rec)
	return ev, nil
}

// expireBatch bounds the lots one ExpireDue transaction expires, so a
// large backlog never holds the writer (and the cashiers' sales) for long.
const expireBatch = 2000

// ExpireDue writes an expire event for every lot whose expiry date has
// passed, and returns how many lots expired. It works through an expiry
// index, in transactions of at most 2000 lots. Expiry needs a trusted
// clock: with an untrusted one it writes nothing and returns
// ErrClockUntrusted (a Pi booting in 1970 must not expire), and with a
// synchronised clock that disagrees with the trusted-time high-water mark
// (behind it, or ahead by more than the time elapsed, or after a restart
// by more than Options.ClockRestartStep) ErrClockFault, until
// a person confirms the clock (ConfirmClock) or it agrees again. Lots
// earned while the clock was untrusted have no date until CorrectTimes
// gives them one.
func (l *Ledger) ExpireDue(ctx context.Context) (int, error) {
	total := 0
	for {
		res, err := l.submit(ctx, func(w *wtx) (any, error) {
			r, err := w.expireDue()
			return r, err
		})
		if err != nil {
			return total, err
		}
		r := res.(expired)
		total += r.lots
		if r.lots < expireBatch && r.members < expireBatch {
			return total, nil
		}
	}
}

// expired is what one expireDue round did: lots expired and members
// whose index entry it visited (an entry left early by a redemption
// expires nothing, so a round of only such entries must not end
// ExpireDue while entries after them are due).
type expired struct{ lots, members int }

func (w *wtx) expireDue() (expired, error) {
	if !w.trusted {
		return expired{}, w.clockRefusal("expire")
	}
	// The members whose earliest indexed expiry has passed.
	var members []string
	c := w.tx.Bucket(bRows).Cursor()
	limit := expiryKey(w.now, "")
	for k, _ := c.Seek([]byte{0}); k != nil && k[0] == 0 && bytes.Compare(k[:9], limit) <= 0 && len(members) < expireBatch; k, _ = c.Next() {
		if len(k) <= 9 {
			return expired{}, fmt.Errorf("ledger expire: index entry %q names no member: %w", k, ErrInconsistent)
		}
		members = append(members, string(k[9:]))
	}
	n, visited := 0, 0
	for _, member := range members {
		if n >= expireBatch {
			break // the member's entry stays due: the next round
		}
		rec, err := w.member(member)
		if err != nil {
			return expired{}, err
		}
		// Expire exactly the lots due, oldest first: each is removed
		// before its event so the negative movement does not consume
		// an older, still valid lot.
		type due struct {
			k   []byte
			lot lotRec
		}
		var dues []due
		var next time.Time // the earliest expiry left after this round
		prefix := rowPrefix(rowLot, member)
		lc := w.tx.Bucket(bRows).Cursor()
		for k, v := lc.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = lc.Next() {
			var lot lotRec
			if err := decodeLot(v, &lot); err != nil {
				return expired{}, fmt.Errorf("ledger expire: decode lot %q: %w", k, err)
			}
			if lot.ExpiresAt.IsZero() {
				continue
			}
			if !lot.ExpiresAt.After(w.now) && n+len(dues) < expireBatch {
				dues = append(dues, due{append([]byte(nil), k...), lot})
				continue
			}
			if next.IsZero() || lot.ExpiresAt.Before(next) {
				next = lot.ExpiresAt
			}
		}
		for _, d := range dues {
			w.del(bRows, d.k)
			w.addExpired(d.k, d.lot.Remaining)
			w.pointEventNoLots(rec, PointEvent{Kind: KindExpire, Points: -d.lot.Remaining, Reverses: w.l.eventID(keySeq(d.k))})
		}
		w.setExpiryIndex(member, next)
		if len(dues) > 0 {
			w.saveMember(rec)
		}
		n += len(dues)
		visited++
	}
	return expired{n, visited}, nil
}

// The expiry index (schema 8) has one entry per member with dated lots,
// not one per lot: a zero byte (no member id starts with one, so the
// index sits before every member's rows), the time (sign bit flipped so
// times before 1970 sort first), then the member id. The time is at or
// before the earliest expiry of the member's open lots; the member's row
// of kind rowExpiryIndexed holds it, so the entry can be found and moved.
// A new lot expiring later than the member's entry (a sale of a member
// who has points already, the usual case) writes nothing to the index,
// so a sale does not dirty the index's leaf page; a lot used up by a
// redemption leaves the entry early, which ExpireDue corrects when it
// visits the member and finds nothing due.
const rowExpiryIndexed byte = 'i'

func expiryKey(t time.Time, member string) []byte {
	k := make([]byte, 9+len(member))
	binary.BigEndian.PutUint64(k[1:], uint64(t.UnixNano())^1<<63)
	copy(k[9:], member)
	return k
}

// indexedExpiry is the time of the member's expiry index entry.
func indexedExpiry(rows *bolt.Bucket, member string) (time.Time, bool) {
	return expiryEntry(rows.Get(rowKey(rowExpiryIndexed, member, 0)))
}

// indexedExpiry is indexedExpiry read through w.get.
func (w *wtx) indexedExpiry(member string) (time.Time, bool) {
	return expiryEntry(w.get(bRows, rowKey(rowExpiryIndexed, member, 0)))
}

func expiryEntry(v []byte) (time.Time, bool) {
	if len(v) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

// setExpiryIndex moves the member's index entry to t (none when t is
// zero).
func (w *wtx) setExpiryIndex(member string, t time.Time) {
	old, had := w.indexedExpiry(member)
	if had && old.Equal(t) {
		return
	}
	if had {
		w.del(bRows, expiryKey(old, member))
	}
	if t.IsZero() {
		if had {
			w.del(bRows, rowKey(rowExpiryIndexed, member, 0))
		}
		return
	}
	w.put(bRows, expiryKey(t, member), nil)
	w.put(bRows, rowKey(rowExpiryIndexed, member, 0), u64(uint64(t.UnixNano())))
}

// indexExpiry makes sure the member's index entry is not later than t,
// the expiry of a lot being dated or opened.
func (w *wtx) indexExpiry(member string, t time.Time) {
	if t.IsZero() {
		return
	}
	if old, had := w.indexedExpiry(member); had && !t.Before(old) {
		return
	}
	w.setExpiryIndex(member, t)
}

// putLot writes a lot, indexing its expiry when it is new.
func (w *wtx) putLot(k []byte, lot lotRec) {
	if !lot.ExpiresAt.IsZero() && w.get(bRows, k) == nil {
		w.indexExpiry(rowMember(k), lot.ExpiresAt)
	}
	w.put(bRows, k, encodeLot(lot, &w.mem))
}

// holdCredits makes the op's lot-opening credits (pointEvent) keep their
// lot in w.joinLot instead of writing it at each credit, until
// writeHeldLot: a sale's lines and bonuses share one lot, and writing it
// once saves reading it back and rewriting it for every line after the
// first. The caller must call writeHeldLot before anything reads lots.
func (w *wtx) holdCredits() { w.holdLots = true }

// writeHeldLot writes the lot holdCredits kept, and ends the holding.
func (w *wtx) writeHeldLot() {
	w.holdLots = false
	w.putHeldLot()
}

func (w *wtx) putHeldLot() {
	if j := w.joinLot; j != nil && j.held {
		w.put(bRows, j.key, encodeLot(j.lot, &w.mem))
		j.held = false
	}
}

// getLot reads the lot row k; one that does not decode fails the op
// (see (*wtx).run) and reads as missing.
func (w *wtx) getLot(k []byte) (lotRec, bool) {
	var lot lotRec
	v := w.get(bRows, k)
	if v == nil {
		return lot, false
	}
	if err := decodeLot(v, &lot); err != nil {
		if w.rowErr == nil {
			w.rowErr = fmt.Errorf("decode lot %q: %w", k, err)
		}
		return lot, false
	}
	return lot, true
}

// delLot removes a used-up lot; the member's index entry may now be
// early, which is allowed.
func (w *wtx) delLot(k []byte, _ lotRec) {
	w.del(bRows, k)
}

// pointEventNoLots writes an event whose lot movement the caller already
// did (expiry removes a given lot, not the oldest).
func (w *wtx) pointEventNoLots(rec *memberRec, ev PointEvent) PointEvent {
	ev.MemberID = rec.Member.ID
	ev.Register = w.l.register
	ev.WallTime, ev.ClockTrusted, ev.TimeRef = w.now, w.trusted, w.timeRef()
	ev.RuleVersion = w.eng.RuleVersion()
	var k []byte // the event row's key, named by the outbox record
	w.emitRow(OutPoints, ev.MemberID, ev.SaleID, func(seq uint64, id string) {
		ev.Seq, ev.ID = seq, id
	}, func(seq uint64) outboxPlace {
		k = w.mem.rowKey(rowEvent, rec.Member.ID, seq)
		return outboxPlace{placeRows, k}
	})
	if !eventRowTimesOK(&ev) {
		w.fail(fmt.Errorf("encode event %s: a time outside years 0-9999 or a zone offset of a day or more", ev.ID))
	}
	w.put(bRows, k, encodeEventRow(&ev, &w.mem))
	rec.Balance += ev.Points
	w.delta.Events++
	return ev
}

// addPoints adds with an overflow check.
func addPoints(a, b Points) (Points, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

func addMoney(a, b Money) (Money, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// mulMoney multiplies two non-negative values with an overflow check.
func mulMoney(q int64, p Money) (Money, bool) {
	if q < 0 || p < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(q), uint64(p))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return Money(lo), true
}

// prorate returns floor(total*part/whole) for 0 <= part <= whole, total >= 0,
// without overflow. It is the refund rounding rule: cumulative refunded
// units map to floor of the proportional share, so several partial refunds
// never reverse more than the whole, and the last one reverses exactly the
// rest.
func prorate(total int64, part, whole int64) int64 {
	hi, lo := bits.Mul64(uint64(total), uint64(part))
	q, _ := bits.Div64(hi, lo, uint64(whole))
	return int64(q)
}
