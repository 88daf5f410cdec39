package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// Member-summary streams on PostgreSQL: the same rules as the bbolt store
// (hqstore/stream.go). hq_shops says where each member was seen (head
// office's time, unix seconds), hq_told which stores head office told
// about it by answering a card lookup (they get its summaries too, but
// the policy reads hq_shops alone), hq_dirty_batches and hq_dirty which
// members wait for a summary (Apply writes one row of the first for its
// transaction's members, in the transaction; Rebase and what a take
// leaves over write the second), hq_streams each store's
// head and sent position, hq_stream_members each member's position in
// each store's stream. Positions come from one counter in hq_meta
// ('summary_position'); TakeSummaries takes that row's lock first, so two
// workers never interleave their positions.

// MarkChanged queues the member's mark and where it was seen (written by
// flush, one statement each for all members).
func (t *txn) MarkChanged(member string, stores []string, at time.Time) error {
	t.dirty = append(t.dirty, member)
	sec := max(at.Unix(), 0)
	for _, st := range stores {
		// A mark this process knows was made within the hour is not
		// written again: the summary window is months.
		k := member + "\x00" + st
		if was, ok := t.knownRow(knownShops, k); ok && was >= sec-3600 {
			continue
		}
		t.shopMember, t.shopStore, t.shopAt = append(t.shopMember, member), append(t.shopStore, st), append(t.shopAt, sec)
		t.shopKey, t.shopSec = append(t.shopKey, k), append(t.shopSec, sec)
	}
	return nil
}

// Shops returns every store where the member was seen (hq_shops, not
// hq_told). Its rows are
// written at the end of the batch (MarkChanged), so it reads only what
// earlier batches recorded; the applier adds its own batch's.
func (t *txn) Shops(member string) ([]string, error) {
	var out []string
	err := eachRow(t.ctx, t.q, `SELECT store FROM hq_shops WHERE member = $1`, []any{member}, func(r pgx.Rows) error {
		var s string
		err := r.Scan(&s)
		out = append(out, s)
		return err
	})
	return out, err
}

func since(now time.Time, months int) int64 {
	if months <= 0 {
		return -1 << 62
	}
	return now.AddDate(0, -months, 0).Unix()
}

// counter locks and returns the chain-wide position counter; a database
// without one starts above the older per-restart numbering.
func counter(ctx context.Context, tx pgx.Tx) (uint64, error) {
	var p int64
	err := tx.QueryRow(ctx, `SELECT value FROM hq_meta WHERE key = 'summary_position' FOR UPDATE`).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		var epoch int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM hq_meta WHERE key = 'epoch'), 0)`).Scan(&epoch); err != nil {
			return 0, err
		}
		return uint64(epoch+1) << 32, nil
	}
	return uint64(p), err
}

// TakeSummaries takes up to max changed members and places each at a new
// position of the streams of the stores where it shopped within months.
func (s *Store) TakeSummaries(months, max int) ([]hqstore.StreamBatch, error) {
	if max <= 0 {
		max = 500
	}
	now := s.now()
	ctx, cancel := s.ctx()
	defer cancel()
	var out []hqstore.StreamBatch
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = nil
		pos, err := counter(ctx, tx)
		if err != nil {
			return err
		}
		ids, err := takeDirty(ctx, tx, max)
		if err != nil || len(ids) == 0 {
			return err
		}
		t := newTxn(ctx, tx, false)
		at := map[string]int{}
		heads := map[string]uint64{}
		for _, id := range ids {
			var stores []string
			if err := eachRow(ctx, tx, holdersQuery, []any{id, since(now, months)}, func(r pgx.Rows) error {
				var st string
				err := r.Scan(&st)
				stores = append(stores, st)
				return err
			}); err != nil {
				return err
			}
			if len(stores) == 0 {
				continue
			}
			row, ok, err := t.Member(id)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			sum, err := hqstore.SummaryIn(t, row, true, now)
			if err != nil {
				return err
			}
			for _, store := range stores {
				i, seen := at[store]
				if !seen {
					var head int64
					if err := tx.QueryRow(ctx, `INSERT INTO hq_streams (store) VALUES ($1)
						ON CONFLICT (store) DO UPDATE SET store = EXCLUDED.store RETURNING head`, store).Scan(&head); err != nil {
						return err
					}
					i = len(out)
					at[store] = i
					out = append(out, hqstore.StreamBatch{Store: store, From: uint64(head)})
				}
				pos++
				if _, err := tx.Exec(ctx, `INSERT INTO hq_stream_members (store, member, pos) VALUES ($1, $2, $3)
					ON CONFLICT (store, member) DO UPDATE SET pos = EXCLUDED.pos`, store, id, int64(pos)); err != nil {
					return err
				}
				heads[store] = pos
				out[i].Seq = pos
				out[i].Members = append(out[i].Members, sum)
				out[i].Positions = append(out[i].Positions, pos)
			}
		}
		for store, head := range heads {
			if _, err := tx.Exec(ctx, `UPDATE hq_streams SET head = $2 WHERE store = $1`, store, int64(head)); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO hq_meta (key, value) VALUES ('summary_position', $1)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, int64(pos))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("take summaries: %w", s.wrap(err))
	}
	return out, nil
}

// takeDirty removes and returns, sorted, up to max members marked for a
// summary: first from the oldest rows of hq_dirty_batches (what the row
// that reaches max holds beyond it goes back to hq_dirty), then from
// hq_dirty.
func takeDirty(ctx context.Context, tx pgx.Tx, max int) ([]string, error) {
	seen := map[string]bool{}
	var ids, over []string
	var rows []int64
	if err := eachRow(ctx, tx, `SELECT n, members FROM hq_dirty_batches ORDER BY n LIMIT $1 FOR UPDATE SKIP LOCKED`, []any{max}, func(r pgx.Rows) error {
		var n int64
		var mems []string
		if err := r.Scan(&n, &mems); err != nil {
			return err
		}
		if len(ids) >= max {
			return nil
		}
		rows = append(rows, n)
		for _, id := range mems {
			switch {
			case seen[id]:
			case len(ids) < max:
				seen[id] = true
				ids = append(ids, id)
			default:
				over = append(over, id)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var b pgx.Batch
	if len(rows) > 0 {
		b.Queue(`DELETE FROM hq_dirty_batches WHERE n = ANY($1)`, rows)
	}
	if len(over) > 0 {
		sort.Strings(over)
		b.Queue(`INSERT INTO hq_dirty (member) SELECT DISTINCT * FROM unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING`, over)
	}
	if len(ids) < max {
		b.Queue(`SELECT member FROM hq_dirty ORDER BY member LIMIT $1 FOR UPDATE SKIP LOCKED`, max-len(ids)).Query(func(r pgx.Rows) error {
			for r.Next() {
				var id string
				if err := r.Scan(&id); err != nil {
					return err
				}
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
			return r.Err()
		})
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return nil, err
		}
	}
	if len(ids) > 0 {
		// Taken: a mark in hq_dirty as well is done with too.
		if _, err := tx.Exec(ctx, `DELETE FROM hq_dirty WHERE member = ANY($1)`, ids); err != nil {
			return nil, err
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// holdersQuery selects the stores that hold member $1 since $2: where it
// was seen or that were told about it, in store order.
const holdersQuery = `SELECT store FROM hq_shops WHERE member = $1 AND at >= $2
	UNION SELECT store FROM hq_told WHERE member = $1 AND at >= $2 ORDER BY store`

// LookedUp records that a store was told about the member by a card
// lookup (hqstore.Streams.LookedUp), in hq_told; a mark of either table
// within the hour is not written again.
func (s *Store) LookedUp(member, store string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	at := max(s.now().Unix(), 0)
	var recent bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM hq_told WHERE member = $1 AND store = $2 AND at >= $3)
		OR EXISTS (SELECT 1 FROM hq_shops WHERE member = $1 AND store = $2 AND at >= $3)`,
		member, store, at-int64(lookedUpAgain/time.Second)).Scan(&recent)
	if err == nil && !recent {
		_, err = s.pool.Exec(ctx, `INSERT INTO hq_told (member, store, at) VALUES ($1, $2, $3)
			ON CONFLICT (member, store) DO UPDATE SET at = GREATEST(hq_told.at, EXCLUDED.at)`, member, store, at)
	}
	if err != nil {
		return fmt.Errorf("member %q looked up at store %q: %w", member, store, s.wrap(err))
	}
	return nil
}

// lookedUpAgain is hqstore's: a store marked within it is not written
// again by LookedUp.
const lookedUpAgain = time.Hour

// SummaryCounter returns the chain-wide counter
// (hqstore.Streams.SummaryCounter).
func (s *Store) SummaryCounter() (uint64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var cur int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM hq_meta WHERE key = 'summary_position'),
		((COALESCE((SELECT value FROM hq_meta WHERE key = 'epoch'), 0) + 1) << 32))`).Scan(&cur)
	if err != nil {
		return 0, s.wrap(err)
	}
	return uint64(cur), nil
}

// Rebase moves the chain-wide counter to above when it is below and marks
// every member of the store's stream changed (hqstore.Streams.Rebase).
func (s *Store) Rebase(store string, above uint64) (rebased bool, n int, err error) {
	cur, err := s.SummaryCounter()
	if err != nil || cur >= above {
		return false, 0, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		c, err := counter(ctx, tx)
		if rebased = err == nil && c < above; !rebased {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO hq_meta (key, value) VALUES ('summary_position', $1)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, int64(above)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO hq_dirty (member) SELECT member FROM hq_stream_members WHERE store = $1 ORDER BY member
			ON CONFLICT DO NOTHING`, store)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("rebase summary stream %q above %d: %w", store, above, s.wrap(err))
	}
	return rebased, n, nil
}

// CatchUp returns the part of the store's stream after from.
func (s *Store) CatchUp(store string, from uint64, max int) (hqstore.StreamBatch, bool, error) {
	if max <= 0 {
		max = 500
	}
	now := s.now()
	ctx, cancel := s.ctx()
	defer cancel()
	b := hqstore.StreamBatch{Store: store, From: from}
	more := false
	// One snapshot: the head and the members agree.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var head int64
		err := tx.QueryRow(ctx, `SELECT head FROM hq_streams WHERE store = $1`, store).Scan(&head)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && uint64(head) <= from) {
			return nil
		}
		if err != nil {
			return err
		}
		type at struct {
			id  string
			pos int64
		}
		var rows []at
		if err := eachRow(ctx, tx, `SELECT member, pos FROM hq_stream_members WHERE store = $1 AND pos > $2 ORDER BY pos LIMIT $3`,
			[]any{store, int64(from), max + 1}, func(r pgx.Rows) error {
				var x at
				err := r.Scan(&x.id, &x.pos)
				rows = append(rows, x)
				return err
			}); err != nil {
			return err
		}
		if len(rows) > max {
			rows, more = rows[:max], true
		}
		t := newTxn(ctx, tx, false)
		for _, x := range rows {
			row, ok, err := t.Member(x.id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("summary stream %q: position %d names member %q, which is not stored", store, x.pos, x.id)
			}
			sum, err := hqstore.SummaryIn(t, row, true, now)
			if err != nil {
				return err
			}
			b.Members = append(b.Members, sum)
			b.Positions = append(b.Positions, uint64(x.pos))
		}
		b.Seq = uint64(head)
		if more {
			b.Seq = b.Positions[len(b.Positions)-1]
		}
		return nil
	})
	if err != nil {
		return hqstore.StreamBatch{}, false, fmt.Errorf("catch up %q from %d: %w", store, from, s.wrap(err))
	}
	return b, more, nil
}

// SummarySent records that the store's stream up to seq was published.
func (s *Store) SummarySent(store string, seq uint64) error {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO hq_streams (store, sent) VALUES ($1, $2)
		ON CONFLICT (store) DO UPDATE SET sent = GREATEST(hq_streams.sent, EXCLUDED.sent)`, store, int64(seq))
	return s.wrap(err)
}

// SummaryStreams returns every store's stream state, in store order.
func (s *Store) SummaryStreams() ([]hqstore.StreamState, error) {
	var out []hqstore.StreamState
	err := s.read(func(ctx context.Context, _ *txn) error {
		return eachRow(ctx, s.pool, `SELECT store, head, sent FROM hq_streams ORDER BY store`, nil, func(r pgx.Rows) error {
			var st hqstore.StreamState
			var head, sent int64
			err := r.Scan(&st.Store, &head, &sent)
			st.Head, st.Sent = uint64(head), uint64(sent)
			out = append(out, st)
			return err
		})
	})
	return out, err
}

// LookupSummary finds a member by one of its aliases, not by member id
// (hqstore.Streams.LookupSummary); the version is the position counter
// when it was read.
func (s *Store) LookupSummary(alias string) (hqstore.MemberSummary, uint64, error) {
	now := s.now()
	ctx, cancel := s.ctx()
	defer cancel()
	var out hqstore.MemberSummary
	var pos uint64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		t := newTxn(ctx, tx, false)
		id, err := t.Alias(alias)
		if err != nil {
			return err
		}
		if id == "" {
			return fmt.Errorf("alias %q: %w", alias, hqstore.ErrUnknownMember)
		}
		row, ok, err := t.Member(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("alias %q: %w", alias, hqstore.ErrUnknownMember)
		}
		var p int64
		err = tx.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM hq_meta WHERE key = 'summary_position'),
			(COALESCE((SELECT value FROM hq_meta WHERE key = 'epoch'), 0) + 1) * 4294967296)`).Scan(&p)
		if err != nil {
			return err
		}
		pos = uint64(p)
		out, err = hqstore.SummaryIn(t, row, true, now)
		return err
	})
	if err != nil && !errors.Is(err, hqstore.ErrUnknownMember) {
		err = s.wrap(err)
	}
	return out, pos, err
}

// ShopsOf returns the stores where the member was seen, or that were
// told about it, within months.
func (s *Store) ShopsOf(member string, months int) ([]string, error) {
	now := s.now()
	var out []string
	err := s.read(func(ctx context.Context, _ *txn) error {
		return eachRow(ctx, s.pool, holdersQuery, []any{member, since(now, months)}, func(r pgx.Rows) error {
			var st string
			err := r.Scan(&st)
			out = append(out, st)
			return err
		})
	})
	return out, err
}

// checkStreams verifies, inside Check's snapshot, that no position is
// above its stream's head or the counter.
func checkStreams(ctx context.Context, tx pgx.Tx) error {
	var counterPos int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM hq_meta WHERE key = 'summary_position'), 0)`).Scan(&counterPos); err != nil {
		return err
	}
	return eachRow(ctx, tx, `SELECT s.store, s.head, COALESCE(max(m.pos), 0) FROM hq_streams s
		LEFT JOIN hq_stream_members m ON m.store = s.store GROUP BY s.store, s.head`, nil, func(r pgx.Rows) error {
		var store string
		var head, top int64
		if err := r.Scan(&store, &head, &top); err != nil {
			return err
		}
		if top > head || head > counterPos {
			return fmt.Errorf("check: summary stream %q: highest position %d, head %d, counter %d", store, top, head, counterPos)
		}
		return nil
	})
}

// Running figures (hqstore figures.go) in hq_fig_sales and hq_fig_days.

// figLockClass is the first key of the transaction-level advisory lock
// that serialises writers of one member's running figures (the second is
// the hash of the member id): they can come from any register.
const figLockClass = 0x66696731

// queueFigureLocks takes, in the order given, the figure locks of members not
// locked yet in this transaction.
func (t *txn) queueFigureLocks(b *pgx.Batch, members []string) {
	var todo []string
	for _, m := range members {
		if !t.figLocked[m] {
			if t.figLocked == nil {
				t.figLocked = map[string]bool{}
			}
			t.figLocked[m] = true
			todo = append(todo, m)
		}
	}
	if len(todo) > 0 {
		b.Queue(`SELECT count(pg_advisory_xact_lock($1, hashtext(m))) FROM (SELECT DISTINCT m FROM unnest($2::text[]) AS m ORDER BY m) AS u`, figLockClass, todo)
	}
}

func (t *txn) SaleFigure(member, sale string) ([]byte, error) {
	if t.write && !t.figLocked[member] {
		// A member whose figures lock did not take (held events applied
		// now): take it before reading.
		var b pgx.Batch
		t.queueFigureLocks(&b, []string{member})
		if err := t.q.SendBatch(t.ctx, &b).Close(); err != nil {
			return nil, err
		}
	}
	return t.get(key("fs", member, sale), `SELECT rec FROM hq_fig_sales WHERE member = $1 AND sale = $2`, member, sale)
}

func (t *txn) PutSaleFigure(member, sale string, rec []byte) error {
	t.put(key("fs", member, sale), rec)
	t.queue(`INSERT INTO hq_fig_sales (member, sale, rec) VALUES ($1, $2, $3)
		ON CONFLICT (member, sale) DO UPDATE SET rec = EXCLUDED.rec`, member, sale, rec)
	return nil
}

// dayCached is a member's day as this transaction last wrote or read it.
type dayCached struct {
	d      hqstore.DayFigure
	exists bool
}

func (t *txn) dayCache(member string) map[int]dayCached {
	if t.days == nil {
		t.days = map[string]map[int]dayCached{}
	}
	m := t.days[member]
	if m == nil {
		m = map[int]dayCached{}
		t.days[member] = m
	}
	return m
}

const dayCols = `day, spend, sales, cum_spend, cum_days`

func scanDay(r pgx.Rows) (hqstore.DayFigure, error) {
	var d hqstore.DayFigure
	var day, sales, cumDays int64
	var spend, cumSpend int64
	err := r.Scan(&day, &spend, &sales, &cumSpend, &cumDays)
	d.Day, d.Spend, d.Sales, d.CumSpend, d.CumDays = int(day), ledger.Money(spend), int(sales), ledger.Money(cumSpend), int(cumDays)
	return d, err
}

// prefetchFigures reads, in the lock's round trip, the running figures
// a batch's sales and refunds will move: their sales' rows and each
// member's last day (a new sale is normally on or after it).
func (t *txn) prefetchFigures(b *pgx.Batch, members, sales []string) {
	if len(members) == 0 {
		return
	}
	sorted := append([]string(nil), members...)
	sort.Strings(sorted)
	t.queueFigureLocks(b, sorted)
	for i := range members {
		t.cache[key("fs", members[i], sales[i])] = cached{}
	}
	b.Queue(`SELECT f.member, f.sale, f.rec FROM unnest($1::text[], $2::text[]) AS u(member, sale)
		JOIN hq_fig_sales AS f ON f.member = u.member AND f.sale = u.sale`, members, sales).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var m, sale string
			var rec []byte
			if err := rows.Scan(&m, &sale, &rec); err != nil {
				return err
			}
			t.cache[key("fs", m, sale)] = cached{v: rec, exists: true}
		}
		return rows.Err()
	})
	if t.lastDay == nil {
		t.lastDay = map[string]*hqstore.DayFigure{}
	}
	for _, m := range members {
		t.lastDay[m] = nil
	}
	b.Queue(`SELECT u.member, d.`+dayCols+` FROM (SELECT DISTINCT member FROM unnest($1::text[]) AS member) AS u
		CROSS JOIN LATERAL (SELECT `+dayCols+` FROM hq_fig_days WHERE member = u.member ORDER BY day DESC LIMIT 1) AS d`, members).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var m string
			var day, sales, cumDays int32
			var spend, cumSpend int64
			if err := rows.Scan(&m, &day, &spend, &sales, &cumSpend, &cumDays); err != nil {
				return err
			}
			t.lastDay[m] = &hqstore.DayFigure{Day: int(day), Spend: ledger.Money(spend), Sales: int(sales), CumSpend: ledger.Money(cumSpend), CumDays: int(cumDays)}
		}
		return rows.Err()
	})
}

// known answers from what prefetchFigures read: the database's days of
// member in from..to, when they are known without a query.
func (t *txn) known(member string, from, to int) ([]hqstore.DayFigure, bool) {
	last, ok := t.lastDay[member]
	switch {
	case !ok:
		return nil, false
	case last == nil || from > last.Day:
		return nil, true // the member has no day in the database after its last
	case to >= last.Day && from == last.Day:
		return []hqstore.DayFigure{*last}, true
	}
	return nil, false
}

func (t *txn) FigureDay(member string, day int) (hqstore.DayFigure, bool, error) {
	c := t.dayCache(member)
	if x, ok := c[day]; ok {
		return x.d, x.exists, nil
	}
	if ds, ok := t.known(member, day, day); ok {
		c[day] = dayCached{}
		if len(ds) == 1 {
			c[day] = dayCached{d: ds[0], exists: true}
		}
		return c[day].d, c[day].exists, nil
	}
	var d hqstore.DayFigure
	found := false
	err := eachRow(t.ctx, t.q, `SELECT `+dayCols+` FROM hq_fig_days WHERE member = $1 AND day = $2`, []any{member, day}, func(r pgx.Rows) error {
		var err error
		d, err = scanDay(r)
		found = true
		return err
	})
	if err != nil {
		return hqstore.DayFigure{}, false, err
	}
	c[day] = dayCached{d: d, exists: found}
	return d, found, nil
}

func (t *txn) PutFigureDay(member string, d hqstore.DayFigure) error {
	t.dayCache(member)[d.Day] = dayCached{d: d, exists: d.Sales > 0}
	if d.Sales == 0 {
		t.queue(`DELETE FROM hq_fig_days WHERE member = $1 AND day = $2`, member, d.Day)
		return nil
	}
	t.queue(`INSERT INTO hq_fig_days (member, `+dayCols+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (member, day) DO UPDATE SET spend = EXCLUDED.spend, sales = EXCLUDED.sales, cum_spend = EXCLUDED.cum_spend, cum_days = EXCLUDED.cum_days`,
		member, d.Day, int64(d.Spend), d.Sales, int64(d.CumSpend), d.CumDays)
	return nil
}

// FigureDays reads the range from the database and lays this
// transaction's writes (not sent yet) over it.
func (t *txn) FigureDays(member string, from, to, limit int, desc bool) ([]hqstore.DayFigure, error) {
	if from > to {
		return nil, nil
	}
	c := t.dayCache(member)
	written := 0
	for day := range c {
		if day >= from && day <= to {
			written++
		}
	}
	order := "ASC"
	if desc {
		order = "DESC"
	}
	sql := `SELECT ` + dayCols + ` FROM hq_fig_days WHERE member = $1 AND day BETWEEN $2 AND $3 ORDER BY day ` + order
	args := []any{member, from, to}
	if limit > 0 {
		sql += ` LIMIT $4`
		args = append(args, limit+written)
	}
	got := map[int]hqstore.DayFigure{}
	if ds, ok := t.known(member, from, to); ok {
		for _, d := range ds {
			got[d.Day] = d
		}
	} else if last := t.lastDay[member]; ok0(last) && desc && limit == 1 && to >= last.Day && from <= last.Day && !deleted(c, last.Day) {
		// The member's last day answers "the last day up to to".
		got[last.Day] = *last
	} else if err := eachRow(t.ctx, t.q, sql, args, func(r pgx.Rows) error {
		d, err := scanDay(r)
		got[d.Day] = d
		return err
	}); err != nil {
		return nil, err
	}
	for day, x := range c {
		if day < from || day > to {
			continue
		}
		if x.exists {
			got[day] = x.d
		} else {
			delete(got, day)
		}
	}
	out := make([]hqstore.DayFigure, 0, len(got))
	for _, d := range got {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return (out[i].Day < out[j].Day) != desc })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// rebuildFigures computes every member's running figures from the
// purchases (migration 6).
func rebuildFigures(ctx context.Context, tx pgx.Tx) error {
	t := newTxn(ctx, tx, true)
	var member string
	var recs [][]byte
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		err := hqstore.RebuildFiguresIn(t, member, recs)
		recs = nil
		return err
	}
	var members []string
	if err := eachRow(ctx, tx, `SELECT DISTINCT member FROM hq_purchases ORDER BY member`, nil, func(r pgx.Rows) error {
		var m string
		err := r.Scan(&m)
		members = append(members, m)
		return err
	}); err != nil {
		return err
	}
	for _, m := range members {
		member = m
		var err error
		if recs, err = t.MemberPurchases(m); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		if t.batch.Len() > 1000 {
			if err := t.flush(); err != nil {
				return err
			}
			t = newTxn(ctx, tx, true)
		}
	}
	return t.flush()
}

func ok0(d *hqstore.DayFigure) bool { return d != nil }

func deleted(c map[int]dayCached, day int) bool {
	x, ok := c[day]
	return ok && !x.exists
}
