package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// LeaderLockKey is the pg_try_advisory_lock key the leader holds.
const LeaderLockKey int64 = 0x6c6f79616c7479 // "loyalty"

// Coordinator elects, among the workers on one database, the one that
// does the work that must happen once (member summaries), and passes every
// worker's changes (Options.Notify) to it. The leader holds a session-level
// advisory lock (pg_try_advisory_lock) on a connection of its own; when the
// leader dies or loses that connection PostgreSQL releases the lock and
// another worker takes it at its next try (Interval).
type Coordinator struct {
	st       *Store
	key      int64
	interval time.Duration
	log      *slog.Logger
	leader   atomic.Bool
	changes  chan hqstore.Change
}

// NewCoordinator returns a coordinator over st's database; key 0 means
// LeaderLockKey, interval 0 one second.
func NewCoordinator(st *Store, key int64, interval time.Duration, log *slog.Logger) *Coordinator {
	if key == 0 {
		key = LeaderLockKey
	}
	if interval <= 0 {
		interval = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{st: st, key: key, interval: interval, log: log, changes: make(chan hqstore.Change, 256)}
}

// Leader reports whether this worker holds the leader lock now.
func (c *Coordinator) Leader() bool { return c.leader.Load() }

// Changes delivers, while this worker leads, every commit's changes by any
// worker (its own included), and an empty Change each time it becomes
// the leader.
func (c *Coordinator) Changes() <-chan hqstore.Change { return c.changes }

// Run keeps trying to lead until ctx ends.
func (c *Coordinator) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := c.session(ctx)
		if c.leader.Swap(false) && ctx.Err() == nil {
			c.log.Warn("leadership lost", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.interval):
		}
	}
}

// session runs on one connection until it fails.
func (c *Coordinator) session(ctx context.Context) error {
	cfg := c.st.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return c.st.wrap(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+ChangesChannel); err != nil {
		return c.st.wrap(err)
	}
	next := time.Now()
	for {
		if !c.leader.Load() && !time.Now().Before(next) {
			var got bool
			if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, c.key).Scan(&got); err != nil {
				return c.st.wrap(err)
			}
			next = time.Now().Add(c.interval)
			if got {
				c.leader.Store(true)
				c.log.Info("leading: this worker sends member summaries")
				c.send(ctx, hqstore.Change{})
			}
		}
		wctx, cancel := context.WithTimeout(ctx, c.interval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			// Check the connection is alive (a leader must notice losing it).
			if err := conn.Ping(ctx); err != nil {
				return c.st.wrap(err)
			}
			continue
		case err != nil:
			return c.st.wrap(err)
		}
		if !c.leader.Load() {
			continue
		}
		var ch hqstore.Change
		if err := json.Unmarshal([]byte(n.Payload), &ch); err != nil {
			c.log.Warn("changes notification not understood", "err", err)
			continue
		}
		c.send(ctx, ch)
	}
}

func (c *Coordinator) send(ctx context.Context, ch hqstore.Change) {
	select {
	case c.changes <- ch:
	case <-ctx.Done():
	}
}
