package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// Member erasure (hqstore erase.go) on PostgreSQL.

var _ hqstore.Erasures = (*Store)(nil)

func (t *txn) Erasure(member string) ([]byte, error) {
	return t.get(key("x", member), `SELECT rec FROM hq_erasures WHERE member = $1`, member)
}

// prefetchErasures reads, in the lock's round trip and after the
// members' row locks, the erasures of the members a batch locks (those
// its profile events, erasure confirmations and redemptions touch), so
// that applying a profile event or a confirmation (hqstore erase.go reads
// the member's erasure for each) costs no round trip of its own.
func (t *txn) prefetchErasures(b *pgx.Batch, ids []string) {
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		t.cache[key("x", id)] = cached{}
	}
	b.Queue(`SELECT member, rec FROM hq_erasures WHERE member = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var m string
			var rec []byte
			if err := rows.Scan(&m, &rec); err != nil {
				return err
			}
			t.cache[key("x", m)] = cached{v: rec, exists: true}
		}
		return rows.Err()
	})
}

func (t *txn) PutErasure(member string, rec []byte) error {
	t.put(key("x", member), rec)
	e, err := hqstore.ParseErasure(rec)
	if err != nil {
		return err
	}
	t.queue(`INSERT INTO hq_erasures (member, n, rec) VALUES ($1, $2, $3)
		ON CONFLICT (member) DO UPDATE SET rec = EXCLUDED.rec`, member, int64(e.N), rec)
	t.erasures = true
	return nil
}

// bumpErasures is the statement flush queues last when the transaction
// wrote an erasure record (hqstore.Erasures.ErasuresVersion): the row is
// shared by every worker, so it is locked last, after every other row the
// transaction writes (a transaction holding it waits for nothing more).
const bumpErasures = `INSERT INTO hq_meta (key, value) VALUES ('erasures_version', 1)
	ON CONFLICT (key) DO UPDATE SET value = hq_meta.value + 1`

// ErasuresVersion says when the erasure records changed
// (hqstore.Erasures.ErasuresVersion).
func (s *Store) ErasuresVersion() (uint64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM hq_meta WHERE key = 'erasures_version'), 0)`).Scan(&v)
	return uint64(v), s.wrap(err)
}

func (t *txn) DeleteAlias(alias string) error {
	t.cache[key("a", alias)] = cached{}
	t.queue(`DELETE FROM hq_aliases WHERE alias = $1`, alias)
	return nil
}

// RewriteProfiles reads every record that may hold a profile event (a
// scan of the events: an erasure is rare) and queues the replacements.
func (t *txn) RewriteProfiles(fn func(rec []byte) ([]byte, error)) (int, error) {
	n := 0
	pat := `"type":"` + string(ledger.OutMember) + `"`
	pat2 := `"type":"` + string(ledger.OutConsent) + `"`
	for _, tbl := range []struct{ sel, upd string }{
		{`SELECT register, '', seq, rec FROM hq_events WHERE position($1::bytea IN rec) > 0 OR position($2::bytea IN rec) > 0`,
			`UPDATE hq_events SET rec = $4 WHERE register = $1 AND seq = $3 AND $2::text = ''`},
		{`SELECT register, '', seq, rec FROM hq_held WHERE position($1::bytea IN rec) > 0 OR position($2::bytea IN rec) > 0`,
			`UPDATE hq_held SET rec = $4 WHERE register = $1 AND seq = $3 AND $2::text = ''`},
		{`SELECT register, incarnation, seq, rec::text::bytea FROM hq_review WHERE strpos(rec::text, convert_from($1, 'UTF8')) > 0 OR strpos(rec::text, convert_from($2, 'UTF8')) > 0`,
			`UPDATE hq_review SET rec = convert_from($4, 'UTF8')::json WHERE register = $1 AND incarnation = $2 AND seq = $3`},
		{`SELECT register, '', seq, rec::text::bytea FROM hq_policy_held WHERE strpos(rec::text, convert_from($1, 'UTF8')) > 0 OR strpos(rec::text, convert_from($2, 'UTF8')) > 0`,
			`UPDATE hq_policy_held SET rec = convert_from($4, 'UTF8')::json WHERE register = $1 AND seq = $3 AND $2::text = ''`},
	} {
		type row struct {
			reg, inc string
			seq      int64
			rec      []byte
		}
		var upd []row
		err := eachRow(t.ctx, t.q, tbl.sel, []any{[]byte(pat), []byte(pat2)}, func(r pgx.Rows) error {
			var x row
			if err := r.Scan(&x.reg, &x.inc, &x.seq, &x.rec); err != nil {
				return err
			}
			nv, err := fn(x.rec)
			if nv != nil {
				x.rec = nv
				upd = append(upd, x)
			}
			return err
		})
		if err != nil {
			return n, err
		}
		for _, x := range upd {
			if _, err := t.q.Exec(t.ctx, tbl.upd, x.reg, x.inc, x.seq, x.rec); err != nil {
				return n, err
			}
		}
		n += len(upd)
	}
	return n, nil
}

// EraseMember erases a member; see hqstore.Erasures.
func (s *Store) EraseMember(id, by string) (hqstore.Erasure, error) {
	stores, regs, err := hqstore.EraseTargets(s, id)
	if err != nil {
		return hqstore.Erasure{}, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var e hqstore.Erasure
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		t := newTxn(ctx, tx, true)
		if err := t.lock(nil, []string{id}, nil); err != nil {
			return err
		}
		if v, err := t.Erasure(id); err != nil {
			return err
		} else if v != nil {
			e, err = hqstore.ParseErasure(v)
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `INSERT INTO hq_meta (key, value) VALUES ('erasure', 1)
			ON CONFLICT (key) DO UPDATE SET value = hq_meta.value + 1 RETURNING value`).Scan(&n); err != nil {
			return err
		}
		var err error
		if e, err = hqstore.EraseIn(t, id, by, uint64(n), s.now(), stores, regs); err != nil {
			return err
		}
		return t.flush()
	})
	return e, s.wrap(err)
}

// Erasures lists every erasure in the order made.
func (s *Store) Erasures() ([]hqstore.Erasure, error) {
	return jsonRows[hqstore.Erasure](s, `SELECT rec FROM hq_erasures ORDER BY n`)
}

// ErasureOf returns a member's erasure (hqstore.ErrNotErased when none).
func (s *Store) ErasureOf(id string) (hqstore.Erasure, error) {
	var e hqstore.Erasure
	err := s.read(func(ctx context.Context, _ *txn) error {
		return s.pool.QueryRow(ctx, `SELECT rec FROM hq_erasures WHERE member = $1`, id).Scan(&e)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("%s: %w", id, hqstore.ErrNotErased)
	}
	return e, err
}
