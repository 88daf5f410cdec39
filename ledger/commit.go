package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// op is one queued write. fn validates against the transaction's current
// state first and writes only when everything is valid, so an op that
// fails validation leaves the shared transaction untouched. fn may run more
// than once (when another op of its batch fails half-way and the batch is
// retried), so it must depend only on the transaction.
type op struct {
	ctx  context.Context
	fn   func(w *wtx) (any, error)
	res  any
	err  error
	done chan struct{}
}

// wtx is the state of one group-commit transaction.
type wtx struct {
	l         *Ledger
	tx        *bolt.Tx
	seq       uint64 // last sequence number allocated
	dirty     bool   // the current op has written something
	outbox    bool   // the batch added outbox records
	now       time.Time
	trusted   bool
	st        stamp       // the current op's clock reading, judged
	anchor    clockAnchor // trusted-time high-water mark as this batch moved it
	anchorSet bool        // the current op set the anchor itself (ConfirmClock)
	eng       Engine
	joinLot   *joinLot            // the lot the current op opened, for its later credits
	holdLots  bool                // credits keep the lot they open in joinLot (holdCredits)
	delta     counts              // rows the batch added, for Stats
	untimed   int64               // untimed rows the batch added (less those it removed)
	rowErr    error               // a row the current op read did not decode: the op fails
	win       map[string]winCache // windows this transaction read or moved, kept in l.win once it commits
	rowsCur   *bolt.Cursor        // get's cursor over the rows bucket
	mem       arena               // the keys and values the transaction writes
	// failed is the first write of the current op that failed: run returns
	// it, and the op's writes are rolled back with the transaction.
	failed error
	// Sale log (salelog.go): logging records every put and delete in rec,
	// the batch's record; direct is set by an op that writes past put and
	// del (catalogue staging), so the batch is committed, not logged.
	logging bool
	direct  bool
	rec     []logWrite
}

type joinLot struct {
	member  string
	key     []byte
	expires time.Time
	// held: the lot is not written yet; lot is what to write
	// (holdCredits).
	held bool
	lot  lotRec
}

// submit queues fn for the committer and waits until its transaction is
// durable (or failed). Once queued, the caller waits for the outcome even
// if ctx is cancelled later: the op may already be committed, and a cashier
// must never see "failed" for a sale that was recorded.
func (l *Ledger) submit(ctx context.Context, fn func(w *wtx) (any, error)) (any, error) {
	if l.readOnly {
		return nil, ErrReadOnly
	}
	if ctx == nil {
		ctx = context.Background()
	}
	o := &op{ctx: ctx, fn: fn, done: make(chan struct{})}
	if l.closed.Load() {
		return nil, ErrClosed
	}
	select {
	case l.queue <- o:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.stop:
		return nil, ErrClosed
	}
	select {
	case <-o.done:
		return o.res, o.err
	case <-l.done:
		// The committer has stopped; it may have run o before it did.
		select {
		case <-o.done:
			return o.res, o.err
		default:
			return nil, ErrClosed // never ran: nothing was written
		}
	}
}

// committer merges whatever is queued into one transaction. A lone caller
// pays exactly one commit; concurrent callers share one, and the committer
// waits for them (at most Options.GroupDelay) only when the last batch
// showed them: see collect. BenchmarkGroupCommitVsBoltBatch holds it
// against bbolt's DB.Batch, which waits MaxBatchDelay for a batch to fill
// whatever the load: a lone caller (a register's usual load) waits several
// times longer per sale there.
func (l *Ledger) committer() {
	defer close(l.done)
	for {
		var first *op
		select {
		case first = <-l.queue:
		case r := <-l.reads:
			l.serveRead(r)
			continue
		case x := <-l.excl:
			l.serveExclusive(x)
			continue
		case <-l.checkpointDue():
			_ = l.checkpoint()
			continue
		case <-l.stop:
			for {
				select {
				case o := <-l.queue:
					l.runBatch(l.collect(o))
				default:
					if err := l.checkpoint(); err != nil {
						l.log.Error("sale log: the last checkpoint failed; the next Open applies the log", "err", err)
					}
					if l.open != nil {
						l.rollbackWrite(l.open)
					}
					return
				}
			}
		}
		l.runBatch(l.collect(first))
	}
}

// collect gathers what is queued behind first. When the queue looks empty
// it yields the processor a few times before giving up: callers woken by
// the previous commit are runnable but may not have reached the queue yet,
// and one yield costs microseconds where a missed batch costs a commit
// (two fdatasyncs).
//
// Yielding is not enough when many callers trade at once: the committer
// takes the callers that queued during the last commit while those it
// just answered are still on their way back, and batches split into two
// halves that alternate for good (16 callers committed 8 and 8). So when
// the last batch showed more callers (its own plus those queued during
// its commit, l.expect) than have arrived, collect waits for the rest,
// until Options.GroupDelay after that commit at most, as databases do
// (PostgreSQL's commit_delay with commit_siblings, MySQL's
// binlog_group_commit_sync_delay with sync_no_delay_count). A lone caller
// (expect 1) never waits, nor does an op that arrives later than that
// after the last commit; a wait that runs out sets expect to the callers
// there are now.
func (l *Ledger) collect(first *op) []*op {
	batch := []*op{first}
	idle := 0
	for len(batch) < l.maxBatch && idle < 3 {
		select {
		case o := <-l.queue:
			batch = append(batch, o)
			idle = 0
		default:
			idle++
			runtime.Gosched()
		}
	}
	want := min(l.expect, l.maxBatch)
	if len(batch) >= want || l.groupDelay <= 0 {
		return batch
	}
	wait := time.Until(l.lastCommit.Add(l.groupDelay))
	if wait <= 0 {
		return batch
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	if l.groupWait != nil {
		l.groupWait()
	}
	for len(batch) < want {
		select {
		case o := <-l.queue:
			batch = append(batch, o)
		case <-timer.C:
			return batch
		case <-l.stop:
			return batch
		}
	}
	return batch
}

func finish(o *op, res any, err error) {
	o.res, o.err = res, err
	close(o.done)
}

func (l *Ledger) runBatch(batch []*op) {
	for len(batch) > 0 {
		batch = l.tryBatch(batch)
	}
	// Checking the reserve costs a read transaction and an fstat; every
	// 16th batch is often enough (it is refilled at half).
	if l.batches++; l.batches%16 == 0 {
		l.reserve()
	}
}

// tryBatch runs batch in one transaction and returns the ops to run again
// when one op failed after it had started writing (its partial writes are
// rolled back together with the others', which then get a fresh
// transaction). With the sale log the transaction is the open one the
// pending batches are in, and the batch is logged instead of committed
// (salelog.go).
func (l *Ledger) tryBatch(batch []*op) []*op {
	if broken := l.broken.Load(); broken != nil {
		for _, o := range batch {
			finish(o, nil, *broken)
		}
		return nil
	}
	tx, err := l.beginWrite()
	if err != nil {
		for _, o := range batch {
			finish(o, nil, fmt.Errorf("ledger begin: %w", ioError(err)))
		}
		return nil
	}
	w := &wtx{l: l, tx: tx, eng: l.eng(), logging: l.slog != nil}
	if w.logging {
		// A sale writes about fifteen rows; the record is kept (pending)
		// until the checkpoint, so it is not reused.
		w.rec = make([]logWrite, 0, 16*len(batch))
	}
	w.seq = getU64(tx.Bucket(bState), kSeq)
	w.anchor = l.ck.anchor()
	anchorStart := w.anchor
	// The outbox only grows at its end (and is trimmed at its start):
	// bbolt's default half-full split would leave every outbox page half
	// empty and split about once per sale (a sale adds ~3 KB of records).
	tx.Bucket(bOutbox).FillPercent = 1
	start := w.seq
	var ok []*op
	var results []any
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			finish(o, nil, err)
			continue
		}
		w.dirty, w.joinLot, w.holdLots, w.anchorSet = false, nil, false, false
		var next clockAnchor
		w.st, next = l.ck.judge(w.anchor, readClock(l.clock))
		w.now, w.trusted = w.st.wall, w.st.trusted
		seqBefore, deltaBefore, anchorBefore, untimedBefore := w.seq, w.delta, w.anchor, w.untimed
		res, err := w.run(o.fn)
		if err == nil && !w.anchorSet {
			w.anchor = next
		}
		if err != nil {
			w.delta, w.anchor, w.untimed = deltaBefore, anchorBefore, untimedBefore
			if w.dirty || w.seq != seqBefore {
				l.rollbackWrite(tx)
				finish(o, nil, err)
				return append(ok, batch[i+1:]...)
			}
			finish(o, nil, err)
			continue
		}
		ok = append(ok, o)
		results = append(results, res)
	}
	if len(ok) == 0 {
		l.releaseWrite(tx)
		return nil
	}
	w.failed = nil
	if w.seq != start {
		w.put(bState, kSeq, u64(w.seq))
	}
	if w.delta != (counts{}) {
		b, err := countsAdded(tx, w.delta)
		if err != nil {
			w.fail(err)
		} else {
			w.put(bState, kCounts, b)
		}
	}
	anchorMoved := !w.anchor.HWM.Equal(anchorStart.HWM) || w.anchor.Boot != anchorStart.Boot || w.anchor.Mono != anchorStart.Mono
	if anchorMoved {
		w.putJSON(bState, kClock, w.anchor)
	}
	if err := w.failed; err != nil {
		l.rollbackWrite(tx)
		for _, o := range ok {
			finish(o, nil, fmt.Errorf("ledger commit: %w", err))
		}
		return nil
	}
	logged := false
	if w.logging && !w.direct && len(l.pending) < saleLogMaxPending {
		if err := l.logBatch(w.rec); err == nil {
			logged = true
		} else if !errors.Is(err, errLogFull) {
			l.rollbackWrite(tx)
			l.log.Error("sale log append failed", "err", err, "ops", len(ok))
			for _, o := range ok {
				finish(o, nil, err)
			}
			return nil
		}
	}
	if !logged {
		// A plain commit; with the sale log, a checkpoint of the pending
		// batches and this one.
		l.open = nil
		txid := tx.ID()
		if err := sealCommit(tx); err != nil {
			_ = tx.Rollback()
			for _, o := range ok {
				finish(o, nil, fmt.Errorf("ledger commit: %w", err))
			}
			return nil
		}
		if err := tx.Commit(); err != nil {
			err = l.commitFailed(txid, err)
			l.log.Error("commit failed", "err", err, "ops", len(ok))
			for _, o := range ok {
				finish(o, nil, err)
			}
			return nil
		}
		l.checkpointed()
	}
	if w.outbox {
		select {
		case l.notify <- struct{}{}:
		default:
		}
	}
	if anchorMoved {
		l.ck.mu.Lock()
		l.ck.a = w.anchor
		l.ck.mu.Unlock()
	}
	l.win.keep(w.win)
	l.untimed.Add(w.untimed)
	// The callers of this batch come back soon if they are trading in a
	// loop, and those queued during its commit are waiting: the next
	// batch may expect both. (Counted before the callers are answered: a
	// lone caller on another processor could queue its next op first.)
	// Only the ops this commit answers count: one answered before it (a
	// refused op) may already be queued again, and would count twice.
	l.expect, l.lastCommit = len(ok)+len(l.queue), time.Now()
	l.commits.Add(1)
	l.committed.Add(uint64(len(ok)))
	for i, o := range ok {
		finish(o, results[i], nil)
	}
	if logged {
		if len(l.pending) == 0 {
			l.releaseWrite(tx) // nothing was written: nothing to keep open
		} else if len(l.pending) >= saleLogMaxPending || l.pendingW >= saleLogMaxWrites || l.slog.used() > l.slog.size/2 {
			_ = l.checkpoint()
		}
	}
	return nil
}

// commitFailed classifies a failed commit. Running out of space while
// bbolt writes the data pages is harmless: it rolled back before touching
// the meta page, and the ledger goes on (ErrNoSpace). Anything else (EIO,
// any failed sync, a meta page that reached the page cache) means the
// operating system's copy of the file may differ from the card, so the
// ledger stops writing: this and every later write fail with ErrStorage.
func (l *Ledger) commitFailed(txid int, err error) error {
	err = ioError(err)
	if errors.Is(err, ErrNoSpace) && !syncFailed(err) && !l.metaAdvanced(txid) {
		return fmt.Errorf("ledger commit: %w", err)
	}
	return l.stopWriting(fmt.Errorf("ledger commit: %w: %w", ErrStorage, err), "commit")
}

// stopWriting makes err (an ErrStorage: the card may not hold what the
// page cache shows) the end of writing: every later write fails with
// ErrStorage until the ledger is opened again. It returns err.
func (l *Ledger) stopWriting(err error, what string) error {
	later := fmt.Errorf("%w: nothing more is recorded until loyaltyd restarts (an earlier %s failed: %v)", ErrStorage, what, err)
	l.broken.Store(&later)
	return err
}

// syncFailed: bbolt returns fdatasync's errno bare, while write and
// resize failures carry the operation.
func syncFailed(err error) bool {
	var pe *fs.PathError
	return !errors.As(err, &pe) && !strings.Contains(err.Error(), "resize")
}

// metaAdvanced reports whether the file as the page cache shows it holds
// the failed transaction's meta page.
func (l *Ledger) metaAdvanced(txid int) bool {
	cur := 0
	if err := l.db.View(func(tx *bolt.Tx) error { cur = tx.ID(); return nil }); err != nil {
		return true
	}
	return cur >= txid
}

// run calls fn and returns the first failed write of the op, if any, in
// place of fn's result: the op may have written half of its rows, so the
// transaction is poisoned (dirty) and rolled back. A panic (a bug, or
// bbolt on a damaged page) is turned into an error the same way.
func (w *wtx) run(fn func(w *wtx) (any, error)) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			w.dirty = true
			err = fmt.Errorf("ledger: internal error: %v", r)
		}
	}()
	w.rowErr, w.failed = nil, nil
	res, err = fn(w)
	if w.failed != nil {
		return nil, fmt.Errorf("ledger: %w", w.failed)
	}
	if err == nil && w.rowErr != nil {
		// A row the op decided on did not decode: what it wrote rests on
		// a wrong reading, so it is rolled back and refused.
		w.dirty = true
		return nil, w.rowErr
	}
	return res, err
}

// fail records a failed write; the op goes on but its result is the error.
func (w *wtx) fail(err error) {
	w.dirty = true
	if w.failed == nil {
		w.failed = err
	}
}

func (w *wtx) put(bucket, k, v []byte) {
	w.dirty = true
	if err := w.tx.Bucket(bucket).Put(k, v); err != nil {
		w.fail(fmt.Errorf("put %s: %w", bucket, err))
		return
	}
	if w.logging {
		w.rec = append(w.rec, logWrite{bucket: bucket, key: k, val: v})
	}
}

func (w *wtx) putJSON(bucket, k []byte, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.fail(fmt.Errorf("encode %s: %w", bucket, err))
		return
	}
	w.put(bucket, k, b)
}

func (w *wtx) del(bucket, k []byte) {
	w.dirty = true
	if err := w.tx.Bucket(bucket).Delete(k); err != nil {
		w.fail(fmt.Errorf("delete %s: %w", bucket, err))
		return
	}
	if w.logging {
		w.rec = append(w.rec, logWrite{bucket: bucket, key: k, del: true})
	}
}

func (w *wtx) get(bucket, k []byte) []byte {
	if !bytes.Equal(bucket, bRows) {
		return w.tx.Bucket(bucket).Get(k)
	}
	// An op reads the rows bucket several times (member, day row, expiry
	// index): one cursor per transaction serves them, where Bucket.Get
	// makes a cursor and grows its stack each time. Seek starts from the
	// bucket's root, so the writes between reads do not matter.
	if w.rowsCur == nil {
		w.rowsCur = w.tx.Bucket(bRows).Cursor()
	}
	key, v := w.rowsCur.Seek(k)
	if !bytes.Equal(key, k) {
		return nil
	}
	return v
}

func (w *wtx) getJSON(bucket, k []byte, v any) (bool, error) {
	b := w.get(bucket, k)
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("decode %s %q: %w", bucket, k, err)
	}
	return true, nil
}

// nextSeq allocates the next per-register sequence number.
func (w *wtx) nextSeq() uint64 {
	w.seq++
	return w.seq
}

func (l *Ledger) eventID(seq uint64) string {
	return l.register + "-" + strconv.FormatUint(seq, 10)
}

// emit writes one outbox record with a fresh sequence number, its
// payload's JSON inside it (member, consent, erasure, refund and clock
// records; point events and sales are stored as rows of their own and
// referenced, emitRow). build gets the sequence and id so the record's
// payload can carry them. It returns the sequence number and the
// payload's JSON.
func (w *wtx) emit(typ OutboxType, build func(seq uint64, id string) any) (uint64, []byte) {
	seq := w.nextSeq()
	id := w.l.eventID(seq)
	v := build(seq, id)
	data, err := json.Marshal(v)
	if err != nil {
		w.fail(fmt.Errorf("encode outbox %s: %w", typ, err))
		return seq, nil
	}
	if !w.trusted && typ != OutClock {
		w.pend(seq, typ, v)
	}
	r := OutboxRecord{Seq: seq, ID: id, Type: typ, WallTime: w.now, ClockTrusted: w.trusted}
	w.put(bOutbox, u64(seq), outboxValue(r, data))
	w.outbox = true
	return seq, data
}

// emitRow is emit for a payload the caller stores in a row of its own
// encoding (event rows, evrow.go): no JSON is built here, the outbox
// record is the reference alone. set gets the sequence and id for the
// payload; member and saleID are what an untrusted clock's pending entry
// names (pend).
func (w *wtx) emitRow(typ OutboxType, member, saleID string, set func(seq uint64, id string), ref func(seq uint64) outboxPlace) uint64 {
	seq := w.nextSeq()
	id := w.l.eventID(seq)
	set(seq, id)
	if !w.trusted && typ != OutClock {
		w.pendIDs(seq, typ, member, saleID)
	}
	r := OutboxRecord{Seq: seq, ID: id, Type: typ, WallTime: w.now, ClockTrusted: w.trusted}
	w.put(bOutbox, u64(seq), outboxRefValue(r, ref(seq), &w.mem))
	w.outbox = true
	return seq
}

// outboxValue encodes r with data as its Data field. It builds the JSON
// by hand because encoding/json re-validates a RawMessage byte by byte,
// which is a visible share of a sale's CPU on a Pi; data comes from
// json.Marshal and is valid.
func outboxValue(r OutboxRecord, data []byte) []byte {
	r.Data = nil
	head, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("encode outbox head: %v", err))
	}
	// head ends with `,"data":null}`.
	head = head[:len(head)-len("null}")]
	v := make([]byte, 0, len(head)+len(data)+1)
	v = append(v, head...)
	v = append(v, data...)
	return append(v, '}')
}
