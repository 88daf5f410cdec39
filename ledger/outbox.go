package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Outbox returns up to max records (default 256 when max <= 0) with
// Seq > after, in sequence order: those waiting for head office and, when
// after is below the confirmed watermark, the confirmed ones still kept
// (see Kept).
func (l *Ledger) Outbox(after uint64, max int) ([]OutboxRecord, error) {
	if max <= 0 {
		max = 256
	}
	var out []OutboxRecord
	err := l.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			r, err := decodeOutbox(tx, k, v)
			if err != nil {
				return fmt.Errorf("ledger outbox: decode %d: %w", keySeq(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// OutboxBatch is one batch of outbox records as OutboxInto reads them.
// A reader keeps one and reads into it again and again: its storage is
// reused, so a batch costs no allocation per record for the records the
// uplink sends most (point events, by reference to their binary rows).
type OutboxBatch struct {
	// Recs are the records read, in sequence order, as Outbox returns
	// them except that a record's Data points into the batch's buffer
	// (valid until the next read into the batch) and its ID is empty
	// when it is IDPrefix followed by its Seq.
	Recs []OutboxRecord
	// IDPrefix is "<register>-" of the ledger read.
	IDPrefix string

	buf  []byte
	offs []int // Recs[i].Data is buf[offs[2i]:offs[2i+1]]
	// compact[i]: Recs[i].Data was written here from a binary row, as
	// json.Marshal writes it.
	compact []bool
}

// Compact reports whether Recs[i].Data is known to be exactly what
// json.Marshal writes for it (compact, <, > and & escaped): the ledger
// wrote it from a binary row. An encoder may copy such a payload without
// checking it again; other payloads (older JSON rows, sales) are as
// stored.
func (b *OutboxBatch) Compact(i int) bool { return i < len(b.compact) && b.compact[i] }

// Part sets p to records i to j (exclusive) of b, with their Compact
// marks: a reader reads several batches' worth at once and encodes them
// a part at a time. p shares b's storage: it is valid until b's next
// read, and must never be read into itself.
func (b *OutboxBatch) Part(p *OutboxBatch, i, j int) {
	*p = OutboxBatch{Recs: b.Recs[i:j:j], IDPrefix: b.IDPrefix}
	if j <= len(b.compact) {
		p.compact = b.compact[i:j:j]
	}
}

// OutboxInto reads into b what Outbox(after, max) returns, in one read
// transaction and one walk of the outbox.
func (l *Ledger) OutboxInto(b *OutboxBatch, after uint64, max int) error {
	return l.view(func(tx *bolt.Tx) error { return l.readOutbox(tx, b, after, max) })
}

// readOutbox reads the records after the given sequence number into b.
func (l *Ledger) readOutbox(tx *bolt.Tx, b *OutboxBatch, after uint64, max int) error {
	if max <= 0 {
		max = 256
	}
	if b.IDPrefix == "" || b.IDPrefix[:len(b.IDPrefix)-1] != l.register {
		b.IDPrefix = l.register + "-"
	}
	clear(b.Recs)
	b.Recs, b.buf, b.offs, b.compact = b.Recs[:0], b.buf[:0], b.offs[:0], b.compact[:0]
	r := outboxReader{tx: tx, rows: tx.Bucket(bRows), prefix: b.IDPrefix}
	var from [8]byte
	binary.BigEndian.PutUint64(from[:], after+1)
	c := tx.Bucket(bOutbox).Cursor()
	for k, v := c.Seek(from[:]); k != nil && len(b.Recs) < max; k, v = c.Next() {
		start := len(b.buf)
		rec, compact, err := r.read(b, k, v)
		if err != nil {
			return fmt.Errorf("ledger outbox: decode %d: %w", keySeq(k), err)
		}
		b.Recs = append(b.Recs, rec)
		b.compact = append(b.compact, compact)
		b.offs = append(b.offs, start, len(b.buf))
	}
	for i := range b.Recs {
		b.Recs[i].Data = b.buf[b.offs[2*i]:b.offs[2*i+1]:b.offs[2*i+1]]
	}
	return nil
}

// outboxReader resolves the records of one read transaction.
type outboxReader struct {
	tx     *bolt.Tx
	rows   *bolt.Bucket
	prefix string
	// walks are cursors over the rows, each where it last found one
	// member's row: the next event row of a member is usually the next
	// row of the member, one step on instead of a search from the root
	// (and a cursor searches without allocating once it has its stack).
	walks [16]rowWalk
	next  int
	// times keeps the text of the last second written.
	times rowTimes
}

type rowWalk struct {
	c   *bolt.Cursor
	key []byte // the row the cursor is at (nil: none)
}

// row returns the value of the row key in bRows (nil when there is none).
func (r *outboxReader) row(key []byte) []byte {
	if len(key) < 10 {
		return r.rows.Get(key)
	}
	member := key[:len(key)-9] // the member's id and the separator
	w := &r.walks[r.next]
	for i := range r.walks {
		if x := &r.walks[i]; x.key != nil && bytes.HasPrefix(x.key, member) && len(x.key) == len(key) {
			w = x
			if k, v := w.c.Next(); bytes.Equal(k, key) {
				w.key = k
				return v
			}
			break
		}
	}
	if w == &r.walks[r.next] {
		r.next = (r.next + 1) % len(r.walks)
	}
	if w.c == nil {
		w.c = r.rows.Cursor()
	}
	k, v := w.c.Seek(key)
	if !bytes.Equal(k, key) {
		w.key = nil
		return nil
	}
	w.key = k
	return v
}

// read decodes the outbox record k, v as decodeOutbox does, appending its
// payload to b's buffer; compact: the payload was written from a binary
// event row (appendEventRowJSON writes what json.Marshal would).
func (r *outboxReader) read(b *OutboxBatch, k, v []byte) (rec OutboxRecord, compact bool, err error) {
	if len(v) == 0 || v[0] != outboxRefMark {
		rec, err := decodeOutbox(r.tx, k, v)
		b.buf = append(b.buf, rec.Data...)
		rec.Data = nil
		return rec, false, err
	}
	h, ok := parseOutboxRef(v)
	if !ok || h.place != placeRows {
		// Sales and anything unusual the way decodeOutbox reads them.
		rec, err := decodeOutbox(r.tx, k, v)
		b.buf = append(b.buf, rec.Data...)
		rec.Data = nil
		return rec, false, err
	}
	rec = OutboxRecord{Seq: keySeq(k), Type: outboxType(h.typ), ClockTrusted: h.trusted}
	if !r.defaultID(h.id, rec.Seq) {
		rec.ID = string(h.id)
	}
	if len(h.wt) > 0 {
		if err := rec.WallTime.UnmarshalBinary(h.wt); err != nil {
			return rec, false, fmt.Errorf("wall time: %w", err)
		}
	}
	rv := r.row(h.key)
	if rv == nil {
		return rec, false, fmt.Errorf("record %s: row %q missing: %w", h.id, h.key, ErrInconsistent)
	}
	if len(rv) == 0 { // bbolt gives a row stored empty as empty, not nil
		return rec, false, fmt.Errorf("record %s: row %q empty: %w", h.id, h.key, ErrInconsistent)
	}
	if b.buf, err = appendEventRowJSON(b.buf, h.key, rv, &r.times); err != nil {
		return rec, false, fmt.Errorf("record %s: row %q: %w", h.id, h.key, err)
	}
	// A row that is not binary is an older JSON row, copied as stored.
	return rec, rv[0] == eventRowMark, nil
}

// defaultID reports whether id is the prefix followed by seq.
func (r *outboxReader) defaultID(id []byte, seq uint64) bool {
	if len(id) <= len(r.prefix) || string(id[:len(r.prefix)]) != r.prefix {
		return false
	}
	// The rest is seq in decimal: compared digit by digit from the last
	// (as strconv writes it: no sign, no leading zero), without writing
	// it out.
	d := id[len(r.prefix):]
	for i := len(d) - 1; i >= 0; i-- {
		if d[i] != byte('0'+seq%10) {
			return false
		}
		if seq /= 10; seq == 0 {
			return i == 0
		}
	}
	return false
}

// outboxRef is the head of a record by reference (outboxRefValue).
type outboxRef struct {
	typ, id, wt []byte
	trusted     bool
	place       byte
	key         []byte
}

// parseOutboxRef splits a record by reference into its fields.
func parseOutboxRef(v []byte) (outboxRef, bool) {
	field := func(b []byte) ([]byte, []byte, bool) {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, nil, false
		}
		return b[1 : 1+int(b[0])], b[1+int(b[0]):], true
	}
	var h outboxRef
	if len(v) == 0 || v[0] != outboxRefMark {
		return h, false
	}
	var rest []byte
	var ok1, ok2, ok3 bool
	h.typ, rest, ok1 = field(v[1:])
	h.id, rest, ok2 = field(rest)
	h.wt, rest, ok3 = field(rest)
	if !ok1 || !ok2 || !ok3 || len(rest) < 2 {
		return h, false
	}
	h.trusted, h.place, h.key = rest[0] == 1, rest[1], rest[2:]
	return h, true
}

// outboxType is typ as an OutboxType, the constants without allocating.
func outboxType(typ []byte) OutboxType {
	for _, t := range [...]OutboxType{OutPoints, OutSale, OutRefund, OutVoid, OutMember, OutConsent, OutClock, OutErased} {
		if string(typ) == string(t) {
			return t
		}
	}
	return OutboxType(typ)
}

// Confirm records head office's acknowledged watermark (every seq <= w is
// durably applied at head office). The watermark never moves backwards: an
// older w is a no-op. A w beyond the last sequence written is
// ErrPruneNotAllowed. Confirmed records stay in the outbox for the keep
// window (Options.KeepConfirmedFor, bounded by KeepConfirmedBytes), so a
// head office restored from an older backup can ask for them again
// (Outbox returns them like any other); Confirm forgets those beyond it.
func (l *Ledger) Confirm(w uint64) error {
	_, err := l.submit(context.Background(), func(x *wtx) (any, error) {
		if w > x.seq {
			return nil, fmt.Errorf("ledger confirm %d: last seq is %d: %w", w, x.seq, ErrPruneNotAllowed)
		}
		cur := getU64(x.tx.Bucket(bState), kConfirmed)
		if w <= cur {
			return nil, nil
		}
		kept := int64(getU64(x.tx.Bucket(bState), kKept))
		c := x.tx.Bucket(bOutbox).Cursor()
		for k, v := c.Seek(u64(cur + 1)); k != nil && keySeq(k) <= w; k, v = c.Next() {
			kept += int64(len(v))
		}
		x.put(bState, kConfirmed, u64(w))
		x.prune(w, kept)
		return nil, nil
	})
	return err
}

// OutboxNotify returns a channel that receives a value (non-blocking send,
// capacity 1) after each commit that added outbox records.
func (l *Ledger) OutboxNotify() <-chan struct{} { return l.notify }

// OutboxStats reports how many records wait for head office and the oldest
// of them (zero when none), for "offline, N pending, oldest T".
func (l *Ledger) OutboxStats() (pending int, oldest OutboxRecord, err error) {
	err = l.view(func(tx *bolt.Tx) error {
		state := tx.Bucket(bState)
		pending = int(getU64(state, kSeq) - getU64(state, kConfirmed))
		if k, v := tx.Bucket(bOutbox).Cursor().Seek(u64(getU64(state, kConfirmed) + 1)); k != nil {
			var err error
			oldest, err = decodeOutbox(tx, k, v)
			return err
		}
		return nil
	})
	return pending, oldest, err
}

// Confirmed returns the watermark head office last confirmed.
func (l *Ledger) Confirmed() (uint64, error) {
	var w uint64
	err := l.view(func(tx *bolt.Tx) error {
		w = getU64(tx.Bucket(bState), kConfirmed)
		return nil
	})
	return w, err
}

// OutboxStampedInto reads into b what OutboxStamped(after, max) returns
// (the records of one epoch, renumbered for the wire), in one read
// transaction, and returns the epoch's stamp.
func (x Wire) OutboxStampedInto(b *OutboxBatch, after uint64, max int) (Stamp, error) {
	var st Stamp
	err := x.view(func(tx *bolt.Tx) error {
		eps, err := readEpochs(tx)
		if err != nil {
			return err
		}
		if err := x.readOutbox(tx, b, fromWire(eps, after), max); err != nil || len(b.Recs) == 0 {
			return err
		}
		i := epochOf(eps, b.Recs[0].Seq)
		e := eps[i]
		if !e.Known {
			b.Recs = b.Recs[:0]
			return nil
		}
		for j := range b.Recs {
			r := &b.Recs[j]
			if epochOf(eps, r.Seq) != i {
				b.Recs = b.Recs[:j]
				break
			}
			if e.Delta != 0 {
				r.Seq += e.Delta
				r.ID = ""
				if r.Type == OutClock {
					r.Data = renumberCorrection(eps, r.Data, x.register)
				}
			}
		}
		st = Stamp{Incarnation: e.Incarnation, Prev: e.Prev}
		return nil
	})
	if err != nil || len(b.Recs) == 0 {
		return Stamp{}, err
	}
	return st, nil
}
