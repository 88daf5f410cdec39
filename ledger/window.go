package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// The rolling 12-month window, kept incrementally.
//
// Every dated purchase index entry (Purchase.When) is also counted in the
// member's day row for the day it counts at: kind rowWindow, keyed by the
// day number (days since 1970-01-01 UTC) in place of a sequence number.
// A day row holds the day's net spend and visits (purchases with a
// positive amount) and, after them, each entry's time and amount:
//
//	spend int64 | visits int64 | (unix nanoseconds int64, amount int64)...
//
// The window (t-1y, t] is then the totals of the days strictly inside it
// plus the entries of the two days at its ends that fall inside it: a
// sale reads at most 366 small rows, however many purchases the member
// made, where it used to decode every purchase of the year. Entries of an
// untrusted clock that are not corrected yet are kept in the member row
// (memberRec.Untimed) and count wherever the window ends, until
// CorrectTimes dates them.
const rowWindow byte = 'w'

const dayNanos = int64(24 * time.Hour)

// dayOf is the day number t counts in (UTC); 0 for times before 1970.
func dayOf(t time.Time) uint64 {
	d := t.Unix() / 86400
	if d < 0 {
		return 0
	}
	return uint64(d)
}

// untimedPurchase is a purchase index entry whose time awaits correction.
type untimedPurchase struct {
	Seq    uint64 `json:"seq"`
	Amount Money  `json:"amount"`
}

// addPurchase writes a purchase index entry and counts it in the window:
// in its day row when it is dated, else in rec.Untimed (the caller saves
// rec).
func (w *wtx) addPurchase(rec *memberRec, p Purchase) {
	if !purchaseTimesOK(&p) {
		w.fail(fmt.Errorf("encode purchase %d: a time outside years 0-9999 or a zone offset of a day or more", p.Seq))
	}
	w.put(bRows, w.mem.rowKey(rowPurchase, rec.Member.ID, p.Seq), encodePurchase(&p, &w.mem))
	if at, ok := p.When(); ok {
		w.windowAdd(rec.Member.ID, at, p.Amount)
		return
	}
	rec.Untimed = append(rec.Untimed, untimedPurchase{Seq: p.Seq, Amount: p.Amount})
}

// datePurchase moves an untimed entry into its day row once its time is
// corrected.
func (w *wtx) datePurchase(rec *memberRec, seq uint64, at time.Time, amount Money) {
	if i := slices.IndexFunc(rec.Untimed, func(u untimedPurchase) bool { return u.Seq == seq }); i >= 0 {
		rec.Untimed = slices.Delete(rec.Untimed, i, i+1)
	}
	w.windowAdd(rec.Member.ID, at, amount)
}

func (w *wtx) windowAdd(member string, at time.Time, amount Money) {
	k := w.mem.rowKey(rowWindow, member, dayOf(at))
	old := w.get(bRows, k)
	if len(old) != 0 && !dayRowOK(old) {
		// A sale whose member's window is kept in memory never reads
		// this row: refuse it here, or its garbage would be taken as
		// totals and the entries it held lost (a lower tier in silence).
		w.fail(fmt.Errorf("member %q: day row %d has %d bytes: %w", member, dayOf(at), len(old), ErrInconsistent))
		return
	}
	if c, ok := w.winCache(member); ok {
		w.setWinCache(member, c.add(at.UnixNano(), int64(amount)))
	}
	v := w.mem.make(max(len(old), 16) + 16)[:max(len(old), 16)]
	copy(v, old)
	v = addDay(v, at, amount)
	w.put(bRows, k, v)
}

// addDay appends one entry to the day row v (at least its 16-byte head,
// with room for 16 more bytes) and updates the totals.
func addDay(v []byte, at time.Time, amount Money) []byte {
	spend := int64(binary.BigEndian.Uint64(v[0:8])) + int64(amount)
	visits := binary.BigEndian.Uint64(v[8:16])
	if amount > 0 {
		visits++
	}
	binary.BigEndian.PutUint64(v[0:8], uint64(spend))
	binary.BigEndian.PutUint64(v[8:16], visits)
	v = binary.BigEndian.AppendUint64(v, uint64(at.UnixNano()))
	return binary.BigEndian.AppendUint64(v, uint64(amount))
}

// windowDays sums the member's window (from, t] from the day rows.
func windowDays(rows *bolt.Bucket, member string, from, t time.Time) (spend int64, visits int, err error) {
	return windowSpan(rows, member, from.UnixNano(), t.UnixNano())
}

// memberWindowNow is the member's state with the window ending at t over
// every purchase so far (a sale, a tier decision, the display), from the
// day rows and the untimed entries: its cost does not depend on how many
// purchases the member made.
func memberWindowNow(rows *bolt.Bucket, rec *memberRec, t time.Time) (rules.MemberState, error) {
	ms := baseState(rec)
	if t.IsZero() {
		return ms, nil
	}
	spend, visits, err := windowDays(rows, rec.Member.ID, t.AddDate(-1, 0, 0), t)
	if err != nil {
		return ms, err
	}
	for _, u := range rec.Untimed {
		spend += int64(u.Amount)
		if u.Amount > 0 {
			visits++
		}
	}
	ms.Spend12m, ms.Visits12m = spend, visits
	return ms, nil
}

// The window as committed, kept in memory (l.win). Summing up to 366
// day rows made a sale of a member who shops every day cost half as much
// again as a new member's (BenchmarkSaleHeavyMember). The committer keeps
// each member's window sum since its last sale instead: the next sale
// subtracts the entries that left the window since (usually one day row
// or none) and adds its own, so each entry is read once when it enters
// and once when it leaves. Nothing of it is stored in the file: a member
// not in memory (after Open, or evicted) is summed from the day rows
// once, as before.

// winCache is the sum of a member's dated purchase index entries with a
// time after from (unix nanoseconds), and the latest entry's time. A
// window (t-1y, t] is the sum once from is moved to t-1y (the entries
// between the two are read from the day rows, taken off or added back)
// less the entries after t, if any (read from the day rows too).
type winCache struct {
	from, spend, visits int64
	maxAt               int64 // math.MinInt64: no entry
}

// add counts a new entry.
func (c winCache) add(at, amount int64) winCache {
	if at > c.from {
		c.spend += amount
		if amount > 0 {
			c.visits++
		}
	}
	c.maxAt = max(c.maxAt, at)
	return c
}

// winCacheMax bounds the members whose window is kept in memory.
const winCacheMax = 4096

// winCaches is the committed windows; only a write transaction uses it
// (the committer, and tests and benchmarks holding one), the lock makes
// that safe for any caller.
type winCaches struct {
	mu sync.Mutex
	m  map[string]winCache
}

func (wc *winCaches) get(member string) (winCache, bool) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	c, ok := wc.m[member]
	return c, ok
}

// keep stores the windows of a committed transaction.
func (wc *winCaches) keep(ws map[string]winCache) {
	if len(ws) == 0 {
		return
	}
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if wc.m == nil {
		wc.m = make(map[string]winCache, len(ws))
	}
	for id, c := range ws {
		if _, ok := wc.m[id]; !ok && len(wc.m) >= winCacheMax {
			for k := range wc.m { // evict one, any
				delete(wc.m, k)
				break
			}
		}
		wc.m[id] = c
	}
}

// winCache is the member's window as this transaction sees it.
func (w *wtx) winCache(member string) (winCache, bool) {
	if c, ok := w.win[member]; ok {
		return c, true
	}
	return w.l.win.get(member)
}

func (w *wtx) setWinCache(member string, c winCache) {
	if w.win == nil {
		w.win = make(map[string]winCache)
	}
	w.win[member] = c
}

// windowNow is memberWindowNow from the member's kept window (winCache),
// built from the day rows when none is kept.
func (w *wtx) windowNow(rec *memberRec, t time.Time) (rules.MemberState, error) {
	ms := baseState(rec)
	if t.IsZero() {
		return ms, nil
	}
	rows := w.tx.Bucket(bRows)
	id := rec.Member.ID
	lo, hi := t.AddDate(-1, 0, 0).UnixNano(), t.UnixNano()
	c, ok := w.winCache(id)
	span := func(from, to int64, sign int64) error {
		s, v, err := windowSpan(rows, id, from, to)
		c.spend, c.visits = c.spend+sign*s, c.visits+sign*int64(v)
		return err
	}
	var err error
	switch {
	case !ok:
		c = winCache{from: lo}
		if c.maxAt, err = lastEntry(rows, id); err == nil && c.maxAt > lo {
			err = span(lo, c.maxAt, 1)
		}
	case c.from < lo: // entries left the window
		err = span(c.from, lo, -1)
	case c.from > lo: // the window went back in time
		err = span(lo, c.from, 1)
	}
	if err != nil {
		return ms, err
	}
	if !ok || c.from != lo {
		c.from = lo
		w.setWinCache(id, c)
	}
	if c.maxAt > hi { // entries after t
		if err := span(hi, c.maxAt, -1); err != nil {
			return ms, err
		}
	}
	for _, u := range rec.Untimed { // not in the day rows
		c.spend += int64(u.Amount)
		if u.Amount > 0 {
			c.visits++
		}
	}
	ms.Spend12m, ms.Visits12m = c.spend, int(c.visits)
	return ms, nil
}

// dayRowOK reports whether v has a day row's shape: a 16-byte head of
// totals and whole 16-byte entries.
func dayRowOK(v []byte) bool { return len(v) >= 16 && (len(v)-16)%16 == 0 }

// windowSpan sums the member's entries with a time in (lo, hi] (unix
// nanoseconds): the days strictly between the two ends by their totals,
// the two end days entry by entry.
func windowSpan(rows *bolt.Bucket, member string, lo, hi int64) (spend int64, visits int, err error) {
	first, last := dayOf(time.Unix(0, lo)), dayOf(time.Unix(0, hi))
	prefix := rowPrefix(rowWindow, member)
	c := rows.Cursor()
	for k, v := c.Seek(rowKey(rowWindow, member, first)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		day := keySeq(k)
		if day > last {
			break
		}
		if !dayRowOK(v) {
			return 0, 0, fmt.Errorf("member %q: day row %d has %d bytes: %w", member, day, len(v), ErrInconsistent)
		}
		if day != first && day != last {
			spend += int64(binary.BigEndian.Uint64(v[0:8]))
			visits += int(binary.BigEndian.Uint64(v[8:16]))
			continue
		}
		for e := v[16:]; len(e) >= 16; e = e[16:] {
			at := int64(binary.BigEndian.Uint64(e[0:8]))
			amount := int64(binary.BigEndian.Uint64(e[8:16]))
			if at > lo && at <= hi {
				spend += amount
				if amount > 0 {
					visits++
				}
			}
		}
	}
	return spend, visits, nil
}

// lastEntry is the time of the member's latest dated entry
// (math.MinInt64 when there is none).
func lastEntry(rows *bolt.Bucket, member string) (int64, error) {
	last := int64(math.MinInt64)
	c := rows.Cursor()
	k, v := c.Seek(rowKey(rowWindow, member, math.MaxUint64))
	if k == nil {
		k, v = c.Last()
	} else if !bytes.Equal(k, rowKey(rowWindow, member, math.MaxUint64)) {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, rowPrefix(rowWindow, member)) || len(k) != len(member)+10 {
		return last, nil
	}
	if !dayRowOK(v) {
		return last, fmt.Errorf("member %q: day row %d has %d bytes: %w", member, keySeq(k), len(v), ErrInconsistent)
	}
	for e := v[16:]; len(e) >= 16; e = e[16:] {
		last = max(last, int64(binary.BigEndian.Uint64(e[0:8])))
	}
	return last, nil
}

// baseState is what the rules see of the member besides the window: this
// register's own state overlaid with head office's summary (the
// once-per-member bonuses chain-wide, "Head-office overlay" in the
// package documentation). Head office paid the first-purchase bonus: not
// pending, and the member has bought. Head office has a purchase and no
// bonus: a member who has not bought here yet has it pending (the first
// purchase was elsewhere), one who has keeps this register's state. Head
// office credited a birthday bonus for a year: that birthday is paid.
func baseState(rec *memberRec) rules.MemberState {
	ms := rules.MemberState{
		ID: rec.Member.ID, Birthday: rec.Member.Birthday, Tier: rec.Member.Tier,
		Purchases: rec.Purchases, FirstBonusPending: rec.FirstBonusPending,
		BirthdayBonusGivenAt: rec.BirthdayBonusGivenAt, BirthdayYears: rec.BirthdayYears,
	}
	s := rec.Summary
	if s == nil {
		return ms
	}
	switch s.FirstBonus {
	case FirstBonusPaid:
		ms.FirstBonusPending = false
		ms.Purchases = max(ms.Purchases, 1)
	case FirstBonusPending:
		if ms.Purchases <= 0 {
			ms.FirstBonusPending = true
			ms.Purchases = 1
		}
	}
	if s.BirthdayYear != 0 && !slices.Contains(ms.BirthdayYears, s.BirthdayYear) {
		ms.BirthdayYears = append(slices.Clip(ms.BirthdayYears), s.BirthdayYear)
	}
	return ms
}

// windowRows builds the day rows and untimed entries from purchase rows
// (migration, Check): day row key -> value, member -> untimed entries.
type windowRows struct {
	days    map[string][]byte
	untimed map[string][]untimedPurchase
}

func newWindowRows() *windowRows {
	return &windowRows{days: map[string][]byte{}, untimed: map[string][]untimedPurchase{}}
}

// add counts the purchase row k, v.
func (wr *windowRows) add(k, v []byte) error {
	var p Purchase
	if err := decodePurchase(v, &p); err != nil {
		return fmt.Errorf("purchase row %q: %w", k, err)
	}
	member := rowMember(k)
	at, ok := p.When()
	if !ok {
		wr.untimed[member] = append(wr.untimed[member], untimedPurchase{Seq: keySeq(k), Amount: p.Amount})
		return nil
	}
	dk := string(rowKey(rowWindow, member, dayOf(at)))
	d := wr.days[dk]
	if d == nil {
		d = make([]byte, 16)
	}
	wr.days[dk] = addDay(d, at, p.Amount)
	return nil
}

// sameDay reports whether two day rows hold the same totals and entries
// (in any order).
func sameDay(a, b []byte) bool {
	if len(a) != len(b) || len(a) < 16 || !bytes.Equal(a[:16], b[:16]) {
		return false
	}
	ents := func(v []byte) [][]byte {
		var out [][]byte
		for e := v[16:]; len(e) >= 16; e = e[16:] {
			out = append(out, e[:16])
		}
		slices.SortFunc(out, bytes.Compare)
		return out
	}
	return slices.EqualFunc(ents(a), ents(b), bytes.Equal)
}

// upgrade4 migrates a schema 4 file to 5: the day rows of the rolling
// window and the members' untimed entries, built from the purchase rows.
func upgrade4(tx *bolt.Tx) error {
	rows := tx.Bucket(bRows)
	wr := newWindowRows()
	err := rows.ForEach(func(k, v []byte) error {
		if len(k) >= 10 && k[0] != 0 && rowKind(k) == rowPurchase {
			return wr.add(k, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, v := range wr.days {
		if err := rows.Put([]byte(k), v); err != nil {
			return err
		}
	}
	for id, us := range wr.untimed {
		var rec memberRec
		v := getMemberRaw(tx, id)
		if v == nil {
			continue
		}
		if err := decodeMemberRow(v, &rec); err != nil {
			return fmt.Errorf("member %q: %w", id, err)
		}
		rec.Untimed = us
		b, err := jsonMarshal(rec)
		if err != nil {
			return err
		}
		if err := putMemberRaw(tx, id, b); err != nil {
			return err
		}
	}
	return nil
}
