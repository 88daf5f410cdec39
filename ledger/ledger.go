package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// SchemaVersion is the layout version this program writes and understands.
const SchemaVersion = 11

// Schema history: 1 (development builds only) kept events, lots and
// purchases in three buckets and lacked the expiry index and counters;
// Open migrates it to 2 in one transaction. 3 adds the bucket of events
// whose time awaits correction (untimed), the rows of expired points per
// lot (built from the expire events) and the trusted-time high-water mark;
// Open migrates 2 to 3 in one transaction. 4 adds the incarnation: a
// random id created with the ledger (see Incarnation); Open gives a schema
// 3 file one in one transaction. 5 keeps the rolling 12-month window
// incrementally: day rows (kind 'w') and the members' untimed entries,
// built from the purchase rows when Open migrates a schema 4 file. 6
// writes fewer pages per sale (layout.go): what every commit rewrites
// moves from meta to the inline state bucket, and a sale's outbox records
// name its sale and event rows instead of copying their JSON (records
// written before stay JSON and read alike). 7 writes fewer pages again
// (layout.go): point event rows in a compact binary form (evrow.go)
// instead of JSON, which shrinks the rows bucket a sale writes into to a
// third and a level (rows written before stay JSON and read alike), and
// each member's record among the member's rows (kind 'm', see memberKey),
// so a sale rewrites it in the leaf it writes the member's lot, purchase
// and event rows into, not in a bucket of its own; Open moves the
// records. 8 indexes expiry per member instead of per lot (points.go): one
// entry at the member's earliest expiry, so a sale of a member who has
// points already leaves the index's leaf page alone; Open rebuilds the
// index from the lots. 8 also writes sale, lot and purchase rows and
// member records in a compact binary form (salerow.go, rowcodec.go,
// memberrow.go; rows written before stay
// JSON and read alike; head office still gets the sale's JSON, byte for
// byte what encoding/json writes). 9, 10 and 11: layout.go.

// Options configures Open. A nil *Options means defaults, but Register is
// required for a writable ledger.
type Options struct {
	// Register is this register's id, e.g. "store1-r1". It prefixes every
	// event id ("<register>-<seq>"). Required unless ReadOnly.
	Register string
	// LockTimeout bounds the wait for the file lock; default 1s. A second
	// process fails with ErrLocked after it.
	LockTimeout time.Duration
	// Clock gives wall time and whether it is trusted (NTP synced); default
	// the system clock, always trusted. A Raspberry Pi boots in 1970 until
	// NTP answers, so every time the ledger stores carries the flag with it.
	// A clock.BootClock also gives the boot and monotonic time, which lets
	// the ledger correct untrusted times and catch a clock jumping ahead.
	Clock clock.Clock
	// ClockTolerance is how far a trusted clock may disagree with the
	// trusted-time high-water mark (behind it, or ahead of it by more
	// than the monotonic time elapsed) before it is a clock fault;
	// default DefaultClockTolerance.
	ClockTolerance time.Duration
	// ClockRestartStep is how far ahead of the trusted-time high-water
	// mark a synchronised clock may read in a new boot (after a restart
	// nothing measures the time the register was off), beyond the time
	// since the boot started, before it is a clock fault; default
	// DefaultClockRestartStep.
	ClockRestartStep time.Duration
	// Rules is the rule set to use when the file holds none or an older
	// one. A newer rule set stored in the file (SetRules) wins.
	Rules *rules.RuleSet
	// Engine overrides Rules with any points engine (tests, simulations).
	// It is not persisted.
	Engine Engine
	// OfflineRedeemLimit is the most points one member may redeem at this
	// register while head office is unreachable, counted since the last
	// head-office summary that covered them (see the package doc). Zero
	// means no redemption at all while offline.
	OfflineRedeemLimit Points
	// ReadOnly opens the file without writing (shared lock); every write
	// returns ErrReadOnly.
	ReadOnly bool
	// MaxBatch bounds how many queued operations the committer merges into
	// one transaction; default 256.
	MaxBatch int
	// GroupDelay bounds how long after a commit the committer waits for
	// more operations when that commit showed more concurrent callers than
	// have arrived (see "Group commit" in the package doc); default
	// DefaultGroupDelay, negative never waits. A lone caller never waits.
	GroupDelay time.Duration
	// Logger receives rare operational messages; default: discard.
	Logger *slog.Logger
	// KeepConfirmedFor is how long an event stays in the outbox after head
	// office confirmed it, so a head office restored from an older backup
	// can ask for it again; default DefaultKeepConfirmedFor (14 days),
	// negative forgets confirmed events at once. Age is judged only on a
	// trusted clock. KeepConfirmedBytes bounds what is kept (the oldest go
	// first); default DefaultKeepConfirmedBytes (64 MiB).
	KeepConfirmedFor   time.Duration
	KeepConfirmedBytes int64
	// A write is acknowledged once it is synced to the sale log beside the
	// file ("<path>.salelog", SaleLogSize bytes, default
	// DefaultSaleLogSize), and the file is committed for many batches at
	// once, at the latest SaleLogInterval (default
	// DefaultSaleLogInterval) after the first (salelog.go). NoSaleLog
	// commits the file for every batch instead (two fdatasyncs and about
	// nine pages a sale) and removes the log; Open applies a log a crash
	// left either way.
	NoSaleLog       bool
	SaleLogSize     int64
	SaleLogInterval time.Duration
}

// Ledger is an open ledger file. Its methods are safe for concurrent use;
// writes are merged into group commits by one committer goroutine.
type Ledger struct {
	path     string
	db       *bolt.DB
	register string
	clock    clock.Clock
	ck       clockKeeper
	log      *slog.Logger
	limit    Points
	keep     keepPolicy
	readOnly bool
	maxBatch int

	// Group commit, used by the committer goroutine only (collect): how
	// long after a commit it may wait for a batch to fill, how many
	// callers the last committed batch showed, and when it committed.
	groupDelay time.Duration
	expect     int
	lastCommit time.Time
	// groupWait, when set (tests), runs as collect begins a timed wait
	// for callers.
	groupWait func()

	engine atomic.Pointer[engineBox] // rules in force; swapped by SetRules
	closed atomic.Bool

	queue  chan *op
	stop   chan struct{}
	done   chan struct{}
	notify chan struct{}

	// Space reserve, used by the committer goroutine only.
	pre           *os.File // write handle for zero-filling ahead of bbolt
	batches       uint64   // batches run, to space out reserve checks
	reserveFailed bool
	// The reserve's fdatasync runs off the committer's path
	// (reserveSyncer): presync asks for one, presyncDone closes when the
	// syncer has stopped, presyncFailed is set when a sync failed.
	presync       chan struct{}
	presyncDone   chan struct{}
	presyncFailed atomic.Bool

	// broken is set when a failed commit left the open file
	// untrustworthy; every later write gets it (ErrStorage).
	broken atomic.Pointer[error]

	// win holds members' rolling windows as committed (window.go),
	// so a sale reads what left the window since, not the whole year.
	win winCaches

	commits   atomic.Uint64 // batches committed (or logged) by the committer
	committed atomic.Uint64 // operations they carried

	// Sale log (salelog.go). slog is nil with Options.NoSaleLog; the
	// rest but pendingN belongs to the committer goroutine.
	slog      *saleLog
	slogEvery time.Duration
	open      *bolt.Tx     // the transaction the pending batches are in
	pending   [][]logWrite // batches logged since the last checkpoint
	pendingW  int          // the writes (rows put or deleted) in pending
	ckTimer   *time.Timer  // runs out an interval after the first of them (armCheckpoint)
	pendingN  atomic.Int64 // len(pending), for view
	reads     chan *readReq
	excl      chan *exclReq
	// checkpoints counts the commits that carried pending batches.
	checkpoints atomic.Uint64
	// untimed counts the rows of bPending (ClockStatus), as committed or
	// logged.
	untimed atomic.Int64
}

// Bucket names.
var (
	bMeta = []byte("meta")
	// bMembers held the member records until schema 7 (upgrade6 moves
	// them into bRows).
	bMembers = []byte("members")
	bAliases = []byte("aliases")
	bSales   = []byte("sales")
	bOps     = []byte("ops")
	// bRows holds every per-member row: point events, expiry lots and
	// purchase index entries, keyed "<member>\x00<kind><seq>" so that a
	// member's rows share leaf pages and a sale dirties few pages.
	bRows      = []byte("rows")
	bOutbox    = []byte("outbox")
	bCatalogue = []byte("catalogue")
	// bExpiry held the expiry index until schema 7, which keeps it at
	// the start of bRows (expiryKey).
	bExpiry = []byte("expiry")
	// bPending holds the events stamped by an untrusted clock whose time
	// has not been corrected yet, keyed by sequence number.
	bPending = []byte("untimed")
	// bState holds what every commit rewrites (the last sequence number,
	// the confirmed watermark, the counters, the trusted-time mark). It
	// stays a few hundred bytes, so bbolt keeps it inline in the root
	// page a commit writes anyway: no page of its own per commit.
	bState = []byte("state")

	allBuckets = [][]byte{bMeta, bAliases, bSales, bOps, bRows, bOutbox, bCatalogue, bPending, bState}

	// hotKeys move from meta to state in schema 6.
	hotKeys = [][]byte{kSeq, kConfirmed, kCounts, kClock, kKept}

	kSchema    = []byte("schema")
	kSeq       = []byte("seq")
	kConfirmed = []byte("confirmed")
	kRules     = []byte("rules")
	kCatVer    = []byte("catalogue_version")
	kCounts    = []byte("counts")
	// kIncarnation is this ledger's incarnation id (see Incarnation).
	kIncarnation = []byte("incarnation")
	// kRegister is the register id whose events this ledger records (see
	// bindRegister).
	kRegister = []byte("register")
)

// Open opens or creates the ledger at path. A file locked by another
// process gives ErrLocked after opts.LockTimeout; a file written by a newer
// program gives ErrSchemaTooNew; a file that is not a valid ledger gives
// ErrCorrupt. In those cases the file is not modified.
func Open(path string, opts *Options) (*Ledger, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	o.Clock = clock.Or(o.Clock)
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.GroupDelay == 0 {
		o.GroupDelay = DefaultGroupDelay
	}
	if o.ClockTolerance <= 0 {
		o.ClockTolerance = DefaultClockTolerance
	}
	if o.ClockRestartStep <= 0 {
		o.ClockRestartStep = DefaultClockRestartStep
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OfflineRedeemLimit < 0 {
		return nil, fmt.Errorf("ledger open %s: offline redeem limit %d is negative: %w", path, o.OfflineRedeemLimit, ErrInvalid)
	}
	if !o.ReadOnly {
		if err := validID("register", o.Register); err != nil {
			return nil, fmt.Errorf("ledger open %s: %w", path, err)
		}
	}
	fresh := false
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fresh = true
	} else if err != nil {
		return nil, fmt.Errorf("ledger open: %w", err)
	} else if fi.Size() == 0 {
		// An empty file is what a power cut during the very first
		// initialisation leaves; it holds no data, so treat it as new.
		fresh = !o.ReadOnly
	}
	db, err := openBolt(path, &o)
	if err != nil {
		return nil, openError(path, err)
	}
	l := &Ledger{
		path: path, db: db, register: o.Register, clock: o.Clock, log: o.Logger,
		limit: o.OfflineRedeemLimit, readOnly: o.ReadOnly, maxBatch: o.MaxBatch,
		groupDelay: o.GroupDelay,
		queue:      make(chan *op, 1024), stop: make(chan struct{}), done: make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	l.ck.tol, l.ck.restart = o.ClockTolerance, o.ClockRestartStep
	l.keep = keepPolicy{For: o.KeepConfirmedFor, Bytes: o.KeepConfirmedBytes}
	if l.keep.For == 0 {
		l.keep.For = DefaultKeepConfirmedFor
	}
	if l.keep.Bytes <= 0 {
		l.keep.Bytes = DefaultKeepConfirmedBytes
	}
	if err := l.replaySaleLog(!o.NoSaleLog); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := l.init(fresh, &o); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bPending); b != nil {
			l.untimed.Store(int64(b.Stats().KeyN))
		}
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ledger open %s: %w", path, err)
	}
	if !o.ReadOnly {
		// bbolt syncs the file it creates but not its directory entry:
		// without this, a power cut can take a new ledger, and every
		// sale acknowledged in it, away.
		if err := durable.SyncDir(filepath.Dir(path)); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("ledger open %s: %w", path, err)
		}
		if !o.NoSaleLog {
			// A new commit id: every cycle of this run continues a file
			// state no earlier run continued, so no record an earlier
			// run left in the log (the same file restored from a backup
			// and opened twice) can pass for one of this run's.
			if err := l.db.Update(sealCommit); err != nil {
				_ = db.Close()
				return nil, fmt.Errorf("ledger open %s: %w", path, ioError(err))
			}
		}
		// Best effort: without it the ledger works, only commits into
		// fresh (sparse) file space cost a little more.
		if fh, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			l.pre = fh
			l.presync, l.presyncDone = make(chan struct{}, 1), make(chan struct{})
			go l.reserveSyncer()
			l.reserve()
		}
		if !o.NoSaleLog {
			if o.SaleLogSize <= 0 {
				o.SaleLogSize = DefaultSaleLogSize
			}
			l.slogEvery = o.SaleLogInterval
			if l.slogEvery <= 0 {
				l.slogEvery = DefaultSaleLogInterval
			}
			sl, err := openSaleLog(saleLogName(path), o.SaleLogSize)
			if err != nil {
				// Without the log every batch is a commit, as before.
				l.log.Warn("no sale log: every sale waits for a commit of the ledger file", "err", err)
			} else {
				l.slog = sl
				l.reads, l.excl = make(chan *readReq), make(chan *exclReq)
			}
		}
	}
	go l.committer()
	return l, nil
}

// openBolt opens the bbolt file. NoFreelistSync: a commit does not write
// bbolt's list of free pages (one page of the about nine a sale
// writes after schema 8); a read-write open rebuilds it instead by walking every
// page reachable from the meta page, as etcd does. Durability is the
// same: a commit is its data pages and its meta page, and the free pages
// are whatever the meta page's tree does not reach, so a power cut loses
// nothing a rebuilt list would not find again. What it costs is the walk
// at open after a power cut or a crash (Close writes the list, so a
// clean restart reads it: BenchmarkBigLedger's open_ms and
// open_after_crash_ms), and bbolt panics when that walk meets a damaged
// page, which is a corrupt file here like any other.
func openBolt(path string, o *Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %v", berrors.ErrInvalid, r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, ReadOnly: o.ReadOnly, NoFreelistSync: true})
}

func openError(path string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("ledger open %s: another process (a second loyaltyd?) holds the file: %w", path, ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return corruptError(path, err)
	}
	return fmt.Errorf("ledger open %s: %w", path, err)
}

func corruptError(path string, cause error) error {
	return fmt.Errorf("ledger open %s: %w (%v); the file was not modified: stop loyaltyd, keep this file for support, restore the latest backup, then run `loyaltyctl ledger verify`", path, ErrCorrupt, cause)
}

// init checks (or, for a fresh file, writes) the schema, then loads the
// rules. It writes nothing unless the file is fresh or a newer rule set was
// passed in, so a refused file stays byte-identical.
func (l *Ledger) init(fresh bool, o *Options) (err error) {
	defer func() {
		if r := recover(); r != nil {
			// bbolt panics on some damaged pages; never let that start a
			// daemon on a broken file.
			err = corruptError(l.path, fmt.Errorf("panic reading file: %v", r))
		}
	}()
	var schema uint64
	var owner fileOwner
	var haveMeta bool
	var stored []byte
	var upgrade bool
	err = l.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bMeta)
		if m == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return corruptError(l.path, errors.New("meta bucket missing"))
			}
			return nil
		}
		haveMeta = true
		v := m.Get(kSchema)
		if len(v) != 8 {
			return corruptError(l.path, errors.New("schema version missing"))
		}
		schema = binary.BigEndian.Uint64(v)
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil && schema == SchemaVersion {
				return corruptError(l.path, fmt.Errorf("bucket %s missing", b))
			}
		}
		upgrade = schema < SchemaVersion
		if r := m.Get(kRules); r != nil {
			stored = append([]byte(nil), r...)
		}
		var err error
		owner, err = registerOf(tx, schema == SchemaVersion)
		if err != nil {
			return corruptError(l.path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Before anything writes (an upgrade included): a file of another
	// register is left untouched.
	if !l.readOnly && owner.id != "" && owner.id != l.register {
		return fmt.Errorf("ledger open %s: it records the sales of register %q, and this one is %q (register.id): "+
			"a ledger copied from another register, or register.id changed under it; start this register with its own "+
			"ledger (move the file aside; its events can be read with loyaltyctl -ledger FILE export events), or with %q's config: %w",
			l.path, owner.id, l.register, owner.id, ErrOtherRegister)
	}
	if haveMeta && schema > SchemaVersion {
		return fmt.Errorf("ledger open %s: file has schema %d, this program understands up to %d; upgrade loyaltyd: %w", l.path, schema, SchemaVersion, ErrSchemaTooNew)
	}
	if haveMeta && schema < 1 {
		return fmt.Errorf("ledger open %s: unknown schema %d: %w", l.path, schema, ErrSchemaTooNew)
	}
	if upgrade && l.readOnly && schema >= 8 {
		// Schemas 9 to 11 only add what they can work out from an older
		// file (a summary's base, head office's bonus state, the sale
		// log: layout.go), so a schema 8 to 10 file is read as it is.
		upgrade = false
	}
	if upgrade && haveMeta && schema <= SchemaVersion && schema >= 1 {
		if l.readOnly {
			return fmt.Errorf("ledger open %s: file has schema %d; open it once read-write to upgrade it: %w", l.path, schema, ErrReadOnly)
		}
		err := l.db.Update(func(tx *bolt.Tx) error {
			if schema == 1 {
				if err := upgrade1(tx); err != nil {
					return err
				}
			}
			if schema <= 2 {
				if err := upgrade2(tx); err != nil {
					return err
				}
			}
			if schema <= 3 {
				if err := upgrade3(tx); err != nil {
					return err
				}
			}
			if schema <= 4 {
				if err := upgrade4(tx); err != nil {
					return err
				}
			}
			if err := upgrade5(tx); err != nil {
				return err
			}
			if schema <= 6 {
				if err := upgrade6(tx); err != nil {
					return err
				}
			}
			if schema <= 7 {
				if err := upgrade7(tx); err != nil {
					return err
				}
			}
			return tx.Bucket(bMeta).Put(kSchema, u64(SchemaVersion))
		})
		if err != nil {
			return fmt.Errorf("ledger open %s: upgrade: %w", l.path, ioError(err))
		}
	}
	if !haveMeta {
		if !fresh {
			if l.readOnly {
				return corruptError(l.path, errors.New("no ledger data in file"))
			}
			// A bbolt file with no buckets at all: the first
			// initialisation was cut short. Nothing to lose.
		}
		if l.readOnly {
			return fmt.Errorf("ledger open %s: no ledger yet: %w", l.path, ErrReadOnly)
		}
		err = l.db.Update(func(tx *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			if err := addCounts(tx, counts{}); err != nil {
				return err
			}
			if err := tx.Bucket(bMeta).Put(kIncarnation, []byte(NewIncarnation())); err != nil {
				return err
			}
			if err := tx.Bucket(bMeta).Put(kRegister, []byte(o.Register)); err != nil {
				return err
			}
			return tx.Bucket(bMeta).Put(kSchema, u64(SchemaVersion))
		})
		if err != nil {
			return fmt.Errorf("ledger open %s: initialise: %w", l.path, ioError(err))
		}
	}
	if !l.readOnly && haveMeta && !owner.kept {
		if err := l.keepRegister(); err != nil {
			return err
		}
	}
	// Rules: the newest of stored and passed-in wins; Engine overrides.
	var eng Engine
	var storedRS *rules.RuleSet
	if stored != nil {
		storedRS = new(rules.RuleSet)
		if err := jsonUnmarshal(stored, storedRS); err != nil {
			return corruptError(l.path, fmt.Errorf("stored rules: %w", err))
		}
	}
	switch {
	case o.Engine != nil:
		eng = o.Engine
	case o.Rules != nil && (storedRS == nil || o.Rules.Version > storedRS.Version):
		if err := o.Rules.Validate(); err != nil {
			return fmt.Errorf("ledger open %s: rules: %w", l.path, err)
		}
		eng = RuleSetEngine(o.Rules)
		if !l.readOnly {
			b, err := jsonMarshal(o.Rules)
			if err != nil {
				return fmt.Errorf("ledger open %s: rules: %w", l.path, err)
			}
			if err := l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kRules, b) }); err != nil {
				return fmt.Errorf("ledger open %s: store rules: %w", l.path, ioError(err))
			}
		}
	case storedRS != nil:
		eng = RuleSetEngine(storedRS)
	default:
		eng = noRules{}
	}
	l.engine.Store(&engineBox{eng})
	return l.db.View(func(tx *bolt.Tx) error {
		a, err := loadAnchor(tx)
		if err != nil {
			return corruptError(l.path, err)
		}
		l.ck.a = a
		return nil
	})
}

// Close stops the committer after the queued operations and closes the
// file. Later calls return ErrClosed.
func (l *Ledger) Close() error {
	if l.closed.Swap(true) {
		return ErrClosed
	}
	close(l.stop)
	<-l.done
	if l.pre != nil {
		// The committer has stopped: nothing asks for a sync any more.
		close(l.presync)
		<-l.presyncDone
		_ = l.pre.Close()
	}
	if !l.readOnly && l.broken.Load() == nil && len(l.pending) == 0 {
		// A clean stop leaves bbolt's free list in the file (one
		// commit that writes it), so the next Open reads it instead of
		// walking the file; only an Open after a power cut or a crash
		// walks (openBolt). The field is set inside the write
		// transaction: a free-page scrub (an erasure's last step, on
		// its caller's goroutine) may be committing meanwhile, and
		// bbolt reads it in Commit under the same writer lock.
		_ = l.db.Update(func(*bolt.Tx) error {
			l.db.NoFreelistSync = false
			return nil
		})
	}
	if l.slog != nil {
		if len(l.pending) == 0 {
			// Every batch is in the file: see spendSaleLog.
			if err := spendSaleLog(l.slog.f); err != nil {
				l.log.Warn("sale log not marked spent: a backup restored over this ledger could get its last batches again", "err", err)
			}
		}
		_ = l.slog.close()
	}
	return l.db.Close()
}

// Path is the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Register is the register id this ledger writes events for.
func (l *Ledger) Register() string { return l.register }

// ioError maps a disk-full failure to ErrNoSpace, keeping the cause.
func ioError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	// bbolt formats some causes with %s ("file resize error: ..."), which
	// drops the errno; fall back to its text.
	msg := err.Error()
	for _, e := range []syscall.Errno{syscall.ENOSPC, syscall.EFBIG, syscall.EDQUOT} {
		if strings.Contains(msg, e.Error()) {
			return fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
	}
	return err
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Row kinds in bRows.
const (
	rowEvent    byte = 'e'
	rowLot      byte = 'l'
	rowPurchase byte = 'p'
	// rowExpired holds the points expired from the lot of that sequence
	// number (8-byte big-endian): a refund of the earn behind the lot
	// reverses only what did not expire.
	rowExpired byte = 'x'
	// rowWindow (window.go) is a day row of the rolling 12-month window.
	// rowMemberRec is the member's record (memberRec), sequence 0: it
	// sits with the member's rows, so a sale rewrites it in the leaf it
	// writes them into (schema 7).
	rowMemberRec byte = 'm'
)

// memberKey is the key of a member's record in bRows.
func memberKey(id string) []byte { return rowKey(rowMemberRec, id, 0) }

// upgrade6 migrates a schema 6 file to 7: the member records and the
// expiry index move from their own buckets to the rows bucket. (Event
// rows need no change: JSON rows read alike.)
func upgrade6(tx *bolt.Tx) error {
	rows := tx.Bucket(bRows)
	if members := tx.Bucket(bMembers); members != nil {
		err := members.ForEach(func(k, v []byte) error {
			return rows.Put(memberKey(string(k)), slices.Clone(v))
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bMembers); err != nil {
			return err
		}
	}
	if idx := tx.Bucket(bExpiry); idx != nil {
		err := idx.ForEach(func(k, _ []byte) error {
			return rows.Put(append([]byte{0}, k...), nil)
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bExpiry); err != nil {
			return err
		}
	}
	return nil
}

// The migrations before schema 7 read and write member records where
// the file keeps them: their own bucket in a file written before schema
// 7, the rows bucket in one a test wrote with this layout and then
// labelled older.
func getMemberRaw(tx *bolt.Tx, id string) []byte {
	if b := tx.Bucket(bMembers); b != nil {
		return b.Get([]byte(id))
	}
	return tx.Bucket(bRows).Get(memberKey(id))
}

func putMemberRaw(tx *bolt.Tx, id string, v []byte) error {
	if b := tx.Bucket(bMembers); b != nil {
		return b.Put([]byte(id), v)
	}
	return tx.Bucket(bRows).Put(memberKey(id), v)
}

func countMembers(tx *bolt.Tx) int {
	if b := tx.Bucket(bMembers); b != nil {
		return b.Stats().KeyN
	}
	n := 0
	_ = forEachMemberRow(tx, func(string, []byte) error { n++; return nil })
	return n
}

// forEachMemberRow calls fn with every member's id and record, in id
// order, seeking from one member's rows to the next.
func forEachMemberRow(tx *bolt.Tx, fn func(id string, v []byte) error) error {
	c := tx.Bucket(bRows).Cursor()
	for k, _ := c.Seek([]byte{1}); k != nil; { // after the expiry index
		if len(k) < 10 {
			k, _ = c.Next()
			continue
		}
		id := rowMember(k)
		if mk, v := c.Seek(memberKey(id)); mk != nil && bytes.Equal(mk, memberKey(id)) {
			if err := fn(id, v); err != nil {
				return err
			}
		}
		k, _ = c.Seek(append([]byte(id), 1))
	}
	return nil
}

// rowKey builds "<member id>\x00<kind><seq>": one member's rows sit
// together, each kind in sequence order. Ids contain no NUL.
func rowKey(kind byte, id string, seq uint64) []byte {
	return appendRowKey(make([]byte, 0, len(id)+2+8), kind, id, seq)
}

// appendRowKey appends rowKey(kind, id, seq) to b.
func appendRowKey(b []byte, kind byte, id string, seq uint64) []byte {
	b = append(b, id...)
	b = append(b, 0, kind)
	return binary.BigEndian.AppendUint64(b, seq)
}

// rowPrefix is the prefix of one member's rows of one kind.
func rowPrefix(kind byte, id string) []byte {
	k := make([]byte, len(id)+2)
	copy(k, id)
	k[len(id)+1] = kind
	return k
}

// rowMember and rowKind take a row key apart.
func rowMember(k []byte) string { return string(k[:len(k)-10]) }
func rowKind(k []byte) byte     { return k[len(k)-9] }

// BackupSizer is a writer that wants to know the size of a backup before
// Backup writes it (an HTTP response's length header, a progress bar).
type BackupSizer interface {
	BackupSize(n int64)
}

// Backup writes a consistent copy of the open ledger to w: a checkpoint
// first (every acknowledged write in the file; on a full disk with writes
// pending in the sale log it fails with ErrNoSpace), then a read
// transaction, so writers wait only for the checkpoint. If w is a
// BackupSizer, Backup tells it how many bytes it is about to write (the
// file's size without the space reserved after it).
func (l *Ledger) Backup(w io.Writer) (int64, error) {
	var n int64
	err := l.viewCommitted(func(tx *bolt.Tx) error {
		if s, ok := w.(BackupSizer); ok {
			s.BackupSize(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("ledger backup: %w", err)
	}
	return n, nil
}

// view runs fn in a read transaction that sees every acknowledged write:
// with batches pending in the sale log, the committer's open transaction
// (salelog.go). fn must not call view again.
func (l *Ledger) view(fn func(tx *bolt.Tx) error) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.pendingN.Load() > 0 {
		r := &readReq{fn: fn, done: make(chan error, 1)}
		select {
		case l.reads <- r:
			return <-r.done
		case <-l.done:
			// Stopped: its last checkpoint is in the file.
		}
	}
	return l.db.View(fn)
}

func (l *Ledger) eng() Engine {
	return l.engine.Load().Engine
}

// engineBox lets an interface value live in an atomic.Pointer.
type engineBox struct{ Engine }

// upgrade1 migrates a schema 1 file: the events, lots and purchases
// buckets become rows of bRows, the expiry index and the counters are
// built from them.
func upgrade1(tx *bolt.Tx) error {
	rows, err := tx.CreateBucketIfNotExists(bRows)
	if err != nil {
		return err
	}
	for _, old := range []struct {
		name string
		kind byte
	}{{"events", rowEvent}, {"lots", rowLot}, {"purchases", rowPurchase}} {
		b := tx.Bucket([]byte(old.name))
		if b == nil {
			continue
		}
		err := b.ForEach(func(k, v []byte) error {
			if len(k) < 9 {
				return fmt.Errorf("%s key %q too short", old.name, k)
			}
			return rows.Put(rowKey(old.kind, string(k[:len(k)-9]), keySeq(k)), slices.Clone(v))
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket([]byte(old.name)); err != nil {
			return err
		}
	}
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if tx.Bucket(bExpiry) != nil {
		if err := tx.DeleteBucket(bExpiry); err != nil {
			return err
		}
	}
	c := counts{Members: int64(countMembers(tx)), Sales: int64(tx.Bucket(bSales).Stats().KeyN)}
	err = rows.ForEach(func(k, v []byte) error {
		if k[0] != 0 && rowKind(k) == rowEvent { // (the expiry index is built by upgrade7)
			c.Events++
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, b := range [][]byte{bMeta, bState} {
		if err := tx.Bucket(b).Delete(kCounts); err != nil {
			return err
		}
	}
	return addCounts(tx, c)
}

// upgrade2 migrates a schema 2 file to 3: the untimed bucket, and the
// expired-points rows built from the expire events (each names the lot it
// expired), so a refund of an expired earn reverses only what is left.
func upgrade2(tx *bolt.Tx) error {
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	rows := tx.Bucket(bRows)
	expired := map[string]Points{}
	err := rows.ForEach(func(k, v []byte) error {
		if rowKind(k) != rowEvent {
			return nil
		}
		var ev PointEvent
		if err := decodeEventRow(k, v, &ev); err != nil {
			return err
		}
		if ev.Kind != KindExpire {
			return nil
		}
		i := strings.LastIndexByte(ev.Reverses, '-')
		seq, err := strconv.ParseUint(ev.Reverses[i+1:], 10, 64)
		if i < 0 || err != nil {
			return fmt.Errorf("expire event %q names lot %q", k, ev.Reverses)
		}
		expired[string(rowKey(rowExpired, rowMember(k), seq))] -= ev.Points
		return nil
	})
	if err != nil {
		return err
	}
	for k, p := range expired {
		if err := rows.Put([]byte(k), u64(uint64(p))); err != nil {
			return err
		}
	}
	return nil
}

// fileOwner is the register whose events a ledger file records: kept in
// its meta bucket (kept), or, in a file written before it was kept, named
// by its sales; empty when neither says.
type fileOwner struct {
	id   string
	kept bool
}

// registerOf reads whose events the file records. A sale that does not
// decode is corruption in a file of this schema (current); in an older
// one, not yet upgraded, it says nothing.
func registerOf(tx *bolt.Tx, current bool) (fileOwner, error) {
	if id := tx.Bucket(bMeta).Get(kRegister); len(id) > 0 {
		return fileOwner{id: string(id), kept: true}, nil
	}
	b := tx.Bucket(bSales)
	if b == nil {
		return fileOwner{}, nil
	}
	k, v := b.Cursor().First()
	if k == nil {
		return fileOwner{}, nil
	}
	var sr saleRec
	err := decodeSaleRow(v, &sr)
	var sale Sale
	if err == nil {
		sale, err = sr.sale()
	}
	switch {
	case err == nil:
		return fileOwner{id: sale.Register}, nil
	case current:
		return fileOwner{}, fmt.Errorf("sale %q: %w", k, err)
	}
	return fileOwner{}, nil
}

// keepRegister records in the file the register opening it read-write
// (its owner already checked): a file written before the id was kept.
func (l *Ledger) keepRegister() error {
	err := l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kRegister, []byte(l.register)) })
	if err != nil {
		return fmt.Errorf("ledger open %s: record its register: %w", l.path, ioError(err))
	}
	return nil
}

// upgrade3 migrates a schema 3 file to 4: it gives the ledger an
// incarnation. Head office treats the first incarnation it sees from a
// register whose events so far came without one (the legacy incarnation)
// as that ledger carrying on (docs/protocol.md "Incarnations").
func upgrade3(tx *bolt.Tx) error {
	m := tx.Bucket(bMeta)
	if len(m.Get(kIncarnation)) == 0 {
		return m.Put(kIncarnation, []byte(NewIncarnation()))
	}
	return nil
}

// Space reserve. bbolt grows its file with truncate, which leaves holes;
// a commit that writes into a hole makes the filesystem allocate blocks,
// and fdatasync must then commit the allocation (a journal write on ext4)
// besides the data. Keeping some zero-filled, already allocated space
// beyond bbolt's high-water mark lets most commits be plain overwrites.
// bbolt reads the file size before it grows and never shrinks the file,
// and only the committer writes, so the zero-fill never races a commit.
// The committer does not wait for the fdatasync that makes the zeros
// durable (27-547 us, and several ms on a busy disk, measured by hand with
// temporary timing): a goroutine
// of its own runs it (reserveSyncer), and until it has, a commit's own
// fdatasync commits the allocation as it did before there was a reserve.
// The reserve scales with the data (a quarter of it, 64 KiB to 2 MiB), so
// a new ledger does not start with megabytes of zeros; it is refilled when
// less than half of it is left.
const (
	reserveMin = 64 << 10
	reserveMax = 2 << 20
)

func (l *Ledger) reserve() {
	if l.pre == nil || l.reserveFailed || l.presyncFailed.Load() {
		return
	}
	fi, err := l.pre.Stat()
	if err != nil {
		return
	}
	var hwm int64
	_ = l.db.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil })
	size := fi.Size()
	want := min(max(hwm/4, reserveMin), reserveMax)
	if size-hwm >= want/2 {
		return
	}
	zero := make([]byte, 64<<10)
	for off := size; off < hwm+want; off += int64(len(zero)) {
		if _, err := l.pre.WriteAt(zero, off); err != nil {
			// A full disk: stop trying until the next Open; the space
			// bbolt needs is bbolt's business.
			l.reserveFailed = true
			l.log.Warn("cannot reserve space ahead of the ledger", "err", err)
			_ = l.pre.Truncate(max(size, hwm))
			return
		}
	}
	// A sync already asked for and not yet begun covers these writes too.
	select {
	case l.presync <- struct{}{}:
	default:
	}
}

// reserveSyncer makes the reserve's zeros durable each time reserve asks,
// until Close. A failed sync stops the reserve until the next Open.
func (l *Ledger) reserveSyncer() {
	defer close(l.presyncDone)
	for range l.presync {
		if err := syscall.Fdatasync(int(l.pre.Fd())); err != nil {
			l.presyncFailed.Store(true)
		}
	}
}

// DefaultGroupDelay is Options.GroupDelay's default. In BenchmarkGroupCommit
// (16 callers, load 11 on 2 cores) the callers a commit answered were back
// 80-320 us after it, and a commit took 1-5 ms (measured by hand with
// temporary timing, not a benchmark's output); a wait that runs out (a
// caller stopped trading) costs at most this once.
const DefaultGroupDelay = time.Millisecond
