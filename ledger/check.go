package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Check verifies bbolt's own consistency and every ledger invariant:
// each member's materialised balance equals the sum of its events, and its
// lots minus its debt equal that balance; event ids are "<register>-<seq>"
// with seq at most the last one written; the outbox holds exactly the
// sequence numbers after the confirmed watermark, without gaps; every alias
// points to a member that lists it. The error wraps ErrInconsistent (or
// ErrCorrupt for bbolt's own findings) and lists up to 20 problems.
func (l *Ledger) Check() error {
	var problems []string
	add := func(format string, a ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	corrupt := false
	err := l.viewCommitted(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			corrupt = true
			add("bbolt: %v", err)
		}
		if corrupt {
			return nil
		}
		meta, state := tx.Bucket(bMeta), tx.Bucket(bState)
		seq, confirmed := getU64(state, kSeq), getU64(state, kConfirmed)
		if inc := meta.Get(kIncarnation); len(inc) != 32 {
			add("incarnation %q is not 32 hex digits", inc)
		}
		if confirmed > seq {
			add("confirmed watermark %d beyond last seq %d", confirmed, seq)
		}
		// Outbox: kept..seq without a hole, kept <= confirmed+1 (the
		// confirmed records still kept), their bytes counted.
		next := confirmed + 1
		if k, _ := tx.Bucket(bOutbox).Cursor().First(); k != nil && keySeq(k) < next {
			next = keySeq(k)
		}
		var kept uint64
		err := tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
			s := keySeq(k)
			if s <= confirmed {
				kept += uint64(len(v))
			}
			if s != next {
				add("outbox: expected seq %d, found %d", next, s)
			}
			next = s + 1
			r, err := decodeOutbox(tx, k, v)
			if err != nil {
				add("outbox %d: %v", s, err)
				return nil
			}
			if r.Seq != s || !strings.HasSuffix(r.ID, "-"+strconv.FormatUint(s, 10)) {
				add("outbox %d: record says seq %d id %q", s, r.Seq, r.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if next != seq+1 {
			add("outbox ends at %d, last seq is %d", next-1, seq)
		}
		if got := getU64(state, kKept); got != kept {
			add("outbox: %d bytes of confirmed records kept, meta says %d", kept, got)
		}
		// Per-member rows: events, lots, purchases.
		sums := map[string]Points{}
		lots := map[string]Points{}
		var nEvents int64
		wantWin := newWindowRows()
		gotDays := map[string][]byte{}
		var memberRows [][2][]byte // id, record
		// The expiry index: each member's entry, the time its row says,
		// the earliest expiry of its lots (unix nanoseconds).
		indexAt, indexedAt, firstExpiry := map[string]int64{}, map[string]int64{}, map[string]int64{}
		rows := tx.Bucket(bRows)
		err = rows.ForEach(func(k, v []byte) error {
			if len(k) > 0 && k[0] == 0 { // the expiry index (expiryKey)
				if len(k) < 10 {
					add("expiry index entry %q names no member", k)
					return nil
				}
				if _, dup := indexAt[string(k[9:])]; dup {
					add("expiry index: member %q twice", k[9:])
				}
				indexAt[string(k[9:])] = int64(binary.BigEndian.Uint64(k[1:9]) ^ 1<<63)
				return nil
			}
			if len(k) < 10 || k[len(k)-10] != 0 {
				add("row key %q malformed", k)
				return nil
			}
			member := rowMember(k)
			switch rowKind(k) {
			case rowMemberRec:
				if keySeq(k) != 0 {
					add("member row %q: sequence %d", k, keySeq(k))
				}
				memberRows = append(memberRows, [2][]byte{[]byte(member), v})
			case rowEvent:
				nEvents++
				var ev PointEvent
				if err := decodeEventRow(k, v, &ev); err != nil {
					add("event %q: %v", k, err)
					return nil
				}
				if ev.MemberID != member || ev.Seq != keySeq(k) || ev.Seq > seq || ev.ID != ev.Register+"-"+strconv.FormatUint(ev.Seq, 10) {
					add("event %q: fields disagree with its key (member %q seq %d id %q)", k, ev.MemberID, ev.Seq, ev.ID)
				}
				sums[member] += ev.Points
			case rowLot:
				var lot lotRec
				if err := decodeLot(v, &lot); err != nil {
					add("lot %q: %v", k, err)
					return nil
				}
				if lot.Remaining <= 0 {
					add("lot %q: remaining %d", k, lot.Remaining)
				}
				lots[member] += lot.Remaining
				if at := lot.ExpiresAt; !at.IsZero() {
					if first, ok := firstExpiry[member]; !ok || at.UnixNano() < first {
						firstExpiry[member] = at.UnixNano()
					}
				}
			case rowExpiryIndexed:
				if len(v) != 8 || keySeq(k) != 0 {
					add("expiry index row %q: %d bytes", k, len(v))
					return nil
				}
				indexedAt[member] = int64(binary.BigEndian.Uint64(v))
			case rowExpired:
				if len(v) != 8 {
					add("expired row %q: %d bytes", k, len(v))
				}
			case rowPurchase:
				if _, ok := sums[member]; !ok {
					sums[member] += 0 // a member with purchases must exist
				}
				if err := wantWin.add(k, v); err != nil {
					add("%v", err)
				}
			case rowWindow:
				gotDays[string(k)] = v
			default:
				add("row %q: unknown kind", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !maps.Equal(indexAt, indexedAt) {
			add("expiry index entries %v, the members' rows say %v", indexAt, indexedAt)
		}
		for member, first := range firstExpiry {
			if at, ok := indexAt[member]; !ok || at > first {
				add("member %q: lots expire from %v, the expiry index has it at %v (%v)", member, time.Unix(0, first).UTC(), time.Unix(0, at).UTC(), ok)
			}
		}
		for k, v := range wantWin.days {
			if !sameDay(gotDays[k], v) {
				add("day row %q disagrees with the purchase rows", k)
			}
			delete(gotDays, k)
		}
		for k := range gotDays {
			add("day row %q counts no purchase row", k)
		}
		aliases := tx.Bucket(bAliases)
		for _, mr := range memberRows {
			k, v := mr[0], mr[1]
			var rec memberRec
			if err := decodeMemberRow(v, &rec); err != nil {
				add("member %q: %v", k, err)
				continue
			}
			id := string(k)
			if rec.Member.ID != id {
				add("member %q: record says id %q", id, rec.Member.ID)
			}
			if rec.Balance != sums[id] {
				add("member %q: balance %d, events sum to %d", id, rec.Balance, sums[id])
			}
			if sm := rec.Summary; sm != nil && sm.BaseKnown {
				// The summary's Base is this register's events up to the
				// seq it covered (read here from the first event up).
				var upTo Points
				c := rows.Cursor()
				prefix := rowPrefix(rowEvent, id)
				for ek, ev := c.Seek(prefix); ek != nil && bytes.HasPrefix(ek, prefix) && keySeq(ek) <= sm.Covered; ek, ev = c.Next() {
					p, err := eventRowPoints(ev)
					if err != nil {
						add("event %q: %v", ek, err)
						break
					}
					upTo += p
				}
				if sm.Base != upTo {
					add("member %q: summary base %d, events up to seq %d sum to %d", id, sm.Base, sm.Covered, upTo)
				}
			}
			if lots[id]-rec.Debt != rec.Balance {
				add("member %q: lots %d minus debt %d != balance %d", id, lots[id], rec.Debt, rec.Balance)
			}
			if !slices.Equal(rec.Untimed, wantWin.untimed[id]) {
				add("member %q: untimed entries %v, purchase rows say %v", id, rec.Untimed, wantWin.untimed[id])
			}
			delete(sums, id)
			delete(lots, id)
			for _, a := range rec.Member.Aliases {
				if owner := aliases.Get([]byte(a)); !bytes.Equal(owner, k) {
					add("member %q: alias %q maps to %q", id, a, owner)
				}
			}
		}
		for id := range sums {
			add("rows for unknown member %q", id)
		}
		for id := range lots {
			add("lots for unknown member %q", id)
		}
		for _, b := range [][]byte{bMembers, bExpiry} {
			if tx.Bucket(b) != nil {
				add("bucket %s still there (schema 7 keeps it in %s)", b, bRows)
			}
		}
		err = tx.Bucket(bSales).ForEach(func(k, v []byte) error {
			var sr saleRec
			if err := decodeSaleRow(v, &sr); err != nil {
				add("sale %q: %v", k, err)
				return nil
			}
			if s, err := sr.sale(); err != nil || s.ID != string(k) || s.Seq > seq {
				add("sale %q: id %q seq %d (%v)", k, s.ID, s.Seq, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if c, err := readCounts(tx); err != nil {
			add("counters: %v", err)
		} else if want := (counts{Members: int64(len(memberRows)), Sales: int64(tx.Bucket(bSales).Stats().KeyN), Events: nEvents}); c != want {
			add("counters %+v, rows %+v", c, want)
		}
		return aliases.ForEach(func(k, v []byte) error {
			if tx.Bucket(bRows).Get(memberKey(string(v))) == nil {
				add("alias %q maps to unknown member %q", k, v)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("ledger check %s: %w", l.path, err)
	}
	if len(problems) == 0 {
		return nil
	}
	sentinel := ErrInconsistent
	if corrupt {
		sentinel = ErrCorrupt
	}
	return fmt.Errorf("ledger check %s: %w: %s", l.path, sentinel, strings.Join(problems, "; "))
}

// Stats is a snapshot for status pages.
type Stats struct {
	Members       int    `json:"members"`
	Sales         int    `json:"sales"`
	Events        int    `json:"events"` // point events recorded at this register
	OutboxPending int    `json:"outbox_pending"`
	LastSeq       uint64 `json:"last_seq"`
	Confirmed     uint64 `json:"confirmed"`
	// KeptFrom is the first confirmed event still kept for a head office
	// restored from a backup (Confirmed+1 when none), KeptBytes their size.
	KeptFrom         uint64 `json:"kept_from"`
	KeptBytes        int64  `json:"kept_bytes"`
	FileSize         int64  `json:"file_size"`
	RuleVersion      int    `json:"rule_version"`
	CatalogueVersion int    `json:"catalogue_version"`
	// Commits and CommittedOps count the batches made durable since Open
	// (each one sale-log append, or a bbolt commit without the log) and
	// the operations they carried (their ratio is the mean batch size);
	// checkpoints are not counted.
	Commits      uint64 `json:"commits"`
	CommittedOps uint64 `json:"committed_ops"`
}

// Stats reads counters kept in the meta bucket: cheap enough for a status
// page refreshed every second.
func (l *Ledger) Stats() (Stats, error) {
	var s Stats
	err := l.view(func(tx *bolt.Tx) error {
		meta, state := tx.Bucket(bMeta), tx.Bucket(bState)
		s.LastSeq, s.Confirmed = getU64(state, kSeq), getU64(state, kConfirmed)
		s.OutboxPending = int(s.LastSeq - s.Confirmed)
		s.KeptFrom, s.KeptBytes = s.Confirmed+1, int64(getU64(state, kKept))
		if k, _ := tx.Bucket(bOutbox).Cursor().First(); k != nil && keySeq(k) <= s.Confirmed {
			s.KeptFrom = keySeq(k)
		}
		s.CatalogueVersion = int(getU64(meta, kCatVer))
		c, err := readCounts(tx)
		if err != nil {
			return err
		}
		s.Members, s.Sales, s.Events = int(c.Members), int(c.Sales), int(c.Events)
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("ledger stats: %w", err)
	}
	s.RuleVersion = l.RuleVersion()
	s.Commits, s.CommittedOps = l.commits.Load(), l.committed.Load()
	if fi, err := os.Stat(l.path); err == nil {
		s.FileSize = fi.Size()
	} else if !errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("ledger stats: %w", err)
	}
	return s, nil
}

// counts are the row counters Stats reports.
type counts struct {
	Members int64 `json:"members"`
	Sales   int64 `json:"sales"`
	Events  int64 `json:"events"`
}

func readCounts(tx *bolt.Tx) (counts, error) {
	var c counts
	v := tx.Bucket(bState).Get(kCounts)
	if v == nil {
		return c, nil
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("decode counters: %w", err)
	}
	return c, nil
}

func addCounts(tx *bolt.Tx, d counts) error {
	b, err := countsAdded(tx, d)
	if err != nil {
		return err
	}
	return tx.Bucket(bState).Put(kCounts, b)
}

// countsAdded is the counters record with d added.
func countsAdded(tx *bolt.Tx, d counts) ([]byte, error) {
	c, err := readCounts(tx)
	if err != nil {
		return nil, err
	}
	c.Members += d.Members
	c.Sales += d.Sales
	c.Events += d.Events
	return json.Marshal(c)
}
