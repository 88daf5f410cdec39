package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema versions in order: migrations[i] takes the
// schema from version i to i+1. Applied at Open in one transaction each;
// never edit one that has shipped, add the next. Statements stay in the
// PostgreSQL dialect that the PostgreSQL-compatible distributed engines
// (CockroachDB, YugabyteDB) also run: plain tables, primary keys, bigint,
// bytea, json, ON CONFLICT; the exceptions are listed in docs/hq.md.
var migrations = []string{
	// 1: the first schema.
	`CREATE TABLE hq_registers (
		register    text COLLATE "C" PRIMARY KEY,
		watermark   bigint NOT NULL DEFAULT 0,
		state       json   NOT NULL
	);
	CREATE TABLE hq_events (
		register    text COLLATE "C" NOT NULL,
		seq         bigint NOT NULL,
		rec         bytea  NOT NULL,
		PRIMARY KEY (register, seq)
	);
	CREATE TABLE hq_held (
		register    text COLLATE "C" NOT NULL,
		seq         bigint NOT NULL,
		rec         bytea  NOT NULL,
		PRIMARY KEY (register, seq)
	);
	CREATE TABLE hq_members (
		id          text COLLATE "C" PRIMARY KEY,
		balance     bigint NOT NULL,
		included    json   NOT NULL,
		profile     json   NOT NULL
	);
	CREATE TABLE hq_aliases (
		alias       text COLLATE "C" PRIMARY KEY,
		member      text COLLATE "C" NOT NULL
	);
	CREATE TABLE hq_sales (
		id          text COLLATE "C" PRIMARY KEY,
		rec         json NOT NULL
	);
	CREATE TABLE hq_purchases (
		member      text COLLATE "C" NOT NULL,
		register    text COLLATE "C" NOT NULL,
		seq         bigint NOT NULL,
		rec         json   NOT NULL,
		PRIMARY KEY (member, register, seq)
	);
	CREATE TABLE hq_conflicts (
		n           bigserial PRIMARY KEY,
		rec         json NOT NULL
	);
	CREATE TABLE hq_doublespends (
		n           bigserial PRIMARY KEY,
		member      text COLLATE "C" NOT NULL,
		rec         json NOT NULL
	);
	CREATE TABLE hq_configs (
		kind        text COLLATE "C" PRIMARY KEY,
		version     bigint NOT NULL,
		doc         json   NOT NULL
	);
	CREATE TABLE hq_review (
		register    text COLLATE "C" NOT NULL,
		incarnation text COLLATE "C" NOT NULL,
		seq         bigint NOT NULL,
		rec         json   NOT NULL,
		PRIMARY KEY (register, incarnation, seq)
	);`,
	// 2: gaps an operator acknowledged (hqstore.AcknowledgeGapIn).
	`CREATE TABLE hq_gaps (
		register    text COLLATE "C" NOT NULL,
		from_seq    bigint NOT NULL,
		to_seq      bigint NOT NULL,
		rec         json   NOT NULL,
		PRIMARY KEY (register, from_seq)
	);`,
	// 3: head office's policy (hqstore policy.go): the events it holds
	// for review and each register's adjustments per day.
	`CREATE TABLE hq_policy_held (
		register    text COLLATE "C" NOT NULL,
		seq         bigint NOT NULL,
		rec         json   NOT NULL,
		PRIMARY KEY (register, seq)
	);
	CREATE TABLE hq_policy_adjust (
		register    text COLLATE "C" NOT NULL,
		day         text COLLATE "C" NOT NULL,
		total       bigint NOT NULL,
		PRIMARY KEY (register, day)
	);`,
	// 4: member-summary streams (docs/protocol.md "Member summaries").
	// IF NOT EXISTS: a database set back to an older schema by hand migrates
	// again without failing.
	`CREATE TABLE IF NOT EXISTS hq_shops (
		member      text COLLATE "C" NOT NULL,
		store       text COLLATE "C" NOT NULL,
		at          bigint NOT NULL,
		PRIMARY KEY (member, store)
	);
	CREATE TABLE IF NOT EXISTS hq_dirty (
		member      text COLLATE "C" PRIMARY KEY
	);
	CREATE TABLE IF NOT EXISTS hq_streams (
		store       text COLLATE "C" PRIMARY KEY,
		head        bigint NOT NULL DEFAULT 0,
		sent        bigint NOT NULL DEFAULT 0
	);
	CREATE TABLE IF NOT EXISTS hq_stream_members (
		store       text COLLATE "C" NOT NULL,
		member      text COLLATE "C" NOT NULL,
		pos         bigint NOT NULL,
		PRIMARY KEY (store, member)
	);
	CREATE UNIQUE INDEX IF NOT EXISTS hq_stream_members_pos ON hq_stream_members (store, pos);`,
	// 5: a member's balance and Included marks by register
	// (hq_member_regs), so ingest adds a batch's points in one statement
	// under the register's lock and writes a member's own row only when
	// its profile changes; carried is the balance schema 4 held.
	`CREATE TABLE hq_member_regs (
		member      text COLLATE "C" NOT NULL,
		register    text COLLATE "C" NOT NULL,
		seq         bigint NOT NULL,
		points      bigint NOT NULL,
		PRIMARY KEY (member, register)
	);
	INSERT INTO hq_member_regs (member, register, seq, points)
		SELECT m.id, j.key, j.value::bigint, 0 FROM hq_members AS m, json_each_text(m.included) AS j;
	ALTER TABLE hq_members DROP COLUMN included;
	ALTER TABLE hq_members RENAME COLUMN balance TO carried;`, // 6: running figures of member summaries (hqstore figures.go),
	// computed from the purchases after this migration (rebuildFigures).
	`CREATE TABLE hq_fig_sales (
		member      text COLLATE "C" NOT NULL,
		sale        text COLLATE "C" NOT NULL,
		rec         json   NOT NULL,
		PRIMARY KEY (member, sale)
	);
	CREATE TABLE hq_fig_days (
		member      text COLLATE "C" NOT NULL,
		day         integer NOT NULL,
		spend       bigint NOT NULL,
		sales       integer NOT NULL,
		cum_spend   bigint NOT NULL,
		cum_days    integer NOT NULL,
		PRIMARY KEY (member, day)
	);`,
	// 7: member erasures (hqstore erase.go).
	`CREATE TABLE IF NOT EXISTS hq_erasures (
		member      text COLLATE "C" PRIMARY KEY,
		n           bigint NOT NULL,
		rec         json   NOT NULL
	);`,
	// 8: the members a transaction marked for a summary, in one row
	// (instead of a row of hq_dirty each, which every message probed);
	// TakeSummaries takes from both tables.
	`CREATE TABLE IF NOT EXISTS hq_dirty_batches (
		n           bigserial PRIMARY KEY,
		members     text[] NOT NULL
	);`,
	// 9: the stores told about a member by a card lookup, apart from
	// hq_shops (where it shops, which the policy reads).
	`CREATE TABLE IF NOT EXISTS hq_told (
		member      text COLLATE "C" NOT NULL,
		store       text COLLATE "C" NOT NULL,
		at          bigint NOT NULL,
		PRIMARY KEY (member, store)
	);`,
}

// afterMigration runs, in the migration's transaction, what a migration
// needs beyond SQL: migrations[i]'s entry.
var afterMigration = map[int]func(ctx context.Context, tx pgx.Tx) error{
	5: rebuildFigures,
}
