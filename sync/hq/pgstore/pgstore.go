package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// ErrUnavailable reports that the database could not be reached or
// refused the connection; the message names the address, never the
// password.
var ErrUnavailable = errors.New("pgstore: database unavailable")

// Options configures Open.
type Options struct {
	// Store holds the settings both backends share (MaxHeld,
	// OfflineRedeemLimit, Clock); LockTimeout and ReadOnly do not apply.
	Store hqstore.Options
	// MaxConns bounds the connection pool; default 8.
	MaxConns int32
	// Retries bounds the re-runs of a transaction after a deadlock, a
	// serialisation failure or a unique key taken concurrently; default 20.
	Retries int
	// Timeout bounds each store call (connect, apply, read); default 30s.
	Timeout time.Duration
	// Notify announces every commit's changes (hqstore.Change) on the
	// channel ChangesChannel, sent when the transaction commits, for the
	// workers' Coordinator.
	Notify bool
}

// ChangesChannel is the LISTEN/NOTIFY channel of Options.Notify.
const ChangesChannel = "hq_changes"

// Store is head office's store on PostgreSQL. Safe for concurrent use,
// also by several processes on one database.
type Store struct {
	pool *pgxpool.Pool
	opts Options
	addr string
	pw   string
	// policy, when set, checks every event as it is applied (policy.go).
	policy *atomic.Pointer[policy.Policy]
	// Rows this process saw committed, so ingest need not read them
	// again (known.go): registers and members that exist, and the latest
	// mark of each member at each store.
	knownRegs, knownMembers, knownShops *known
}

// knownMax bounds each of the store's memories of rows (about 70 bytes an
// entry).
const knownMax = 1 << 18

var _ hqstore.Backend = (*Store)(nil)

// Open connects to the database named by dsn (a PostgreSQL URL or
// key=value string), applies missing migrations and returns the store.
func Open(dsn string, opts *Options) (*Store, error) { return open(dsn, opts, len(migrations)) }

// open is Open with the schema taken to version schema.
func open(dsn string, opts *Options, schema int) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 8
	}
	if o.Retries <= 0 {
		o.Retries = 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Store.MaxHeld <= 0 {
		o.Store.MaxHeld = 10000
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: the connection string does not parse: %s", ErrUnavailable, scrubURL(err.Error()))
	}
	s := &Store{opts: o, pw: cfg.ConnConfig.Password, policy: new(atomic.Pointer[policy.Policy]),
		addr:      net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))),
		knownRegs: newKnown(knownMax), knownMembers: newKnown(knownMax), knownShops: newKnown(knownMax)}
	cfg.MaxConns = o.MaxConns
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > o.Timeout {
		cfg.ConnConfig.ConnectTimeout = o.Timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, s.wrap(err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, s.wrap(err))
	}
	if err := s.migrate(ctx, schema); err != nil {
		s.pool.Close()
		return nil, s.wrap(err)
	}
	return s, nil
}

// Addr is the database server's address.
func (s *Store) Addr() string { return s.addr }

// Pool is the connection pool (for leader election and tests).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

var urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)

func scrubURL(msg string) string { return urlPassword.ReplaceAllString(msg, "${1}xxxxx@") }

// wrap names the database and removes the password from err's text.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := scrubURL(msg)
	if s.pw != "" {
		clean = strings.ReplaceAll(clean, s.pw, "xxxxx")
	}
	if !strings.Contains(clean, s.addr) {
		clean = "postgres " + s.addr + ": " + clean
	}
	if clean == msg {
		return fmt.Errorf("postgres %s: %w", s.addr, err)
	}
	return &scrubbed{msg: clean, err: err}
}

// scrubbed keeps errors.Is working on an error whose text was cleaned.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.Timeout)
}

// migrate takes the schema to version to (len(migrations) but in tests).
func (s *Store) migrate(ctx context.Context, to int) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS hq_meta (key text PRIMARY KEY, value bigint NOT NULL)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE hq_meta IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var v int64
		err := tx.QueryRow(ctx, `SELECT value FROM hq_meta WHERE key = 'schema'`).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			v = 0
		} else if err != nil {
			return err
		}
		if v > int64(len(migrations)) {
			return fmt.Errorf("database schema %d, this program knows %d (upgrade loyalty-hq): %w", v, len(migrations), hqstore.ErrSchemaTooNew)
		}
		for i := int(v); i < to; i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			if fn := afterMigration[i]; fn != nil {
				if err := fn(ctx, tx); err != nil {
					return fmt.Errorf("migration %d: %w", i+1, err)
				}
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO hq_meta (key, value) VALUES ('schema', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, max(to, int(v)))
		return err
	})
}

// retryable reports a failure that running the transaction again can
// cure: a deadlock, a serialisation failure, a unique key a concurrent
// transaction took first, a member created after the lock's snapshot.
func retryable(err error) bool {
	if errors.Is(err, errCreatedMeanwhile) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01", "23505":
			return true
		}
	}
	return false
}

// inTx runs fn in a transaction, again after a retryable failure.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for try := 0; try <= s.opts.Retries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(try) * time.Millisecond):
			}
		}
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

// inPipelinedTx runs fn in a transaction that its first round trip
// (txn.lock) begins and its last (txn.flush) commits, so a message costs
// two round trips; again after a retryable failure. What the transaction
// showed to exist is remembered once it committed.
func (s *Store) inPipelinedTx(ctx context.Context, fn func(t *txn) error) error {
	var err error
	for try := 0; try <= s.opts.Retries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(try) * time.Millisecond):
			}
		}
		err = s.pipelinedOnce(ctx, fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) pipelinedOnce(ctx context.Context, fn func(t *txn) error) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection left in a transaction or busy is closed on release,
	// never reused.
	defer c.Release()
	t := newTxn(ctx, c, true)
	t.st, t.begin, t.commit = s, true, true
	err = fn(t)
	if st := c.Conn().PgConn().TxStatus(); err == nil && st != 'I' {
		err = fmt.Errorf("pgstore: transaction left open (status %c)", st)
	}
	if err != nil {
		if c.Conn().PgConn().TxStatus() != 'I' && !c.Conn().IsClosed() {
			_, _ = c.Exec(ctx, `ROLLBACK`)
		}
		return err
	}
	t.remember()
	return nil
}

// Apply applies a batch of events in one transaction; see the package
// documentation.
func (s *Store) Apply(events []hqstore.Event) (hqstore.Result, error) {
	// Decoded once: for the locks here and for ApplyIn (head office's
	// decoder prepares them; other callers may not have).
	events = hqstore.PrepareMissing(events)
	regs, mems, credited := hqstore.TouchesCredited(events)
	ctx, cancel := s.ctx()
	defer cancel()
	var res hqstore.Result
	err := s.inPipelinedTx(ctx, func(t *txn) error {
		fm, fs := hqstore.SaleTouches(events)
		t.figures = [2][]string{fm, fs}
		if err := t.lock(regs, mems, credited); err != nil {
			return err
		}
		r, err := hqstore.ApplyIn(t, events, s.applyOpts())
		if err != nil {
			return err
		}
		if s.opts.Notify {
			if err := queueNotify(&t.batch, r); err != nil {
				return err
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
		res = r
		return nil
	})
	if err != nil {
		return hqstore.Result{}, fmt.Errorf("apply: %w", s.wrap(err))
	}
	return res, nil
}

// read runs fn on a read-only view of the pool.
func (s *Store) read(fn func(ctx context.Context, t *txn) error) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.wrap(fn(ctx, newTxn(ctx, s.pool, false)))
}

// Watermark returns the register's applied watermark (0 if never seen).
func (s *Store) Watermark(register string) (uint64, error) {
	var w int64
	err := s.read(func(ctx context.Context, _ *txn) error {
		err := s.pool.QueryRow(ctx, `SELECT watermark FROM hq_registers WHERE register = $1`, register).Scan(&w)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return uint64(w), err
}

// RegisterState returns one register's state as committed now (the zero
// state with its id when no worker has heard of it).
func (s *Store) RegisterState(register string) (hqstore.RegisterState, error) {
	var rs hqstore.RegisterState
	err := s.read(func(ctx context.Context, t *txn) error {
		var err error
		rs, _, err = t.Register(register)
		return err
	})
	return rs, err
}

// Registers returns every register's state, sorted by id.
func (s *Store) Registers() ([]hqstore.RegisterState, error) {
	var out []hqstore.RegisterState
	err := s.read(func(ctx context.Context, _ *txn) error {
		return eachRow(ctx, s.pool, `SELECT state FROM hq_registers ORDER BY register`, nil, func(r pgx.Rows) error {
			var rs hqstore.RegisterState
			if err := r.Scan(&rs); err != nil {
				return err
			}
			out = append(out, rs)
			return nil
		})
	})
	return out, err
}

func eachRow(ctx context.Context, q querier, sql string, args []any, fn func(pgx.Rows) error) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *Store) now() time.Time {
	if s.opts.Store.Clock == nil {
		return time.Now()
	}
	t, _ := s.opts.Store.Clock.Now()
	return t
}

func (s *Store) summaryOf(id string, figures bool) (hqstore.MemberSummary, error) {
	var out hqstore.MemberSummary
	now := s.now()
	err := s.read(func(ctx context.Context, t *txn) error {
		row, ok, err := t.Member(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("member %q: %w", id, hqstore.ErrUnknownMember)
		}
		out, err = hqstore.SummaryIn(t, row, figures, now)
		return err
	})
	return out, err
}

// Member returns a member's merged profile.
func (s *Store) Member(id string) (ledger.Member, error) {
	sum, err := s.summaryOf(id, false)
	return sum.Member, err
}

// Summary returns a member's chain-wide summary with the figures as of
// the store's clock.
func (s *Store) Summary(id string) (hqstore.MemberSummary, error) { return s.summaryOf(id, true) }

// Balance returns a member's chain-wide balance.
func (s *Store) Balance(id string) (ledger.Points, error) {
	sum, err := s.summaryOf(id, false)
	return sum.Balance, err
}

// Summaries returns the summaries of the given members in the order
// given; ids never seen are skipped.
func (s *Store) Summaries(ids []string) ([]hqstore.MemberSummary, error) {
	out := make([]hqstore.MemberSummary, 0, len(ids))
	now := s.now()
	err := s.read(func(ctx context.Context, t *txn) error {
		rows := map[string]hqstore.MemberRow{}
		if err := eachRow(ctx, s.pool, memberRead+` WHERE m.id = ANY($1)`, []any{ids}, func(r pgx.Rows) error {
			m, err := scanMember(r)
			rows[m.ID] = m
			return err
		}); err != nil {
			return err
		}
		for _, id := range ids {
			row, ok := rows[id]
			if !ok {
				continue
			}
			sum, err := hqstore.SummaryIn(t, row, true, now)
			if err != nil {
				return err
			}
			out = append(out, sum)
		}
		return nil
	})
	return out, err
}

// LookupAlias finds a member by any alias.
func (s *Store) LookupAlias(alias string) (ledger.Member, error) {
	var id string
	if err := s.read(func(ctx context.Context, t *txn) error {
		var err error
		id, err = t.Alias(alias)
		return err
	}); err != nil {
		return ledger.Member{}, err
	}
	if id == "" {
		return ledger.Member{}, fmt.Errorf("alias %q: %w", alias, hqstore.ErrUnknownMember)
	}
	return s.Member(id)
}

// EachMember calls fn for every member in id order.
func (s *Store) EachMember(fn func(m ledger.Member) error) error {
	return s.eachSummary(false, func(sum hqstore.MemberSummary) error { return fn(sum.Member) })
}

// EachSummary calls fn for every member's summary in id order.
func (s *Store) EachSummary(fn func(hqstore.MemberSummary) error) error {
	return s.eachSummary(true, fn)
}

// eachSummary walks members in pages (one query each), so fn may take
// its time without holding a query open.
func (s *Store) eachSummary(figures bool, fn func(hqstore.MemberSummary) error) error {
	now := s.now()
	after := ""
	for {
		var page []hqstore.MemberSummary
		err := s.read(func(ctx context.Context, t *txn) error {
			var rows []hqstore.MemberRow
			if err := eachRow(ctx, s.pool, memberRead+` WHERE m.id > $1 ORDER BY m.id LIMIT 1000`, []any{after}, func(r pgx.Rows) error {
				m, err := scanMember(r)
				rows = append(rows, m)
				return err
			}); err != nil {
				return err
			}
			for _, row := range rows {
				sum, err := hqstore.SummaryIn(t, row, figures, now)
				if err != nil {
					return err
				}
				page = append(page, sum)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, sum := range page {
			if err := fn(sum); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
		after = page[len(page)-1].Member.ID
	}
}

// EachPurchase calls fn for every purchase, by member, register and
// sequence.
func (s *Store) EachPurchase(fn func(memberID string, p ledger.Purchase) error) error {
	type key struct {
		member, register string
		seq              int64
	}
	var after key
	for {
		type row struct {
			k key
			p ledger.Purchase
		}
		var page []row
		err := s.read(func(ctx context.Context, _ *txn) error {
			return eachRow(ctx, s.pool, `SELECT member, register, seq, rec FROM hq_purchases
				WHERE (member, register, seq) > ($1, $2, $3) ORDER BY member, register, seq LIMIT 5000`,
				[]any{after.member, after.register, after.seq}, func(r pgx.Rows) error {
					var x row
					var rec []byte
					if err := r.Scan(&x.k.member, &x.k.register, &x.k.seq, &rec); err != nil {
						return err
					}
					if err := json.Unmarshal(rec, &x.p); err != nil {
						return fmt.Errorf("purchase %s/%s/%d: %w", x.k.member, x.k.register, x.k.seq, err)
					}
					page = append(page, x)
					return nil
				})
		})
		if err != nil {
			return err
		}
		for _, x := range page {
			if err := fn(x.k.member, x.p); err != nil {
				return err
			}
		}
		if len(page) < 5000 {
			return nil
		}
		after = page[len(page)-1].k
	}
}

// Purchases returns one member's purchases (register, then sequence).
func (s *Store) Purchases(memberID string) ([]ledger.Purchase, error) {
	var out []ledger.Purchase
	err := s.read(func(ctx context.Context, t *txn) error {
		recs, err := t.MemberPurchases(memberID)
		for _, rec := range recs {
			var p ledger.Purchase
			if err := json.Unmarshal(rec, &p); err != nil {
				return fmt.Errorf("purchase of %s: %w", memberID, err)
			}
			out = append(out, p)
		}
		return err
	})
	return out, err
}

func jsonRows[T any](s *Store, sql string) ([]T, error) {
	var out []T
	err := s.read(func(ctx context.Context, _ *txn) error {
		return eachRow(ctx, s.pool, sql, nil, func(r pgx.Rows) error {
			var v T
			if err := r.Scan(&v); err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// Conflicts returns every recorded conflict in the order found.
func (s *Store) Conflicts() ([]hqstore.Conflict, error) {
	return jsonRows[hqstore.Conflict](s, `SELECT rec FROM hq_conflicts ORDER BY n`)
}

// DoubleSpends returns the double-spend report in the order applied.
func (s *Store) DoubleSpends() ([]hqstore.DoubleSpend, error) {
	return jsonRows[hqstore.DoubleSpend](s, `SELECT rec FROM hq_doublespends ORDER BY n`)
}

// Configs returns the latest recorded document of every kind.
func (s *Store) Configs() ([]hqstore.ConfigDoc, error) {
	var out []hqstore.ConfigDoc
	err := s.read(func(ctx context.Context, _ *txn) error {
		return eachRow(ctx, s.pool, `SELECT kind, version, doc FROM hq_configs ORDER BY kind`, nil, func(r pgx.Rows) error {
			var d hqstore.ConfigDoc
			var v int64
			var doc []byte
			if err := r.Scan(&d.Kind, &v, &doc); err != nil {
				return err
			}
			d.Version, d.Doc = uint64(v), doc
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// RecordConfig records doc as the version in force of a kind.
func (s *Store) RecordConfig(kind string, version uint64, doc json.RawMessage) error {
	if kind == "" || version == 0 || version > 1<<63-1 || !json.Valid(doc) {
		return fmt.Errorf("config %q version %d: need a kind, a positive version and JSON: %w", kind, version, hqstore.ErrInvalid)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	return s.wrap(s.inTx(ctx, func(tx pgx.Tx) error {
		var prev int64
		err := tx.QueryRow(ctx, `SELECT version FROM hq_configs WHERE kind = $1 FOR UPDATE`, kind).Scan(&prev)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			_, err = tx.Exec(ctx, `INSERT INTO hq_configs (kind, version, doc) VALUES ($1, $2, $3)`, kind, int64(version), []byte(doc))
			return err
		case err != nil:
			return err
		case version <= uint64(prev):
			return fmt.Errorf("config %q version %d, published %d: %w", kind, version, prev, hqstore.ErrStaleConfig)
		}
		_, err = tx.Exec(ctx, `UPDATE hq_configs SET version = $2, doc = $3 WHERE kind = $1`, kind, int64(version), []byte(doc))
		return err
	}))
}

// ForgetConfig drops the recorded document of a kind (hqstore.Backend).
func (s *Store) ForgetConfig(kind string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.wrap(s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM hq_configs WHERE kind = $1`, kind)
		return err
	}))
}

// NextEpoch durably increments and returns a counter.
func (s *Store) NextEpoch() (uint64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, `INSERT INTO hq_meta (key, value) VALUES ('epoch', 1)
		ON CONFLICT (key) DO UPDATE SET value = hq_meta.value + 1 RETURNING value`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("next epoch: %w", s.wrap(err))
	}
	return uint64(n), nil
}

// Review lists the events held for review, by register, incarnation and
// sequence number, the policy's holds merged in (hqstore.SortHeld).
func (s *Store) Review() ([]hqstore.Held, error) {
	var out []hqstore.Held
	err := s.read(func(ctx context.Context, _ *txn) error {
		ph, err := s.policyReview(ctx)
		if err != nil {
			return err
		}
		out = append(out, ph...)
		return eachRow(ctx, s.pool, `SELECT register, incarnation, seq, rec FROM hq_review`, nil, func(r pgx.Rows) error {
			var reg, inc string
			var seq int64
			var rec []byte
			if err := r.Scan(&reg, &inc, &seq, &rec); err != nil {
				return err
			}
			h, dismissed, err := hqstore.ParseReview(reg, inc, uint64(seq), rec)
			if err == nil && !dismissed {
				out = append(out, h)
			}
			return err
		})
	})
	hqstore.SortHeld(out)
	return out, err
}

// AdoptIncarnation confirms that incarnation inc replaces the one head
// office follows for register; see hqstore.Store.AdoptIncarnation.
func (s *Store) AdoptIncarnation(register, inc string) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		var rs hqstore.RegisterState
		err := tx.QueryRow(ctx, `SELECT state FROM hq_registers WHERE register = $1 FOR UPDATE`, register).Scan(&rs)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rs.Register = register
		var del []int64
		if err := eachRow(ctx, tx, `SELECT seq, rec FROM hq_review WHERE register = $1 AND incarnation = $2 ORDER BY seq`, []any{register, inc}, func(r pgx.Rows) error {
			var seq int64
			var rec []byte
			if err := r.Scan(&seq, &rec); err != nil {
				return err
			}
			h, _, err := hqstore.ParseReview(register, inc, uint64(seq), rec)
			if err == nil && h.Reason == hqstore.ReviewIncarnation {
				del = append(del, seq)
			}
			return err
		}); err != nil {
			return err
		}
		var first uint64
		if len(del) > 0 {
			first = uint64(del[0])
		}
		if err := hqstore.AdoptCheck(rs, inc, first); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM hq_review WHERE register = $1 AND incarnation = $2 AND seq = ANY($3)`, register, inc, del); err != nil {
			return err
		}
		n = len(del)
		rs.Review -= min(rs.Review, uint64(n))
		rs.Follow(inc)
		_, err = tx.Exec(ctx, `UPDATE hq_registers SET state = $2 WHERE register = $1`, register, rs)
		return err
	})
	return n, s.wrap(err)
}

// MoveRegister confirms that register now belongs to store to; see
// hqstore.Store.MoveRegister.
func (s *Store) MoveRegister(register, to string, force bool) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		var rs hqstore.RegisterState
		err := tx.QueryRow(ctx, `SELECT state FROM hq_registers WHERE register = $1 FOR UPDATE`, register).Scan(&rs)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if rs.Store == "" {
			return fmt.Errorf("move %s: head office has never heard from this register: %w", register, hqstore.ErrInvalid)
		}
		if rs.Store == to {
			return fmt.Errorf("move %s: already in store %s: %w", register, to, hqstore.ErrInvalid)
		}
		from := rs.Store
		rs.Store = to
		var del []int64
		if err := eachRow(ctx, tx, `SELECT seq, rec FROM hq_review WHERE register = $1 AND incarnation = $2`, []any{register, rs.Incarnation}, func(r pgx.Rows) error {
			var seq int64
			var rec []byte
			if err := r.Scan(&seq, &rec); err != nil {
				return err
			}
			h, _, err := hqstore.ParseReview(register, rs.Incarnation, uint64(seq), rec)
			if err == nil && h.Reason == hqstore.ReviewStore && h.Store == to {
				del = append(del, seq)
			}
			return err
		}); err != nil {
			return err
		}
		if len(del) == 0 && !force {
			return hqstore.NothingHeldFrom(register, from, to)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM hq_review WHERE register = $1 AND incarnation = $2 AND seq = ANY($3)`, register, rs.Incarnation, del); err != nil {
			return err
		}
		n = len(del)
		rs.Review -= min(rs.Review, uint64(n))
		_, err = tx.Exec(ctx, `UPDATE hq_registers SET state = $2 WHERE register = $1`, register, rs)
		return err
	})
	return n, s.wrap(err)
}

// AcknowledgeGap records that register's events from..to are lost for
// good; see hqstore.Store.AcknowledgeGap.
func (s *Store) AcknowledgeGap(register string, from, to uint64, note string) (hqstore.Gap, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var g hqstore.Gap
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t := newTxn(ctx, tx, true)
		if err := t.lock([]string{register}, nil, nil); err != nil {
			return err
		}
		var err error
		if g, err = hqstore.AcknowledgeGapIn(t, register, from, to, s.opts.Store); err != nil {
			return err
		}
		g.At, g.Note = s.now(), note
		t.queue(`INSERT INTO hq_gaps (register, from_seq, to_seq, rec) VALUES ($1, $2, $3, $4)`, register, int64(from), int64(to), g)
		return t.flush()
	})
	return g, s.wrap(err)
}

// Gaps lists the acknowledged gaps by register and sequence.
func (s *Store) Gaps() ([]hqstore.Gap, error) {
	return jsonRows[hqstore.Gap](s, `SELECT rec FROM hq_gaps ORDER BY register, from_seq`)
}

// Check verifies the store's invariants: every register's events are
// contiguous up to its watermark (but for acknowledged gaps), held events lie beyond it and are
// counted, the review bookkeeping matches the records held for review
// (hqstore.ReviewCounter), and every member's balance equals the sum of
// the member's applied point events.
func (s *Store) Check() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.opts.Timeout)
	defer cancel()
	// One snapshot for the whole check, so workers may keep writing.
	return s.wrap(pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		type stats struct {
			n, min, max   int64
			held, heldMin int64
		}
		regs := map[string]hqstore.RegisterState{}
		if err := eachRow(ctx, tx, `SELECT state FROM hq_registers`, nil, func(r pgx.Rows) error {
			var rs hqstore.RegisterState
			err := r.Scan(&rs)
			regs[rs.Register] = rs
			return err
		}); err != nil {
			return err
		}
		st := map[string]*stats{}
		get := func(reg string) *stats {
			if st[reg] == nil {
				st[reg] = &stats{}
			}
			return st[reg]
		}
		if err := eachRow(ctx, tx, `SELECT register, count(*), min(seq), max(seq) FROM hq_events GROUP BY register`, nil, func(r pgx.Rows) error {
			var reg string
			var x stats
			err := r.Scan(&reg, &x.n, &x.min, &x.max)
			g := get(reg)
			g.n, g.min, g.max = x.n, x.min, x.max
			return err
		}); err != nil {
			return err
		}
		if err := eachRow(ctx, tx, `SELECT register, count(*), min(seq) FROM hq_held GROUP BY register`, nil, func(r pgx.Rows) error {
			var reg string
			var n, mn int64
			err := r.Scan(&reg, &n, &mn)
			g := get(reg)
			g.held, g.heldMin = n, mn
			return err
		}); err != nil {
			return err
		}
		// Acknowledged gaps: numbers no event may have, counted with the
		// events towards the watermark.
		gaps := map[string]int64{}
		if err := eachRow(ctx, tx, `SELECT register, sum(to_seq - from_seq + 1) FROM hq_gaps GROUP BY register`, nil, func(r pgx.Rows) error {
			var reg string
			var n int64
			err := r.Scan(&reg, &n)
			gaps[reg] = n
			return err
		}); err != nil {
			return err
		}
		var inGap int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM hq_events e JOIN hq_gaps g ON e.register = g.register AND e.seq BETWEEN g.from_seq AND g.to_seq`).Scan(&inGap); err != nil {
			return err
		}
		if inGap != 0 {
			return fmt.Errorf("check: %d events inside acknowledged gaps", inGap)
		}
		for reg, x := range st {
			rs, ok := regs[reg]
			if !ok {
				return fmt.Errorf("check: register %s has events but no state", reg)
			}
			if g := gaps[reg]; x.n > 0 && g == 0 && (x.min != 1 || x.max != x.n) {
				return fmt.Errorf("check: register %s: %d events numbered %d..%d, not contiguous from 1", reg, x.n, x.min, x.max)
			} else if x.n > 0 && g > 0 && (x.min < 1 || uint64(x.max) > rs.Watermark) {
				return fmt.Errorf("check: register %s: events numbered %d..%d, watermark %d", reg, x.min, x.max, rs.Watermark)
			}
			if uint64(x.n+gaps[reg]) != rs.Watermark {
				return fmt.Errorf("check: register %s: %d events and %d acknowledged missing, watermark %d", reg, x.n, gaps[reg], rs.Watermark)
			}
			if x.held > 0 && uint64(x.heldMin) <= rs.Watermark {
				return fmt.Errorf("check: register %s: held seq %d at or below watermark %d", reg, x.heldMin, rs.Watermark)
			}
		}
		for reg, rs := range regs {
			var n int64
			if x := st[reg]; x != nil {
				n = x.n
				if int(x.held) != rs.Held {
					return fmt.Errorf("check: register %s: %d held, state says %d", reg, x.held, rs.Held)
				}
			} else if rs.Held != 0 {
				return fmt.Errorf("check: register %s: 0 held, state says %d", reg, rs.Held)
			}
			if uint64(n+gaps[reg]) != rs.Watermark {
				return fmt.Errorf("check: register %s: %d events and %d acknowledged missing, watermark %d", reg, n, gaps[reg], rs.Watermark)
			}
		}
		// Review bookkeeping (Review, ReusedFrom, HeldFrom) against the
		// review records and the held events.
		counters := map[string]*hqstore.ReviewCounter{}
		for reg, rs := range regs {
			counters[reg] = hqstore.NewReviewCounter(rs)
			if x := st[reg]; x != nil && x.held > 0 {
				counters[reg].Held(uint64(x.heldMin))
			}
		}
		if err := eachRow(ctx, tx, `SELECT register, incarnation, seq, rec FROM hq_review`, nil, func(r pgx.Rows) error {
			var reg, inc string
			var seq int64
			var rec []byte
			if err := r.Scan(&reg, &inc, &seq, &rec); err != nil {
				return err
			}
			c := counters[reg]
			if c == nil {
				return fmt.Errorf("check: register %s has events held for review but no state", reg)
			}
			c.Add(inc, uint64(seq), rec)
			return nil
		}); err != nil {
			return err
		}
		for _, c := range counters {
			if err := c.Err(); err != nil {
				return err
			}
		}
		sums := map[string]ledger.Points{}
		policyHeld, err := policyHeldPoints(ctx, tx)
		if err != nil {
			return err
		}
		if err := eachRow(ctx, tx, `SELECT register, seq, rec FROM hq_events`, nil, func(r pgx.Rows) error {
			var reg string
			var seq int64
			var raw []byte
			if err := r.Scan(&reg, &seq, &raw); err != nil {
				return err
			}
			if policyHeld[heldKey{reg, seq}] {
				return nil // held by the policy: in no balance
			}
			var rec ledger.OutboxRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("check: register %s seq %d: %w", reg, seq, err)
			}
			if rec.Type == ledger.OutPoints {
				var pe ledger.PointEvent
				if err := json.Unmarshal(rec.Data, &pe); err != nil {
					return fmt.Errorf("check: register %s seq %d: %w", reg, seq, err)
				}
				sums[pe.MemberID] += pe.Points
			}
			return nil
		}); err != nil {
			return err
		}
		seen := map[string]bool{}
		if err := eachRow(ctx, tx, `SELECT m.id, m.carried + COALESCE((SELECT sum(points) FROM hq_member_regs WHERE member = m.id), 0)::bigint FROM hq_members AS m`, nil, func(r pgx.Rows) error {
			var id string
			var bal int64
			if err := r.Scan(&id, &bal); err != nil {
				return err
			}
			seen[id] = true
			if ledger.Points(bal) != sums[id] {
				return fmt.Errorf("check: member %s: balance %d, events sum to %d", id, bal, sums[id])
			}
			return nil
		}); err != nil {
			return err
		}
		for id, sum := range sums {
			if !seen[id] && sum != 0 {
				return fmt.Errorf("check: member %s has point events but no record", id)
			}
		}
		// Per-register sums belong to a member and never include more of
		// a register's events than head office applied.
		var member, reg string
		var seq, mark int64
		err = tx.QueryRow(ctx, `SELECT r.member, r.register, r.seq, COALESCE(g.watermark, -1) FROM hq_member_regs AS r
			LEFT JOIN hq_registers AS g ON g.register = r.register
			WHERE g.register IS NULL OR r.seq > g.watermark OR NOT EXISTS (SELECT 1 FROM hq_members AS m WHERE m.id = r.member) LIMIT 1`).Scan(&member, &reg, &seq, &mark)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case !seen[member]:
			return fmt.Errorf("check: member %s has sums for register %s but no record", member, reg)
		default:
			return fmt.Errorf("check: member %s includes register %s up to seq %d, its watermark is %d", member, reg, seq, mark)
		}
		now := s.now()
		var ids []string
		if err := eachRow(ctx, tx, `SELECT id FROM hq_members ORDER BY id`, nil, func(r pgx.Rows) error {
			var id string
			err := r.Scan(&id)
			ids = append(ids, id)
			return err
		}); err != nil {
			return err
		}
		t := newTxn(ctx, tx, false)
		for _, id := range ids {
			if err := hqstore.CheckFiguresIn(t, id, now); err != nil {
				return err
			}
		}
		return checkStreams(ctx, tx)
	}))
}

// queueNotify queues on b the commit's changes on ChangesChannel, in
// payloads under PostgreSQL's 8000-byte limit; they are delivered when the
// transaction commits.
func queueNotify(b *pgx.Batch, r hqstore.Result) error {
	stores := map[string]bool{}
	for _, rs := range r.Registers {
		if rs.Store != "" {
			stores[rs.Store] = true
		}
	}
	c := hqstore.Change{Members: r.Members}
	for st := range stores {
		c.Stores = append(c.Stores, st)
	}
	if len(c.Members) == 0 && len(c.Stores) == 0 {
		return nil
	}
	for len(c.Members) > 0 || len(c.Stores) > 0 {
		part := hqstore.Change{Stores: c.Stores}
		size := 16
		for _, st := range c.Stores {
			size += len(st) + 3
		}
		n := 0
		for n < len(c.Members) && size+len(c.Members[n])+3 < 7000 {
			size += len(c.Members[n]) + 3
			n++
		}
		part.Members, c.Members, c.Stores = c.Members[:n], c.Members[n:], nil
		v, err := json.Marshal(part)
		if err != nil {
			return err
		}
		b.Queue(`SELECT pg_notify($1, $2)`, ChangesChannel, string(v))
	}
	return nil
}
