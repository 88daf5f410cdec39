package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Schema 6: fewer pages per sale.
//
// A bbolt commit writes every page it dirtied, the pages above them up to
// each bucket's root, the root page holding the buckets, the freelist and
// the meta page. Schema 6 touches fewer of them per sale:
//
//   - the keys every commit rewrites (last sequence number, watermark,
//     counters, trusted-time mark) live in the state bucket, small enough
//     for bbolt to keep inline in the root page, instead of a page of
//     meta beside the rule set and config versions;
//   - the outbox records of a sale and its point events name the sale row
//     and the event rows that hold their JSON instead of a second copy
//     (about 60 bytes a record instead of 300 to 700), so the outbox's
//     tree stays a level lower and its leaves split less often. Records
//     written before schema 6 stay as they are and read alike.
//
// Schema 7: fewer buckets per sale. A bucket a commit writes into costs
// its leaf and the branch pages above it; leaves of one bucket share
// their branch page. Schema 7 writes point event rows in binary
// (evrow.go), which takes the rows bucket a level lower, and keeps in the
// rows bucket what had buckets of their own: the member's record (kind
// 'm', memberKey) among the member's rows, in the leaf a sale writes
// anyway, and the expiry index (expiryKey, keys starting with a zero
// byte) under the same branch page. TestSalePagesByBucket names the pages
// per bucket: for a member sale with some history, schema 6 wrote 15.0
// (freelist 1, meta 1, root 1, expiry 2.0, members 2.0, outbox 2.1, rows
// 3.4, sales 2.5), schema 7 writes 11.2 (rows 3.6 for the member's leaf,
// the index's leaf and their branch). What is left: the sale row (about
// 900 bytes of JSON under a random key, a tree three levels deep) and the
// outbox's leaf and branch.
//
// Schema 8: no page for the free list and none for the expiry index.
// Commits skip bbolt's free list page (NoFreelistSync, openBolt; Close
// writes it). The expiry index has one entry per member instead of one
// per lot (points.go): a sale of a member whose points already expire
// earlier than the new lot writes nothing to it, so the index's leaf is
// not dirtied. Sale rows (salerow.go), lot rows and purchase rows
// (rowcodec.go) and member records (memberrow.go) are binary: a sale row is about 220 bytes instead of 930,
// so the sales tree splits less, and the member's leaf grows by about 200
// bytes less per sale. TestSalePagesByBucket: 11.05 -> 10.05 (free list)
// -> 9.15 (index: rows 3.55 -> 2.65) -> 8.55 (binary rows: sales 2.42 ->
// 2.10, rows 2.65 -> 2.38). What is left is one leaf and one branch page
// in each of the outbox, the sales and the rows trees, the root and the
// meta page: fewer needs fewer trees, and a tree shared by two of them
// only saves its branch page while the shared tree stays two levels deep
// (at this test's size it would not: its root branch page would split).
//
// Why 7 pages and commit_vs_fdatasync 2.5 (issue 14) are out of reach
// with bbolt, in figures (make bench on the quiet machine, 2 December
// 2026: commit_vs_fdatasync 4.60, bare_bbolt_1key_vs_fdatasync 2.45,
// sale_commit_pages 9.1):
//
//   - The floor the ratio divides by is one 512-byte overwrite and one
//     fdatasync. Every bbolt commit makes two fdatasyncs (the data pages,
//     then the meta page that makes them current), so any commit is 2.0
//     before it writes a page; bbolt's own smallest update (one key, about
//     five pages) measures 2.45 in the same run. A sale at 2.5 would have
//     to cost what that one-key update costs, with no room for its own
//     CPU (sale_cpu_us 47, a quarter of the floor) nor for one page more.
//   - Pages cost sync time on this disk: 1, 5 and 9 pages at random
//     offsets of a file, each set made durable with two fdatasyncs as
//     bbolt does, took 0.43, 0.84 and 1.40 ms (medians of 60, load 13;
//     9 adjacent pages 0.56 ms; a one-off program, not a benchmark). Fewer pages is the only lever left, and
//     the count has a floor.
//   - A sale is found three ways, so it writes into three trees: the
//     outbox by sequence number (the uplink), the sales by sale id
//     (idempotent retries, refunds, look-ups) and the rows by member
//     (balance, lots, tier window). Past one page each tree dirties at
//     least its leaf and the branch above it: 6 pages, plus the root page
//     holding the three buckets' roots and the meta page: 8.
//     TestSalePagesByBucket measures 8.53 (splits included).
//   - Folding two trees into one saves a branch page only while the shared
//     tree stays two levels deep; a register's year of sales takes it to
//     three. Keying the sale rows by sequence number beside the outbox
//     needs an index by sale id, a third tree again. 7 needs one of the
//     three ways to find a sale gone, or a store that appends one record
//     per commit (a log) instead of copying tree paths: another engine,
//     not another layout.
//
// That log is the sale log (salelog.go, schema 11 below): a sale is acknowledged on one append and one fdatasync of a
// preallocated file, and bbolt commits the paths above for hundreds of
// sales at once. BenchmarkCommit counts both the log's pages and the
// checkpoints' (the figures above are with NoSaleLog, as
// TestSalePagesByBucket still measures them): two make bench runs on 3
// December 2026, sale_commit_pages 1.5 (1.00 of them the log's: a record
// a block), commit_vs_fdatasync 2.01 and 2.05 against
// bare_bbolt_1key_vs_fdatasync 2.30 and 2.35 in the same runs.

// Schema 9: an effective balance that costs the same whatever the
// history. A member's effective balance is head office's balance plus
// this register's events after the seq head office's summary covered
// (doc.go, "Head-office overlay"). Schema 8 summed those events at every
// sale, adjustment, refund and balance look-up: a register offline since
// a member's last summary paid for every event of the member since then
// (BenchmarkSaleHeavyMember, the heavy member behind a summary covering
// only its first purchase: 2,492 us of committer CPU per sale against 52
// for a new member). Schema 9 keeps the summary's Base, the member's
// local balance up to the seq it covered, in the member record (flag 16,
// memberrow.go), set when a summary is applied; the effective balance is
// then the summary's balance plus the record's balance less Base (41 us,
// as without a summary). Events are only appended above the seq a summary
// covered, so Base stays true until the next summary; Check verifies it
// against the events. The upgrade rewrites nothing but the schema number
// (it does not run the earlier upgrades again: upgrade7 rebuilt the
// expiry index), and a read-only open reads a schema 8 file as it is: a
// summary stored by schema 8 has no Base, and the member's next write
// works it out once from the events and stores it. A schema 8 program
// refuses a schema 9 file (ErrSchemaTooNew) instead of misreading a
// member record with a Base.

// Schema 10: head office's bonus state in the member record. A member
// summary may carry whether the member's first-purchase bonus is pending
// or paid chain-wide and the year of the last birthday bonus head office
// credited (docs/protocol.md "Member summaries"); the member record keeps
// them behind flag mrBonus (memberrow.go). A schema 9 program would fail
// to read such a record, so the schema number moves: it refuses a schema
// 10 file (ErrSchemaTooNew) instead. The upgrade rewrites nothing but the
// schema number, and a read-only open reads a schema 8 or 9 file as it is
// (a summary stored before has no bonus state: the register's own state
// counts until the next summary, as with an older head office).

// upgrade5 migrates a schema 5 file to 6.
func upgrade5(tx *bolt.Tx) error {
	state, err := tx.CreateBucketIfNotExists(bState)
	if err != nil {
		return err
	}
	meta := tx.Bucket(bMeta)
	for _, k := range hotKeys {
		v := meta.Get(k)
		if v == nil {
			continue
		}
		if err := state.Put(k, append([]byte(nil), v...)); err != nil {
			return err
		}
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Outbox records by reference. A sale's record and its point events'
// records carry the same JSON as the sale row and the event rows, which
// stay for good; the outbox record names that row instead of holding a
// second copy:
//
//	0x01 | type len | type | id len | id | wall time len | wall time
//	(time.MarshalBinary) | trusted 0/1 | place | key
//
// Records of other types (and every record written before schema 6) are
// the JSON of OutboxRecord, which starts with '{'.
const outboxRefMark byte = 0x01

// errNoTx: decodeOutbox without a transaction decodes the head only.
var errNoTx = errors.New("reference not resolved")

// Places a record by reference points to.
const (
	placeSale byte = 's' // the sale row's Sale (key: sale id)
	placeRows byte = 'r' // a row of bRows holding the payload (key: row key)
)

type outboxPlace struct {
	place byte
	key   []byte
}

func outboxRefValue(r OutboxRecord, p outboxPlace, a *arena) []byte {
	// (a time's binary form is 15 or 16 bytes; AppendBinary writes it in
	// place, where MarshalBinary allocated it apart for every record)
	v := a.make(8 + len(r.Type) + len(r.ID) + 16 + len(p.key))
	v = append(v, outboxRefMark, byte(len(r.Type)))
	v = append(v, r.Type...)
	v = append(v, byte(len(r.ID)))
	v = append(v, r.ID...)
	at := len(v)
	v, err := r.WallTime.AppendBinary(append(v, 0))
	if err != nil {
		v = v[:at+1] // cannot happen for the clock's times; zero time then
	}
	v[at] = byte(len(v) - at - 1)
	t := byte(0)
	if r.ClockTrusted {
		t = 1
	}
	v = append(v, t, p.place)
	return append(v, p.key...)
}

// decodeOutbox decodes the outbox record k, v of either form; a
// reference is resolved in tx.
func decodeOutbox(tx *bolt.Tx, k, v []byte) (OutboxRecord, error) {
	var r OutboxRecord
	if len(v) == 0 || v[0] != outboxRefMark {
		err := json.Unmarshal(v, &r)
		return r, err
	}
	bad := errors.New("short reference record")
	field := func(b []byte) ([]byte, []byte, bool) {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, nil, false
		}
		return b[1 : 1+int(b[0])], b[1+int(b[0]):], true
	}
	typ, rest, ok1 := field(v[1:])
	id, rest, ok2 := field(rest)
	wt, rest, ok3 := field(rest)
	if !ok1 || !ok2 || !ok3 || len(rest) < 2 {
		return r, bad
	}
	r.Type, r.ID, r.ClockTrusted = OutboxType(typ), string(id), rest[0] == 1
	if len(wt) > 0 {
		if err := r.WallTime.UnmarshalBinary(wt); err != nil {
			return r, fmt.Errorf("wall time: %w", err)
		}
	}
	r.Seq = keySeq(k)
	place, key := rest[1], rest[2:]
	if tx == nil {
		return r, errNoTx
	}
	switch place {
	case placeSale:
		sr, ok, err := readSaleRow(tx.Bucket(bSales), string(key))
		if err != nil {
			return r, fmt.Errorf("record %s: %w", r.ID, err)
		}
		if !ok {
			return r, fmt.Errorf("record %s: sale %q missing: %w", r.ID, key, ErrInconsistent)
		}
		if r.Data, err = sr.saleJSON(); err != nil {
			return r, fmt.Errorf("record %s: sale %q: %w", r.ID, key, err)
		}
	case placeRows:
		rv := tx.Bucket(bRows).Get(key)
		if rv == nil {
			return r, fmt.Errorf("record %s: row %q missing: %w", r.ID, key, ErrInconsistent)
		}
		if len(rv) == 0 { // as OutboxInto: a row stored empty is damage
			return r, fmt.Errorf("record %s: row %q empty: %w", r.ID, key, ErrInconsistent)
		}
		var err error
		if r.Data, err = eventRowJSON(key, rv); err != nil {
			return r, fmt.Errorf("record %s: row %q: %w", r.ID, key, err)
		}
	default:
		return r, fmt.Errorf("record %s: unknown place %q", r.ID, place)
	}
	return r, nil
}

// outboxHead reads a record's wall time and trust flag without resolving
// a reference (the keep window's age test).
func outboxHead(v []byte) (wall time.Time, trusted, ok bool) {
	if len(v) > 0 && v[0] == outboxRefMark {
		r, err := decodeOutbox(nil, make([]byte, 8), v)
		if err != nil && !errors.Is(err, errNoTx) {
			return wall, false, false
		}
		return r.WallTime, r.ClockTrusted, true
	}
	var h struct {
		WallTime     time.Time `json:"wall_time"`
		ClockTrusted bool      `json:"clock_trusted"`
	}
	if json.Unmarshal(v, &h) != nil {
		return wall, false, false
	}
	return h.WallTime, h.ClockTrusted, true
}

// upgrade7 migrates a schema 7 file to 8: the expiry index, one entry
// per lot until schema 7, becomes one entry per member at its earliest
// expiry (points.go), built from the lots. Run on a file of schema 8 it
// leaves a correct index: every entry and every member's note of its
// entry (rowExpiryIndexed) is rebuilt or removed, so no member keeps a
// note of an entry that is gone (which would keep its next lots out of
// the index for good).
func upgrade7(tx *bolt.Tx) error {
	rows := tx.Bucket(bRows)
	var old [][]byte
	first := map[string]time.Time{}
	err := rows.ForEach(func(k, v []byte) error {
		if len(k) > 0 && k[0] == 0 {
			old = append(old, slices.Clone(k))
			return nil
		}
		if len(k) >= 10 && rowKind(k) == rowExpiryIndexed {
			old = append(old, slices.Clone(k))
			return nil
		}
		if len(k) < 10 || rowKind(k) != rowLot {
			return nil
		}
		var lot lotRec
		if err := decodeLot(v, &lot); err != nil {
			return fmt.Errorf("lot %q: %w", k, err)
		}
		m := rowMember(k)
		if at := lot.ExpiresAt; !at.IsZero() && (first[m].IsZero() || at.Before(first[m])) {
			first[m] = at
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := rows.Delete(k); err != nil {
			return err
		}
	}
	for m, at := range first {
		if err := rows.Put(expiryKey(at, m), nil); err != nil {
			return err
		}
		if err := rows.Put(rowKey(rowExpiryIndexed, m, 0), u64(uint64(at.UnixNano()))); err != nil {
			return err
		}
	}
	return nil
}

// Schema 11: the sale log (salelog.go). Nothing in the file's layout
// changes (the state bucket gains the commit id, kCommitID), but after a
// crash the file alone lacks the acknowledged sales its sale log holds,
// and a schema 10 program ignores the log: it would open the file without
// them and number its next events over theirs. The schema number moves so
// that it refuses the file (ErrSchemaTooNew) instead. The upgrade rewrites
// nothing but the number, after the log is applied; a read-only open
// reads a schema 8 to 10 file as it is.
