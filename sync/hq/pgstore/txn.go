package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
}

// txn is hqstore.Txn over one PostgreSQL transaction (write) or the pool
// (read). Writes are queued and sent in one batch by flush; reads see the
// queued writes through cache.
type txn struct {
	ctx   context.Context
	q     querier
	write bool
	regs  map[string]hqstore.RegisterState
	mems  map[string]hqstore.MemberRow // existing members, locked
	cache map[string]cached            // kind\x00key -> value, nil: none
	batch pgx.Batch
	// Rows written with one statement each at flush.
	evReg, regID, memUpd, memNew []string
	evSeq                        []int64
	evRec                        [][]byte
	regState                     [][]byte
	regWM                        []int64
	updBal, newBal               []int64
	updInc, updProf              [][]byte
	newInc, newProf              [][]byte
}

type cached struct {
	v      []byte
	exists bool // the row exists in the database (update, not insert)
}

func newTxn(ctx context.Context, q querier, write bool) *txn {
	return &txn{ctx: ctx, q: q, write: write, regs: map[string]hqstore.RegisterState{},
		mems: map[string]hqstore.MemberRow{}, cache: map[string]cached{}}
}

func key(kind string, parts ...string) string {
	k := kind
	for _, p := range parts {
		k += "\x00" + p
	}
	return k
}

func seqs(n uint64) string { return strconv.FormatUint(n, 10) }

// lock takes the rows of the batch's registers (inserting new ones) and
// existing members, in id order.
func (t *txn) lock(regs, mems []string) error {
	// One round trip: insert new registers, lock the registers, lock the
	// members.
	var b pgx.Batch
	b.Queue(`INSERT INTO hq_registers (register, state)
		SELECT r, json_build_object('register', r) FROM unnest($1::text[]) AS r ORDER BY r
		ON CONFLICT (register) DO NOTHING`, regs)
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
	b.Queue(`SELECT id, balance, included, profile FROM hq_members WHERE id = ANY($1) ORDER BY id FOR UPDATE`, mems).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			m, err := scanMember(rows)
			if err != nil {
				return err
			}
			t.mems[m.ID] = m
		}
		return rows.Err()
	})
	return t.q.(pgx.Tx).SendBatch(t.ctx, &b).Close()
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
	if len(t.memUpd) > 0 {
		b.Queue(`UPDATE hq_members AS m SET balance = u.balance, included = u.included, profile = coalesce(u.profile, m.profile)
			FROM unnest($1::text[], $2::bigint[], $3::json[], $4::json[]) AS u(id, balance, included, profile) WHERE m.id = u.id`,
			t.memUpd, t.updBal, t.updInc, t.updProf)
	}
	if len(t.memNew) > 0 {
		// New: a concurrent writer that created one first makes this fail
		// (unique key) and the transaction runs again.
		b.Queue(`INSERT INTO hq_members (id, balance, included, profile)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::json[], $4::json[])`, t.memNew, t.newBal, t.newInc, t.newProf)
	}
	if b.Len() == 0 {
		return nil
	}
	return t.q.(pgx.Tx).SendBatch(t.ctx, &b).Close()
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
		return m, true, nil
	}
	sql := `SELECT id, balance, included, profile FROM hq_members WHERE id = $1`
	if t.write {
		sql += ` FOR UPDATE`
	}
	var m hqstore.MemberRow
	found := false
	err := eachRow(t.ctx, t.q, sql, []any{id}, func(r pgx.Rows) error {
		var err error
		m, err = scanMember(r)
		found = true
		return err
	})
	if err != nil || !found {
		return hqstore.MemberRow{}, false, err
	}
	if t.write {
		t.mems[id] = m
	}
	return m, true, nil
}

func (t *txn) PutMember(m hqstore.MemberRow) error {
	inc, err := json.Marshal(m.Included)
	if err != nil {
		return err
	}
	if old, ok := t.mems[m.ID]; ok {
		// An unchanged profile is not sent (NULL keeps it): most updates
		// are point events, which move only the balance and sequences.
		prof := []byte(m.Profile)
		if bytes.Equal(prof, old.Profile) {
			prof = nil
		}
		t.memUpd, t.updBal, t.updInc, t.updProf = append(t.memUpd, m.ID), append(t.updBal, int64(m.Balance)), append(t.updInc, inc), append(t.updProf, prof)
	} else {
		t.memNew, t.newBal, t.newInc, t.newProf = append(t.memNew, m.ID), append(t.newBal, int64(m.Balance)), append(t.newInc, inc), append(t.newProf, m.Profile)
	}
	t.mems[m.ID] = m
	return nil
}

func (t *txn) Event(reg string, seq uint64) ([]byte, error) {
	return t.get(key("e", reg, seqs(seq)), `SELECT rec FROM hq_events WHERE register = $1 AND seq = $2`, reg, int64(seq))
}

func (t *txn) PutEvent(reg string, seq uint64, rec []byte) error {
	t.put(key("e", reg, seqs(seq)), rec)
	t.evReg, t.evSeq, t.evRec = append(t.evReg, reg), append(t.evSeq, int64(seq)), append(t.evRec, rec)
	return nil
}

func (t *txn) Held(reg string, seq uint64) ([]byte, error) {
	return t.get(key("h", reg, seqs(seq)), `SELECT rec FROM hq_held WHERE register = $1 AND seq = $2`, reg, int64(seq))
}

func (t *txn) PutHeld(reg string, seq uint64, rec []byte) error {
	t.put(key("h", reg, seqs(seq)), rec)
	t.queue(`INSERT INTO hq_held (register, seq, rec) VALUES ($1, $2, $3) ON CONFLICT (register, seq) DO UPDATE SET rec = EXCLUDED.rec`, reg, int64(seq), rec)
	return nil
}

func (t *txn) DeleteHeld(reg string, seq uint64) error {
	t.cache[key("h", reg, seqs(seq))] = cached{}
	t.queue(`DELETE FROM hq_held WHERE register = $1 AND seq = $2`, reg, int64(seq))
	return nil
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
	t.queue(`INSERT INTO hq_review (register, incarnation, seq, rec) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, reg, inc, int64(seq), rec)
	return nil
}

func (t *txn) CountReview(reg, inc string) (uint64, error) {
	var n int64
	err := t.q.QueryRow(t.ctx, `SELECT count(*) FROM hq_review WHERE register = $1 AND incarnation = $2`, reg, inc).Scan(&n)
	return uint64(n), err
}
