package ledger

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/durable"
)

// Sale log (unless Options.NoSaleLog).
//
// A bbolt commit makes two fdatasyncs (its data pages, then the meta page
// that makes them current) and writes every page it dirtied: about nine
// for a sale (layout.go). With the sale log, the committer writes a
// batch's rows into the open bbolt transaction as before, but instead of
// committing it appends the batch's writes (bucket, key, value or delete,
// in order) as one record to a preallocated file beside the ledger,
// fdatasyncs that one file and answers the callers: one sync, and the
// pages the record covers (usually one). The bbolt transaction stays
// open and takes the next batches; it is committed (a checkpoint) when it
// holds saleLogMaxPending batches or saleLogMaxWrites rows written, when
// the log is half full, after Options.SaleLogInterval, before a long
// read or an unlogged write (catalogue staging), and at Close. Many sales then share one bbolt
// commit's pages and syncs.
//
// What is acknowledged is durable: a record is synced before its callers
// are answered. A crash or a power cut before the checkpoint leaves the
// acknowledged batches in the log; Open applies them, in order, to the
// file they were written against before anything else writes it
// (replaySaleLog). Each record starts on a 4 KiB block of its own and
// names its cycle: the bbolt transaction id the open transaction started
// from (bbolt's meta page) and the state id (stateID: the incarnation's
// hash and the random commit id every commit of the committer and every
// Open write), plus its index in the cycle and a CRC-32C. Open applies the
// records from the start of the log while they are intact and of the
// cycle that continues the file as it is (readSaleLog): an intact record
// or a header of another cycle, or the spent mark a clean Close leaves,
// ends it; a record that is not intact ends it too, unless an intact
// record of the same cycle follows (then it was acknowledged and is
// damaged: ErrCorrupt). So a log is applied only to the very state it
// continues, never to another file nor twice (a restored backup, a ledger
// rebuilt from the replica, another register's ledger).
//
// Readers see what was acknowledged: while batches wait for their
// checkpoint, Ledger.view runs its function in the committer's open
// transaction (serveRead), after the batch being synced; the long reads
// (backup, check, exports) ask for a checkpoint first and read the file
// as bbolt committed it (viewCommitted); what only committed ops write
// (the catalogue) is read from the file directly (viewFile).
//
// The log's size is fixed when it is created and its blocks are written
// once with zeros, so an append overwrites allocated blocks: fdatasync
// then has no file size nor block map to make durable, and a full disk
// cannot fail an append.

// saleLogName is the log's file name beside the ledger.
func saleLogName(path string) string { return path + ".salelog" }

const (
	// DefaultSaleLogSize is Options.SaleLogSize's default.
	DefaultSaleLogSize = 4 << 20
	// DefaultSaleLogInterval is Options.SaleLogInterval's default. A
	// register selling a sale a minute makes one checkpoint for about
	// five. In review13's powerfs counts (64 sales offline), a sale alone
	// in its checkpoint cost 3.02 fdatasyncs and 9.95 pages (a commit of
	// its own, NoSaleLog: 2.02 and 9.17), four to a checkpoint 1.52 and
	// 4.25, sixteen 1.16 and 2.64;
	// the 512-batch, row and half-log bounds cap the memory held (about
	// 4 MiB) and what Open replays after a crash.
	DefaultSaleLogInterval = 5 * time.Minute
	// saleLogMaxPending bounds the batches one checkpoint carries (and
	// the rows the open transaction holds in memory).
	saleLogMaxPending = 512
	// saleLogMaxWrites bounds the rows written (put or deleted) one
	// checkpoint carries. bbolt splits a leaf only when it commits: every
	// row inserted before then goes into the same in-memory node, and an
	// insert moves the node's entries after it (node.put), so a long
	// cycle's inserts cost in proportion to the rows already pending in
	// their leaf. Under 16 callers, whose batches of ~15 sales reach
	// neither bound above for thousands of sales, that move was 28% of
	// all CPU (BenchmarkGroupCommit); this bound cut the committer's CPU
	// per sale by about a quarter. A sale writes about fifteen rows: one
	// checkpoint for about 270 sales (TestSaleLogCheckpoints).
	saleLogMaxWrites = 4096

	slMagic  = 0x534c4732 // "SLG2" (records on blocks of their own)
	slSpent  = 0x534c4730 // "SLG0": the log's records are all in the file
	slHeader = 4 + 4 + 8 + 8 + 4 + 4
	// slPage: every record starts on a block of its own, so an append
	// never rewrites a block holding an acknowledged record (a torn
	// write of a shared block could damage it), and Open can look for
	// records after a damaged one (readSaleLog).
	slPage = 4096
)

var errLogFull = errors.New("sale log full")

// logWrite is one write of a batch: a put, or a delete when del is set,
// into a top-level bucket.
type logWrite struct {
	bucket, key, val []byte
	del              bool
}

// saleLog is the open log file; the committer alone uses it.
type saleLog struct {
	f    *os.File
	size int64
	off  int64  // where the next record goes
	base uint64 // bbolt transaction id the cycle continues
	inc  uint64 // the cycle's state id (stateID)
	idx  uint32 // next record's index in the cycle
	buf  []byte
	// pages counts the 4 KiB blocks appends covered; appends the records.
	pages, appends uint64
}

// openSaleLog opens (creating and zero-filling it if needed) the log at
// name with at least size bytes.
func openSaleLog(name string, size int64) (*saleLog, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sale log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sale log: %w", err)
	}
	if fi.Size() < size {
		if err := zeroFill(f, fi.Size(), size); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("sale log: %w", ioError(err))
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("sale log: %w", ioError(err))
		}
		if err := durable.SyncDir(filepath.Dir(name)); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("sale log: %w", err)
		}
	} else {
		size = fi.Size()
	}
	return &saleLog{f: f, size: size}, nil
}

// zeroFill writes zeros over [from, to) of f, 64 KiB at a time.
func zeroFill(f *os.File, from, to int64) error {
	zero := make([]byte, 64<<10)
	for off := from; off < to; off += int64(len(zero)) {
		if _, err := f.WriteAt(zero[:min(int64(len(zero)), to-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// start begins a cycle continuing bbolt transaction base of the file
// state inc (stateID): the next record goes to the start of the file.
func (s *saleLog) start(base uint64, inc uint64) {
	s.base, s.inc, s.idx, s.off = base, inc, 0, 0
}

// append writes ws as the cycle's next record and makes it durable.
// errLogFull: it does not fit (nothing written). A write error of a full
// disk is ErrNoSpace with nothing synced; any other error, or a failed
// sync, leaves the record's durability unknown (the caller stops writing).
func (s *saleLog) append(ws []logWrite) (synced bool, err error) {
	b := append(s.buf[:0], make([]byte, slHeader)...)
	for _, w := range ws {
		op := byte(1)
		if w.del {
			op = 2
		}
		b = append(b, op)
		b = binary.AppendUvarint(b, uint64(len(w.bucket)))
		b = append(b, w.bucket...)
		b = binary.AppendUvarint(b, uint64(len(w.key)))
		b = append(b, w.key...)
		if !w.del {
			b = binary.AppendUvarint(b, uint64(len(w.val)))
			b = append(b, w.val...)
		}
	}
	s.buf = b
	if s.off+int64(len(b)) > s.size {
		return false, errLogFull
	}
	binary.BigEndian.PutUint32(b[0:], slMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(len(b)-slHeader))
	binary.BigEndian.PutUint64(b[8:], s.base)
	binary.BigEndian.PutUint64(b[16:], s.inc)
	binary.BigEndian.PutUint32(b[24:], s.idx)
	crc := crc32.Checksum(b[:28], castagnoli)
	crc = crc32.Update(crc, castagnoli, b[slHeader:])
	binary.BigEndian.PutUint32(b[28:], crc)
	if _, err := s.f.WriteAt(b, s.off); err != nil {
		return false, ioError(err)
	}
	if err := syscall.Fdatasync(int(s.f.Fd())); err != nil {
		return true, err
	}
	blocks := (int64(len(b)) + slPage - 1) / slPage
	s.pages += uint64(blocks)
	s.appends++
	s.off += blocks * slPage
	s.idx++
	return true, nil
}

// used is how much of the log the cycle has filled.
func (s *saleLog) used() int64 { return s.off }

func (s *saleLog) close() error { return s.f.Close() }

// spendSaleLog makes the log's records inapplicable: its first record
// header becomes the spent mark (slSpent), synced. Their batches are in the file, and the file has
// moved on since; but a backup of the state the cycle continued still
// matches them, and a backup restored after a clean stop must open as
// it was taken, not with the sales after it.
func spendSaleLog(f *os.File) error {
	mark := make([]byte, slHeader)
	binary.BigEndian.PutUint32(mark, slSpent)
	if _, err := f.WriteAt(mark, 0); err != nil {
		return err
	}
	return syscall.Fdatasync(int(f.Fd()))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stateID names, with bbolt's transaction id, the file state a cycle
// continues: the incarnation's hash and the random commit id every commit
// of the committer writes (kCommitID, sealCommit). Two files can share an
// incarnation and a transaction id with different contents (a ledger
// rebuilt from a snapshot by replica.Restore reaches the txids the lost
// one had); they do not share a commit id.
func stateID(tx *bolt.Tx) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(tx.Bucket(bMeta).Get(kIncarnation))
	id := h.Sum64()
	if st := tx.Bucket(bState); st != nil {
		id ^= getU64(st, kCommitID)
	}
	return id
}

// kCommitID (in bState) is a random number every commit of the committer
// writes: see stateID.
var kCommitID = []byte("commit_id")

// sealCommit writes a new commit id into tx before the committer commits
// it.
func sealCommit(tx *bolt.Tx) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	return tx.Bucket(bState).Put(kCommitID, b[:])
}

// readSaleLog returns the batches of the cycle that continues bbolt
// transaction base of file state inc, in order: the records from the
// start of the log, one per block boundary, while their header matches and
// their CRC holds. It stops without looking further at a spent log
// (spendSaleLog) and at an intact record of another cycle (the end of
// this one: what follows is older). A record that is not intact (torn,
// damaged, never written) is the end of the cycle when it was the last
// one written (an append cut short was never answered); when a later
// record of the same cycle is intact, it was acknowledged and is damaged:
// ErrCorrupt, and the log is left alone. (A cycle is one: every commit
// writes a new commit id, and every Open one more, so no two cycles
// continue the same (base, inc).) A record whose CRC holds but whose
// writes do not decode is ErrCorrupt too.
func readSaleLog(r io.ReaderAt, size int64, base, inc uint64) ([][]logWrite, error) {
	const (
		intact = iota
		other  // an intact record of another cycle, or the spent mark
		broken // not a record: torn, damaged or never written
	)
	hdr := make([]byte, slHeader)
	// record reads the record at off: its body, its length in blocks and
	// whether it is intact and of this cycle with index idx (above idx
	// when later is set).
	record := func(off int64, idx uint32, later bool) ([]byte, int64, int, error) {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return nil, 0, broken, fmt.Errorf("sale log: %w", err)
		}
		if binary.BigEndian.Uint32(hdr[0:]) == slSpent {
			return nil, 0, other, nil
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		if binary.BigEndian.Uint32(hdr[0:]) != slMagic || n > size-off-slHeader {
			return nil, 0, broken, nil
		}
		if !later && (binary.BigEndian.Uint64(hdr[8:]) != base || binary.BigEndian.Uint64(hdr[16:]) != inc) {
			// A header naming another cycle, intact or with its body
			// torn (the first append of a later cycle cut short): this
			// cycle ended here. (Damage confined to these header bytes
			// of an acknowledged record would pass for it.)
			return nil, 0, other, nil
		}
		body := make([]byte, n)
		if _, err := r.ReadAt(body, off+slHeader); err != nil {
			return nil, 0, broken, fmt.Errorf("sale log: %w", err)
		}
		crc := crc32.Checksum(hdr[:28], castagnoli)
		if crc32.Update(crc, castagnoli, body) != binary.BigEndian.Uint32(hdr[28:]) {
			return nil, 0, broken, nil
		}
		got := binary.BigEndian.Uint32(hdr[24:])
		if binary.BigEndian.Uint64(hdr[8:]) != base || binary.BigEndian.Uint64(hdr[16:]) != inc ||
			(!later && got != idx) || (later && got <= idx) {
			return nil, 0, other, nil
		}
		return body, (slHeader + n + slPage - 1) / slPage * slPage, intact, nil
	}
	var out [][]logWrite
	var off int64
	for idx := uint32(0); off+slHeader <= size; idx++ {
		body, step, st, err := record(off, idx, false)
		if err != nil {
			return nil, err
		}
		if st == other {
			break
		}
		if st == broken {
			for o := off + slPage; o+slHeader <= size; o += slPage {
				if _, _, st, err := record(o, idx, true); err != nil {
					return nil, err
				} else if st == intact {
					return nil, fmt.Errorf("sale log record %d is damaged and acknowledged records follow it: %w", idx, ErrCorrupt)
				}
			}
			break
		}
		ws, err := decodeLogWrites(body)
		if err != nil {
			return nil, fmt.Errorf("sale log record %d: %w: %w", idx, ErrCorrupt, err)
		}
		out = append(out, ws)
		off += step
	}
	return out, nil
}

func decodeLogWrites(b []byte) ([]logWrite, error) {
	var ws []logWrite
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errors.New("bad length")
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, nil
	}
	for len(b) > 0 {
		op := b[0]
		b = b[1:]
		if op != 1 && op != 2 {
			return nil, fmt.Errorf("bad op %d", op)
		}
		var w logWrite
		var err error
		if w.bucket, err = field(); err != nil {
			return nil, err
		}
		if w.key, err = field(); err != nil {
			return nil, err
		}
		w.del = op == 2
		if !w.del {
			if w.val, err = field(); err != nil {
				return nil, err
			}
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// applyLogWrites writes ws into tx, in order.
func applyLogWrites(tx interface{ Bucket([]byte) *bolt.Bucket }, ws []logWrite) error {
	for _, w := range ws {
		b := tx.Bucket(w.bucket)
		if b == nil {
			return fmt.Errorf("sale log: no bucket %q: %w", w.bucket, ErrCorrupt)
		}
		var err error
		if w.del {
			err = b.Delete(w.key)
		} else {
			err = b.Put(w.key, w.val)
		}
		if err != nil {
			return fmt.Errorf("sale log: %s: %w", w.bucket, err)
		}
	}
	return nil
}

// readReq is a read run in the committer's open transaction (view).
type readReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// exclReq asks the committer for a checkpoint, then runs fn (if any) on
// its goroutine with no transaction open (exclusive).
type exclReq struct {
	fn   func() error
	done chan error
}

// beginWrite returns the transaction for the next batch: with the sale
// log, the open one, or a new one holding the pending batches again (after
// a rollback) or starting a new cycle.
func (l *Ledger) beginWrite() (*bolt.Tx, error) {
	if l.open != nil {
		return l.open, nil
	}
	tx, err := l.db.Begin(true)
	if err != nil {
		return nil, err
	}
	if l.slog == nil {
		return tx, nil
	}
	if len(l.pending) > 0 {
		for _, ws := range l.pending {
			if err := applyLogWrites(tx, ws); err != nil {
				_ = tx.Rollback()
				return nil, err
			}
		}
	} else {
		l.slog.start(uint64(tx.ID()-1), stateID(tx))
	}
	l.open = tx
	return tx, nil
}

// rollbackWrite drops tx and what it holds; the pending batches stay in
// the log and in memory, and the next beginWrite writes them again.
func (l *Ledger) rollbackWrite(tx *bolt.Tx) {
	_ = tx.Rollback()
	l.open = nil
}

// releaseWrite ends tx if it holds nothing acknowledged.
func (l *Ledger) releaseWrite(tx *bolt.Tx) {
	if len(l.pending) == 0 {
		l.rollbackWrite(tx)
	}
}

// logBatch appends a batch's writes to the sale log; the batch is then
// acknowledged and pending. A batch that wrote nothing is not logged.
// errLogFull: commit instead. Any other error fails the batch; all but a
// full disk's refused write (nothing synced) also stop the ledger like a
// failed commit (ErrStorage): the record may be on the card or half of it.
func (l *Ledger) logBatch(ws []logWrite) error {
	if len(ws) == 0 {
		return nil
	}
	synced, err := l.slog.append(ws)
	switch {
	case err == nil:
	case errors.Is(err, errLogFull):
		return err
	case !synced && errors.Is(err, ErrNoSpace):
		return fmt.Errorf("ledger commit: sale log: %w", err)
	default:
		return l.stopWriting(fmt.Errorf("ledger commit: sale log: %w: %w", ErrStorage, err), "sync")
	}
	if len(l.pending) == 0 {
		l.armCheckpoint()
	}
	l.pending = append(l.pending, ws)
	l.pendingW += len(ws)
	l.pendingN.Store(int64(len(l.pending)))
	return nil
}

// checkpoint commits the open transaction: the pending batches are then
// in the file and the log's cycle is over. On failure they stay pending
// (still in the log); the next try is an interval later.
func (l *Ledger) checkpoint() error {
	if len(l.pending) == 0 {
		if l.open != nil {
			l.rollbackWrite(l.open)
		}
		return nil
	}
	if broken := l.broken.Load(); broken != nil {
		return *broken
	}
	tx, err := l.beginWrite()
	if err != nil {
		l.armCheckpoint()
		return fmt.Errorf("ledger checkpoint: %w", ioError(err))
	}
	l.open = nil
	txid := tx.ID()
	if err := sealCommit(tx); err != nil {
		_ = tx.Rollback()
		l.armCheckpoint()
		return fmt.Errorf("ledger checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		err = l.commitFailed(txid, err)
		l.log.Error("sale log checkpoint failed; the sales stay in the log", "err", err, "batches", len(l.pending))
		l.armCheckpoint()
		return err
	}
	l.checkpointed()
	return nil
}

// checkpointed: a commit carried every pending batch.
func (l *Ledger) checkpointed() {
	if l.slog == nil {
		return
	}
	l.pending = nil
	l.pendingW = 0
	l.pendingN.Store(0)
	l.checkpoints.Add(1)
}

// armCheckpoint sets the checkpoint timer to run out an interval from
// now: when a cycle's first batch is logged, and again after a failed
// checkpoint. One timer for the ledger, reset, not one per batch.
func (l *Ledger) armCheckpoint() {
	if l.ckTimer == nil {
		l.ckTimer = time.NewTimer(l.slogEvery)
		return
	}
	l.ckTimer.Reset(l.slogEvery)
}

// checkpointDue fires when the pending batches are to be committed at the
// latest (nil channel: none pending). A timer that ran out while none
// was pending is reset before it is read again (armCheckpoint; since Go
// 1.23 Reset drops a value not received).
func (l *Ledger) checkpointDue() <-chan time.Time {
	if len(l.pending) == 0 || l.ckTimer == nil {
		return nil
	}
	return l.ckTimer.C
}

// serveRead runs a read in the open transaction, on the committer's
// goroutine (a panic in it is the reader's error).
func (l *Ledger) serveRead(r *readReq) {
	if len(l.pending) == 0 {
		r.done <- l.db.View(r.fn)
		return
	}
	if _, err := l.beginWrite(); err != nil {
		r.done <- fmt.Errorf("ledger read: %w", ioError(err))
		return
	}
	r.done <- func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("ledger: internal error: %v", p)
			}
		}()
		return r.fn(l.open)
	}()
}

// exclusive makes every acknowledged batch part of the file (a
// checkpoint) and runs fn, if any, on the committer's goroutine before it
// takes the next batch: for what must see or write the file itself
// (backups, the free-page scrub). Without the sale log it only runs fn.
func (l *Ledger) exclusive(fn func() error) error {
	if l.slog == nil {
		if fn == nil {
			return nil
		}
		return fn()
	}
	x := &exclReq{fn: fn, done: make(chan error, 1)}
	select {
	case l.excl <- x:
		return <-x.done
	case <-l.done:
		return ErrClosed
	}
}

func (l *Ledger) serveExclusive(x *exclReq) {
	if err := l.checkpoint(); err != nil {
		x.done <- err
		return
	}
	if x.fn == nil {
		x.done <- nil
		return
	}
	x.done <- x.fn()
}

// viewFile reads the file as committed, without waiting for the
// committer: for what only unlogged (direct) ops write, which are
// committed before they are answered, so the file is always current for
// it (the catalogue and its staging: catalogue.go, catstage.go).
func (l *Ledger) viewFile(fn func(*bolt.Tx) error) error {
	if l.closed.Load() {
		return ErrClosed
	}
	return l.db.View(fn)
}

// viewCommitted reads the file as committed after a checkpoint: for long
// reads, which would hold the committer up in its open transaction.
func (l *Ledger) viewCommitted(fn func(*bolt.Tx) error) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.pendingN.Load() > 0 {
		if err := l.exclusive(nil); err != nil {
			return err
		}
	}
	return l.db.View(fn)
}

// replaySaleLog applies the acknowledged batches a crash left in the log
// to the file they continue (salelog.go). A read-only open refuses a file
// with such batches: it would show a ledger without them.
//
// It runs before Open's other checks and writes, and leaves alone a file
// those checks refuse untouched: one of another register
// (ErrOtherRegister) or of a newer schema (ErrSchemaTooNew). A panic of
// bbolt on a damaged page is the file's corruption (ErrCorrupt).
func (l *Ledger) replaySaleLog(keep bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corruptError(l.path, fmt.Errorf("%v", r))
		}
	}()
	name := saleLogName(l.path)
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger open %s: %w", l.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("ledger open %s: %w", l.path, err)
	}
	var base, inc uint64
	have := false
	_ = l.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bMeta)
		if m == nil {
			return nil
		}
		if owner := m.Get(kRegister); len(owner) > 0 && !l.readOnly && string(owner) != l.register {
			return nil // another register's: Open refuses it
		}
		if v := m.Get(kSchema); len(v) == 8 && binary.BigEndian.Uint64(v) > SchemaVersion {
			return nil // a newer program's: Open refuses it
		}
		base, inc, have = uint64(tx.ID()), stateID(tx), true
		return nil
	})
	var batches [][]logWrite
	if have {
		if batches, err = readSaleLog(f, fi.Size(), base, inc); err != nil {
			return fmt.Errorf("ledger open %s: %w", l.path, err)
		}
	}
	if len(batches) > 0 {
		if l.readOnly {
			return fmt.Errorf("ledger open %s: %d acknowledged batches are in %s and not yet in the file; open it read-write once (start loyaltyd) to apply them: %w",
				l.path, len(batches), filepath.Base(name), ErrReadOnly)
		}
		err := l.db.Update(func(tx *bolt.Tx) error {
			for _, ws := range batches {
				if err := applyLogWrites(tx, ws); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("ledger open %s: apply the sale log: %w", l.path, ioError(err))
		}
		l.log.Info("sale log applied", "batches", len(batches))
	}
	switch {
	case l.readOnly || len(batches) == 0:
	case keep:
		wf, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err == nil {
			err = spendSaleLog(wf)
			_ = wf.Close()
		}
		if err != nil {
			return fmt.Errorf("ledger open %s: sale log applied, but not marked spent: %w", l.path, ioError(err))
		}
	}
	if !keep && !l.readOnly && have {
		_ = f.Close()
		if err := os.Remove(name); err == nil {
			_ = durable.SyncDir(filepath.Dir(name))
		}
	}
	return nil
}

// scrubLog zeroes the sale log once the free pages are scrubbed (err nil):
// its records of batches long checkpointed still hold what an erasure
// removed from the file. It runs in exclusive, after a checkpoint, so no
// record in it is pending.
func (l *Ledger) scrubLog(err error) error {
	if err != nil || l.slog == nil {
		return err
	}
	if err := zeroFill(l.slog.f, 0, l.slog.size); err != nil {
		return fmt.Errorf("sale log: %w", ioError(err))
	}
	if err := syscall.Fdatasync(int(l.slog.f.Fd())); err != nil {
		return fmt.Errorf("sale log: %w", err)
	}
	return nil
}
