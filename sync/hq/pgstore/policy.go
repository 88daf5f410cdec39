package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// Head office's policy on PostgreSQL: the shared applier asks it
// (hqstore policy.go); this file stores what it holds and counts.

// SetPolicy makes Apply check every event against p (nil: no checks).
func (s *Store) SetPolicy(p *policy.Policy) { s.policy.Store(p) }

func (s *Store) applyOpts() hqstore.Options {
	o := s.opts.Store
	o.Policy = s.policy.Load()
	return o
}

// ResolvePolicy ends the review of one event the policy held; see
// hqstore.Store.ResolvePolicy.
func (s *Store) ResolvePolicy(register string, seq uint64, approve bool) ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var members []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t := newTxn(ctx, tx, true)
		var mems []string
		if rec, err := t.PolicyHeld(register, seq); err != nil {
			return err
		} else if rec != nil {
			if h, _, err := hqstore.ParsePolicyHeld(register, seq, rec); err == nil {
				_, mems = hqstore.Touches([]hqstore.Event{{Register: register, Store: h.Store, Incarnation: h.Incarnation, OutboxRecord: h.OutboxRecord}})
			}
		}
		if err := t.lock([]string{register}, mems, nil); err != nil {
			return err
		}
		var err error
		if members, err = hqstore.ResolveIn(t, register, seq, approve, s.opts.Store); err != nil {
			return err
		}
		return t.flush()
	})
	if err != nil {
		return nil, fmt.Errorf("review %s seq %d: %w", register, seq, s.wrap(err))
	}
	return members, nil
}

// policyReview lists the events the policy holds and nobody dismissed.
func (s *Store) policyReview(ctx context.Context) ([]hqstore.Held, error) {
	var out []hqstore.Held
	err := eachRow(ctx, s.pool, `SELECT register, seq, rec FROM hq_policy_held ORDER BY register, seq`, nil, func(r pgx.Rows) error {
		var reg string
		var seq int64
		var rec []byte
		if err := r.Scan(&reg, &seq, &rec); err != nil {
			return err
		}
		h, dismissed, err := hqstore.ParsePolicyHeld(reg, uint64(seq), rec)
		if err == nil && !dismissed {
			out = append(out, h)
		}
		return err
	})
	return out, err
}

type heldKey struct {
	reg string
	seq int64
}

// policyHeldPoints are the point events the policy holds: in no balance.
func policyHeldPoints(ctx context.Context, q querier) (map[heldKey]bool, error) {
	out := map[heldKey]bool{}
	err := eachRow(ctx, q, `SELECT register, seq, rec FROM hq_policy_held`, nil, func(r pgx.Rows) error {
		var k heldKey
		var rec []byte
		if err := r.Scan(&k.reg, &k.seq, &rec); err != nil {
			return err
		}
		if hqstore.PointsHeld(rec) {
			out[k] = true
		}
		return nil
	})
	return out, err
}

func (t *txn) PolicyAdjusted(reg, day string) (int64, error) {
	sql := `SELECT total::text FROM hq_policy_adjust WHERE register = $1 AND day = $2`
	if t.write {
		sql += ` FOR UPDATE`
	}
	v, err := t.get(key("pa", reg, day), sql, reg, day)
	if err != nil || v == nil {
		return 0, err
	}
	var n int64
	_, err = fmt.Sscan(string(v), &n)
	return n, err
}

func (t *txn) PutPolicyAdjusted(reg, day string, n int64) error {
	t.put(key("pa", reg, day), fmt.Appendf(nil, "%d", n))
	t.queue(`INSERT INTO hq_policy_adjust (register, day, total) VALUES ($1, $2, $3)
		ON CONFLICT (register, day) DO UPDATE SET total = EXCLUDED.total`, reg, day, n)
	return nil
}

func (t *txn) PolicyHeld(reg string, seq uint64) ([]byte, error) {
	sql := `SELECT rec FROM hq_policy_held WHERE register = $1 AND seq = $2`
	if t.write {
		sql += ` FOR UPDATE`
	}
	return t.get(key("ph", reg, seqs(seq)), sql, reg, int64(seq))
}

func (t *txn) PutPolicyHeld(reg string, seq uint64, rec []byte) error {
	t.put(key("ph", reg, seqs(seq)), rec)
	t.queue(`INSERT INTO hq_policy_held (register, seq, rec) VALUES ($1, $2, $3)
		ON CONFLICT (register, seq) DO UPDATE SET rec = EXCLUDED.rec`, reg, int64(seq), rec)
	return nil
}

func (t *txn) DeletePolicyHeld(reg string, seq uint64) error {
	t.cache[key("ph", reg, seqs(seq))] = cached{}
	t.queue(`DELETE FROM hq_policy_held WHERE register = $1 AND seq = $2`, reg, int64(seq))
	return nil
}
