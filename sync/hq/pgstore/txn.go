package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// txn is hqstore.Txn over one PostgreSQL transaction (write) or the pool
// (read). Writes are queued and sent in one batch by flush; reads see the
// queued writes through cache.
//
// A member's balance is hq_members.carried (what schema 4 held) plus the
// per-register sums in hq_member_regs, whose seq is the member's Included
// mark for that register. A batch writes those rows only under the lock
// of their register's row, so they never wait on another register's
// events; the member's own row is locked and read only when the batch
// needs its balance or profile (redemptions, profile events), and written
// only when the profile changes or the member is new.
type txn struct {
	ctx   context.Context
	q     querier
	write bool
	// st gives the store's memory of rows known to exist (known.go); nil
	// outside Apply and its kin: nothing is known then.
	st *Store
	// begin: lock's round trip starts the transaction (BEGIN goes with
	// it); commit: flush's round trip ends it (COMMIT goes with it).
	begin, commit bool
	regs          map[string]hqstore.RegisterState
	regsSeen      []string
	mems          map[string]hqstore.MemberRow // members read under their row lock
	// credited are members this batch only adds points to
	// (hqstore.TouchesCredited), read without a lock: true when the row
	// is known to exist (false: it may not, and is inserted ON CONFLICT
	// DO NOTHING).
	credited map[string]bool
	// sure are members whose rows exist once this transaction commits;
	// shopKey/shopSec the hq_shops marks it holds then (member \x00
	// store, at least this time). Remembered after the commit.
	sure    []string
	shopKey []string
	shopSec []int64
	days    map[string]map[int]dayCached // running figures' days by member (FigureDay)
	// lastDay is each prefetched member's last day in the database (nil:
	// none), prefetchFigures.
	lastDay map[string]*hqstore.DayFigure
	// figures are the (member, sale) pairs lock reads ahead
	// (hqstore.SaleTouches).
	figures [2][]string
	// figLocked are the members whose figures lock this transaction
	// holds (queueFigureLocks).
	figLocked map[string]bool
	cache     map[string]cached // kind\x00key -> value, nil: none
	// events are the records PutEvent was given, by register and
	// sequence (kept apart from cache: one a point event, no key string).
	events map[evKey][]byte
	// reviews are the records PutReview was given, by register \x00
	// incarnation and sequence: CountReview and EachReview add them to
	// what the database holds (written only at flush).
	reviews map[string]map[uint64][]byte
	// heldRead is, per register, the last range of hq_held NextHeld read
	// (its records are in cache); heldPut the numbers PutHeld was given,
	// in order.
	heldRead map[string]heldRange
	heldPut  map[string][]uint64
	batch    pgx.Batch
	// Rows written with one statement each at flush.
	evReg, regID                 []string
	evSeq                        []int64
	evRec                        [][]byte
	regState                     [][]byte
	regWM                        []int64
	profID, newID, creditID      []string
	profV, newProf, creditProf   [][]byte
	mrMember, mrReg              []string // rows of hq_member_regs to add to (or insert)
	mrSeq, mrPts                 []int64
	dirty, shopMember, shopStore []string
	shopAt                       []int64
	// erasures: an erasure record was written (flush moves the erasures
	// version, last).
	erasures bool
}

type cached struct {
	v      []byte
	exists bool // the row exists in the database (update, not insert)
}

func newTxn(ctx context.Context, q querier, write bool) *txn {
	return &txn{ctx: ctx, q: q, write: write, regs: map[string]hqstore.RegisterState{},
		mems: map[string]hqstore.MemberRow{}, credited: map[string]bool{}, cache: map[string]cached{}}
}

// knownRow reports whether c remembers key (false without a store).
func (t *txn) knownRow(c func(*Store) *known, key string) (int64, bool) {
	if t.st == nil {
		return 0, false
	}
	return c(t.st).get(key)
}

// remember tells the store what this transaction, now committed, showed
// to exist.
func (t *txn) remember() {
	if t.st == nil {
		return
	}
	t.st.knownRegs.add(t.regsSeen, nil)
	t.st.knownMembers.add(t.sure, nil)
	t.st.knownShops.add(t.shopKey, t.shopSec)
}

func knownRegs(s *Store) *known    { return s.knownRegs }
func knownMembers(s *Store) *known { return s.knownMembers }
func knownShops(s *Store) *known   { return s.knownShops }

func key(kind string, parts ...string) string {
	k := kind
	for _, p := range parts {
		k += "\x00" + p
	}
	return k
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func seqs(n uint64) string { return strconv.FormatUint(n, 10) }

// errCreatedMeanwhile: a member row appeared between a transaction's
// lock and its read; the transaction runs again (retryable).
var errCreatedMeanwhile = errors.New("member created by a concurrent writer")

// memberRead reads members with their balance and Included marks
// (scanMember's columns); append a WHERE on m.id.
const memberRead = `SELECT m.id, m.carried + COALESCE(r.points, 0), COALESCE(r.included, '{}'::json), m.profile FROM hq_members AS m
	LEFT JOIN LATERAL (SELECT sum(points)::bigint AS points, json_object_agg(register, seq) AS included
		FROM hq_member_regs WHERE member = m.id) AS r ON true`

// lock takes the rows of the batch's registers (inserting new ones) and
// existing members, in id order. Credited members are neither read nor
// locked: the store remembers which exist (known.go).
func (t *txn) lock(regs, mems, credited []string) error {
	// One round trip: begin, insert registers not known to exist, lock
	// the registers, lock and read the members.
	var b pgx.Batch
	if t.begin {
		b.Queue(`BEGIN`)
		t.begin = false
	}
	var fresh []string
	for _, r := range regs {
		if _, ok := t.knownRow(knownRegs, r); !ok {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) > 0 {
		b.Queue(`INSERT INTO hq_registers (register, state)
			SELECT r, json_build_object('register', r) FROM unnest($1::text[]) AS r ORDER BY r
			ON CONFLICT (register) DO NOTHING`, fresh)
	}
	t.regsSeen = append(t.regsSeen, regs...)
	b.Queue(`SELECT state FROM hq_registers WHERE register = ANY($1) ORDER BY register FOR UPDATE`, regs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var rs hqstore.RegisterState
			if err := rows.Scan(&rs); err != nil {
				return err
			}
			t.regs[rs.Register] = rs
		}
		return rows.Err()
	})
	if len(credited) > 0 {
		cred := map[string]bool{}
		for _, id := range credited {
			cred[id] = true
		}
		var exact []string
		for _, id := range mems {
			if !cred[id] {
				exact = append(exact, id)
			}
		}
		mems = exact
		for _, id := range credited {
			_, ok := t.knownRow(knownMembers, id)
			t.credited[id] = ok
		}
	}
	t.queueLockMembers(&b, mems)
	t.prefetchErasures(&b, mems)
	t.prefetchFigures(&b, t.figures[0], t.figures[1])
	if err := t.q.SendBatch(t.ctx, &b).Close(); err != nil {
		return err
	}
	// Events held earlier may be applied in this batch, and what they do
	// to a member is not known here: read and lock every member then.
	for _, rs := range t.regs {
		if rs.Held > 0 && len(t.credited) > 0 {
			mems := sortedKeys(t.credited)
			clear(t.credited)
			var b pgx.Batch
			t.queueLockMembers(&b, mems)
			return t.q.SendBatch(t.ctx, &b).Close()
		}
	}
	return nil
}

// queueLockMembers locks the members' rows in id order and then (a
// statement of its own, so it sees what the lock waited for) reads their
// per-register sums.
func (t *txn) queueLockMembers(b *pgx.Batch, ids []string) {
	if len(ids) == 0 {
		return
	}
	b.Queue(`SELECT id, carried, profile FROM hq_members WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var m hqstore.MemberRow
			var carried int64
			var prof []byte
			if err := rows.Scan(&m.ID, &carried, &prof); err != nil {
				return err
			}
			m.Balance, m.Profile, m.Included = ledger.Points(carried), prof, map[string]uint64{}
			t.mems[m.ID] = m
			t.sure = append(t.sure, m.ID)
		}
		return rows.Err()
	})
	b.Queue(`SELECT member, register, seq, points FROM hq_member_regs WHERE member = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, reg string
			var seq, pts int64
			if err := rows.Scan(&id, &reg, &seq, &pts); err != nil {
				return err
			}
			m, ok := t.mems[id]
			if !ok {
				// Created (credited) by a writer that committed after
				// the lock's snapshot: run again to lock it.
				return fmt.Errorf("member %q: %w", id, errCreatedMeanwhile)
			}
			m.Balance += ledger.Points(pts)
			m.Included[reg] = uint64(seq)
			t.mems[id] = m
		}
		return rows.Err()
	})
}

// flush sends the queued writes.
func (t *txn) flush() error {
	var b pgx.Batch
	if len(t.evReg) > 0 {
		b.Queue(`INSERT INTO hq_events (register, seq, rec)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[]) ON CONFLICT (register, seq) DO NOTHING`, t.evReg, t.evSeq, t.evRec)
	}
	b.QueuedQueries = append(b.QueuedQueries, t.batch.QueuedQueries...)
	if len(t.regID) > 0 {
		b.Queue(`UPDATE hq_registers AS r SET state = u.state, watermark = u.watermark
			FROM unnest($1::text[], $2::json[], $3::bigint[]) AS u(register, state, watermark) WHERE r.register = u.register`, t.regID, t.regState, t.regWM)
	}
	if len(t.newID) > 0 {
		// New: a concurrent writer that created one first makes this fail
		// (unique key) and the transaction runs again.
		b.Queue(`INSERT INTO hq_members (id, carried, profile) SELECT i, 0, p FROM unnest($1::text[], $2::json[]) AS u(i, p)`, t.newID, t.newProf)
	}
	if len(t.creditID) > 0 {
		// New members that only earned: a profile written concurrently
		// by a member event wins.
		b.Queue(`INSERT INTO hq_members (id, carried, profile) SELECT i, 0, p FROM unnest($1::text[], $2::json[]) AS u(i, p)
			ON CONFLICT (id) DO NOTHING`, t.creditID, t.creditProf)
	}
	if len(t.profID) > 0 {
		b.Queue(`UPDATE hq_members AS m SET profile = u.profile
			FROM unnest($1::text[], $2::json[]) AS u(id, profile) WHERE m.id = u.id`, t.profID, t.profV)
	}
	// hq_member_regs: rows are written only under their register's lock,
	// so no insert meets a concurrent one. One upsert adds to the rows
	// that exist and inserts the others, without reading them first.
	if len(t.mrMember) > 0 {
		b.Queue(`INSERT INTO hq_member_regs AS r (member, register, seq, points)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
			ON CONFLICT (member, register) DO UPDATE SET seq = GREATEST(r.seq, EXCLUDED.seq), points = r.points + EXCLUDED.points`,
			t.mrMember, t.mrReg, t.mrSeq, t.mrPts)
	}
	if len(t.dirty) > 0 {
		b.Queue(`INSERT INTO hq_dirty_batches (members) VALUES ($1)`, t.dirty)
	}
	if len(t.shopMember) > 0 {
		b.Queue(`INSERT INTO hq_shops (member, store, at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
			ON CONFLICT (member, store) DO UPDATE SET at = GREATEST(hq_shops.at, EXCLUDED.at)`, t.shopMember, t.shopStore, t.shopAt)
	}
	if t.erasures {
		b.Queue(bumpErasures)
		t.erasures = false
	}
	if t.commit {
		b.Queue(`COMMIT`).Exec(func(ct pgconn.CommandTag) error {
			if ct.String() != "COMMIT" {
				// An earlier failure in this transaction that went unseen.
				return pgx.ErrTxCommitRollback
			}
			return nil
		})
	}
	if b.Len() == 0 {
		return nil
	}
	return t.q.SendBatch(t.ctx, &b).Close()
}

func (t *txn) queue(sql string, args ...any) { t.batch.Queue(sql, args...) }

func scanMember(r pgx.Rows) (hqstore.MemberRow, error) {
	var m hqstore.MemberRow
	var bal int64
	var inc, prof []byte
	if err := r.Scan(&m.ID, &bal, &inc, &prof); err != nil {
		return m, err
	}
	m.Balance, m.Profile = ledger.Points(bal), prof
	if err := json.Unmarshal(inc, &m.Included); err != nil {
		return m, err
	}
	return m, nil
}

// get reads one value through the cache; sql returns one bytea/json/text
// column.
func (t *txn) get(k, sql string, args ...any) ([]byte, error) {
	if c, ok := t.cache[k]; ok {
		return c.v, nil
	}
	var v []byte
	err := t.q.QueryRow(t.ctx, sql, args...).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		t.cache[k] = cached{}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t.cache[k] = cached{v: v, exists: true}
	return v, nil
}

func (t *txn) put(k string, v []byte) (existed bool) {
	c := t.cache[k]
	t.cache[k] = cached{v: v, exists: c.exists || v != nil}
	return c.exists
}

func (t *txn) Register(id string) (hqstore.RegisterState, bool, error) {
	if rs, ok := t.regs[id]; ok {
		return rs, true, nil
	}
	var rs hqstore.RegisterState
	sql := `SELECT state FROM hq_registers WHERE register = $1`
	if t.write {
		sql += ` FOR UPDATE`
	}
	err := t.q.QueryRow(t.ctx, sql, id).Scan(&rs)
	if errors.Is(err, pgx.ErrNoRows) {
		return hqstore.RegisterState{Register: id}, false, nil
	}
	return rs, err == nil, err
}

func (t *txn) PutRegister(rs hqstore.RegisterState) error {
	t.regs[rs.Register] = rs
	v, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	t.regID, t.regState, t.regWM = append(t.regID, rs.Register), append(t.regState, v), append(t.regWM, int64(rs.Watermark))
	return nil
}

func (t *txn) Member(id string) (hqstore.MemberRow, bool, error) {
	if m, ok := t.mems[id]; ok {
		// The applier changes Included in place; PutMember compares.
		m.Included = maps.Clone(m.Included)
		return m, true, nil
	}
	if exists, ok := t.credited[id]; ok {
		// Only credited: the applier adds points to nothing (Added), and
		// PutMember writes no profile of a member that exists; the bare
		// profile it is given (what the applier would start from) spares
		// the applier encoding one.
		row := hqstore.MemberRow{ID: id, Included: map[string]uint64{}}
		if exists {
			row.Profile = bareProfile(id)
		}
		return row, exists, nil
	}
	if t.write {
		var b pgx.Batch
		t.queueLockMembers(&b, []string{id})
		if err := t.q.SendBatch(t.ctx, &b).Close(); err != nil {
			return hqstore.MemberRow{}, false, err
		}
		m, ok := t.mems[id]
		m.Included = maps.Clone(m.Included)
		return m, ok, nil
	}
	var m hqstore.MemberRow
	found := false
	err := eachRow(t.ctx, t.q, memberRead+` WHERE m.id = $1`, []any{id}, func(r pgx.Rows) error {
		var err error
		m, err = scanMember(r)
		found = true
		return err
	})
	if err != nil || !found {
		return hqstore.MemberRow{}, false, err
	}
	return m, true, nil
}

// bareProfile is the profile of a member known by its id alone, as
// ledger.Member JSON.
func bareProfile(id string) json.RawMessage {
	plain := true
	for i := 0; i < len(id) && plain; i++ {
		c := id[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	if plain {
		// What json.Marshal writes for an id it need not escape.
		b := make([]byte, 0, len(id)+9)
		return append(append(append(b, `{"id":"`...), id...), `"}`...)
	}
	q, _ := json.Marshal(id) // a string always encodes
	return append(append([]byte(`{"id":`), q...), '}')
}

func (t *txn) PutMember(m hqstore.MemberRow) error {
	base, read := t.mems[m.ID]
	exists, credited := t.credited[m.ID]
	regs := make([]string, 0, len(m.Included))
	for r := range m.Included {
		regs = append(regs, r)
	}
	for r := range m.Added {
		if _, ok := m.Included[r]; !ok {
			regs = append(regs, r)
		}
	}
	sort.Strings(regs)
	for _, r := range regs {
		seq, add := m.Included[r], m.Added[r]
		if read && seq == base.Included[r] && add == 0 {
			continue
		}
		t.mrMember, t.mrReg = append(t.mrMember, m.ID), append(t.mrReg, r)
		t.mrSeq, t.mrPts = append(t.mrSeq, int64(seq)), append(t.mrPts, int64(add))
	}
	switch {
	case read:
		// An unchanged profile is not written: most updates are point
		// events.
		if !bytes.Equal(m.Profile, base.Profile) {
			t.profID, t.profV = append(t.profID, m.ID), append(t.profV, []byte(m.Profile))
		}
	case credited:
		if !exists {
			t.creditID, t.creditProf = append(t.creditID, m.ID), append(t.creditProf, []byte(m.Profile))
			t.credited[m.ID] = true
			t.sure = append(t.sure, m.ID)
		}
		return nil
	default:
		t.newID, t.newProf = append(t.newID, m.ID), append(t.newProf, []byte(m.Profile))
		t.sure = append(t.sure, m.ID)
	}
	inc := make(map[string]uint64, len(m.Included))
	for r, seq := range m.Included {
		inc[r] = max(seq, base.Included[r])
	}
	t.mems[m.ID] = hqstore.MemberRow{ID: m.ID, Balance: m.Balance, Included: inc, Profile: m.Profile}
	return nil
}

// evKey names an event this transaction put (txn.events).
type evKey struct {
	reg string
	seq uint64
}

func (t *txn) Event(reg string, seq uint64) ([]byte, error) {
	if rec, ok := t.events[evKey{reg, seq}]; ok {
		return rec, nil
	}
	return t.get(key("e", reg, seqs(seq)), `SELECT rec FROM hq_events WHERE register = $1 AND seq = $2`, reg, int64(seq))
}

func (t *txn) PutEvent(reg string, seq uint64, rec []byte) error {
	if t.events == nil {
		t.events = make(map[evKey][]byte, 64)
	}
	t.events[evKey{reg, seq}] = rec
	t.evReg, t.evSeq, t.evRec = append(t.evReg, reg), append(t.evSeq, int64(seq)), append(t.evRec, rec)
	return nil
}

func (t *txn) Held(reg string, seq uint64) ([]byte, error) {
	return t.get(key("h", reg, seqs(seq)), `SELECT rec FROM hq_held WHERE register = $1 AND seq = $2`, reg, int64(seq))
}

func (t *txn) PutHeld(reg string, seq uint64, rec []byte) error {
	t.put(key("h", reg, seqs(seq)), rec)
	if t.heldPut == nil {
		t.heldPut = map[string][]uint64{}
	}
	if ps := t.heldPut[reg]; len(ps) == 0 || ps[len(ps)-1] < seq {
		t.heldPut[reg] = append(ps, seq) // the usual order
	} else if i, found := slices.BinarySearch(ps, seq); !found {
		t.heldPut[reg] = slices.Insert(ps, i, seq)
	}
	t.queue(`INSERT INTO hq_held (register, seq, rec) VALUES ($1, $2, $3) ON CONFLICT (register, seq) DO UPDATE SET rec = EXCLUDED.rec`, reg, int64(seq), rec)
	return nil
}

func (t *txn) DeleteHeld(reg string, seq uint64) error {
	t.cache[key("h", reg, seqs(seq))] = cached{}
	t.queue(`DELETE FROM hq_held WHERE register = $1 AND seq = $2`, reg, int64(seq))
	return nil
}

// heldRange is what the database holds of a register's held events
// numbered after from up to to (math.MaxUint64: all of them): seqs, in
// order (rows written by the transaction are not there: it writes at
// flush).
type heldRange struct {
	from, to uint64
	seqs     []uint64
}

// heldReadAhead is how many held events NextHeld reads in one round trip:
// a drain takes them one after the other.
const heldReadAhead = 256

// NextHeld reads hq_held a range at a time (heldReadAhead rows from the
// number asked for), so a drain costs a round trip per range, not per
// event, and a walk over a second gap one, not one per number; the rows
// this transaction put or deleted (queued until flush) are merged in
// through the cache. hq_held rows are written only under their
// register's row lock, which a writing transaction holds, so a range
// read stays true to its end.
func (t *txn) NextHeld(reg string, after uint64) (uint64, []byte, bool, error) {
	live := func(seq uint64) ([]byte, bool) {
		c, ok := t.cache[key("h", reg, seqs(seq))]
		return c.v, ok && c.v != nil
	}
	// The lowest number this transaction put above after and still holds.
	var put uint64
	var putRec []byte
	ps := t.heldPut[reg]
	for i, _ := slices.BinarySearch(ps, after+1); i < len(ps) && put == 0; i++ {
		if v, ok := live(ps[i]); ok {
			put, putRec = ps[i], v
		}
	}
	for {
		r, ok := t.heldRead[reg]
		if !ok || after < r.from || after >= r.to {
			var err error
			if r, err = t.readHeld(reg, after); err != nil {
				return 0, nil, false, err
			}
		}
		i, _ := slices.BinarySearch(r.seqs, after+1)
		for _, seq := range r.seqs[i:] {
			if put != 0 && put <= seq {
				return put, putRec, true, nil
			}
			if v, ok := live(seq); ok {
				return seq, v, true, nil
			}
		}
		// Nothing the database holds in (after, r.to] is left.
		if put != 0 && put <= r.to {
			return put, putRec, true, nil
		}
		if r.to == math.MaxUint64 {
			return 0, nil, false, nil
		}
		after = r.to
	}
}

// readHeld reads the held events of reg after after, heldReadAhead of
// them, into the cache (where the transaction has no word of its own on
// a number) and t.heldRead.
func (t *txn) readHeld(reg string, after uint64) (heldRange, error) {
	r := heldRange{from: after, to: math.MaxUint64}
	if after >= math.MaxInt64 {
		return r, nil
	}
	err := eachRow(t.ctx, t.q, `SELECT seq, rec FROM hq_held WHERE register = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		[]any{reg, int64(after), heldReadAhead}, func(rows pgx.Rows) error {
			var seq int64
			var rec []byte
			if err := rows.Scan(&seq, &rec); err != nil {
				return err
			}
			r.seqs = append(r.seqs, uint64(seq))
			if k := key("h", reg, seqs(uint64(seq))); !t.cacheHas(k) {
				t.cache[k] = cached{v: rec, exists: true}
			}
			return nil
		})
	if err != nil {
		return heldRange{}, err
	}
	if len(r.seqs) == heldReadAhead {
		r.to = r.seqs[len(r.seqs)-1]
	}
	if t.heldRead == nil {
		t.heldRead = map[string]heldRange{}
	}
	t.heldRead[reg] = r
	return r, nil
}

func (t *txn) cacheHas(k string) bool {
	_, ok := t.cache[k]
	return ok
}

func (t *txn) Sale(id string) ([]byte, error) {
	sql := `SELECT rec FROM hq_sales WHERE id = $1`
	if t.write {
		sql += ` FOR UPDATE`
	}
	return t.get(key("s", id), sql, id)
}

func (t *txn) PutSale(id string, rec []byte) error {
	if t.put(key("s", id), rec) {
		t.queue(`UPDATE hq_sales SET rec = $2 WHERE id = $1`, id, rec)
	} else {
		t.queue(`INSERT INTO hq_sales (id, rec) VALUES ($1, $2)`, id, rec)
	}
	return nil
}

func (t *txn) Purchase(member, reg string, seq uint64) ([]byte, error) {
	return t.get(key("p", member, reg, seqs(seq)), `SELECT rec FROM hq_purchases WHERE member = $1 AND register = $2 AND seq = $3`, member, reg, int64(seq))
}

func (t *txn) PutPurchase(member, reg string, seq uint64, rec []byte) error {
	t.put(key("p", member, reg, seqs(seq)), rec)
	t.queue(`INSERT INTO hq_purchases (member, register, seq, rec) VALUES ($1, $2, $3, $4)
		ON CONFLICT (member, register, seq) DO UPDATE SET rec = EXCLUDED.rec`, member, reg, int64(seq), rec)
	return nil
}

func (t *txn) MemberPurchases(member string) ([][]byte, error) {
	var out [][]byte
	err := eachRow(t.ctx, t.q, `SELECT rec FROM hq_purchases WHERE member = $1 ORDER BY register, seq`, []any{member}, func(r pgx.Rows) error {
		var v []byte
		err := r.Scan(&v)
		out = append(out, v)
		return err
	})
	return out, err
}

func (t *txn) Alias(alias string) (string, error) {
	v, err := t.get(key("a", alias), `SELECT member FROM hq_aliases WHERE alias = $1`, alias)
	return string(v), err
}

func (t *txn) PutAlias(alias, member string) error {
	t.put(key("a", alias), []byte(member))
	t.queue(`INSERT INTO hq_aliases (alias, member) VALUES ($1, $2) ON CONFLICT (alias) DO UPDATE SET member = EXCLUDED.member`, alias, member)
	return nil
}

func (t *txn) AddConflict(c hqstore.Conflict) error {
	t.queue(`INSERT INTO hq_conflicts (rec) VALUES ($1)`, c)
	return nil
}

func (t *txn) AddDoubleSpend(d hqstore.DoubleSpend) error {
	t.queue(`INSERT INTO hq_doublespends (member, rec) VALUES ($1, $2)`, d.MemberID, d)
	return nil
}

func (t *txn) Review(reg, inc string, seq uint64) ([]byte, error) {
	return t.get(key("r", reg, inc, seqs(seq)), `SELECT rec FROM hq_review WHERE register = $1 AND incarnation = $2 AND seq = $3`, reg, inc, int64(seq))
}

func (t *txn) PutReview(reg, inc string, seq uint64, rec []byte) error {
	t.put(key("r", reg, inc, seqs(seq)), rec)
	if t.reviews == nil {
		t.reviews = map[string]map[uint64][]byte{}
	}
	k := reg + "\x00" + inc
	if t.reviews[k] == nil {
		t.reviews[k] = map[uint64][]byte{}
	}
	t.reviews[k][seq] = rec
	t.queue(`INSERT INTO hq_review (register, incarnation, seq, rec) VALUES ($1, $2, $3, $4)
		ON CONFLICT (register, incarnation, seq) DO UPDATE SET rec = EXCLUDED.rec`, reg, inc, int64(seq), rec)
	return nil
}

// reviewsPut returns, in sequence order, the numbers of a stream's
// records this transaction put (PutReview) and their records.
func (t *txn) reviewsPut(reg, inc string) ([]int64, map[uint64][]byte) {
	put := t.reviews[reg+"\x00"+inc]
	ns := make([]int64, 0, len(put))
	for seq := range put {
		ns = append(ns, int64(seq))
	}
	slices.Sort(ns)
	return ns, put
}

// EachReview goes through the database's records of the stream with
// those this transaction put merged in (theirs replace the database's).
func (t *txn) EachReview(reg, inc string, fn func(seq uint64, rec []byte) error) error {
	ns, put := t.reviewsPut(reg, inc)
	err := eachRow(t.ctx, t.q, `SELECT seq, rec FROM hq_review WHERE register = $1 AND incarnation = $2 ORDER BY seq`, []any{reg, inc}, func(r pgx.Rows) error {
		var seq int64
		var rec []byte
		if err := r.Scan(&seq, &rec); err != nil {
			return err
		}
		for ; len(ns) > 0 && ns[0] < seq; ns = ns[1:] {
			if err := fn(uint64(ns[0]), put[uint64(ns[0])]); err != nil {
				return err
			}
		}
		if len(ns) > 0 && ns[0] == seq {
			rec, ns = put[uint64(seq)], ns[1:]
		}
		return fn(uint64(seq), rec)
	})
	if err != nil {
		return err
	}
	for _, seq := range ns {
		if err := fn(uint64(seq), put[uint64(seq)]); err != nil {
			return err
		}
	}
	return nil
}

// CountReview counts the database's records of the stream other than
// those this transaction put, and adds those.
func (t *txn) CountReview(reg, inc string) (uint64, error) {
	ns, _ := t.reviewsPut(reg, inc)
	var n int64
	err := t.q.QueryRow(t.ctx, `SELECT count(*) FROM hq_review WHERE register = $1 AND incarnation = $2 AND seq <> ALL($3)`, reg, inc, ns).Scan(&n)
	return uint64(n) + uint64(len(ns)), err
}
