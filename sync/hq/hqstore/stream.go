package hqstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Member-summary streams (docs/protocol.md "Member summaries").
//
// Each store has a stream of member summaries. A position is a number from
// one chain-wide counter; each member of a store sits at one position in
// the store's stream, the one assigned when the member last changed, so a
// stream holds each of its members once and catching up from any position
// costs at most one summary per member. A store's head is the highest
// position assigned in its stream, its sent position the highest that
// head office published and the broker confirmed: a restart publishes
// (sent, head] and nothing a store already has.
//
// A member belongs to the streams of the stores where it enrolled or
// bought (any event of that store touched it) within the window given to
// TakeSummaries; Apply records those stores and marks the member, in the
// same transaction, so a crash between ingest and summary loses nothing.
// A store whose register was answered a card lookup of the member
// belongs to them too (LookedUp), recorded apart: only where the member
// shops counts for the policy (boltTxn.Shops).
var (
	bShops   = []byte("summary_shops")   // member \x00 store -> unix seconds head office last saw the member there
	bTold    = []byte("summary_told")    // member \x00 store -> unix seconds head office last answered a lookup of the member there
	bDirty   = []byte("summary_dirty")   // member -> "": changed since its last summary
	bStreams = []byte("summary_streams") // store -> {head, sent, p: pos -> member, m: member -> pos}
	kSumPos  = []byte("summary_position")
	kHead    = []byte("head")
	kSent    = []byte("sent")
	kByPos   = []byte("p")
	kByMem   = []byte("m")
)

// StreamBatch is one part of a store's member-summary stream: every member
// at a position in (From, Seq], with its summary read when the stream's
// head was at least Seq.
type StreamBatch struct {
	Store     string
	From, Seq uint64
	Members   []MemberSummary
	// Positions are the members' positions, in order (the same length).
	Positions []uint64
}

// StreamState is head office's record of one store's stream.
type StreamState struct {
	Store string `json:"store"`
	// Head is the highest position assigned; Sent the highest published
	// and confirmed by the broker.
	Head, Sent uint64
}

// shop records that member m, being touched, was touched from a.store.
// A member's stores are few: a slice on its record, not a map per member
// per batch.
func (a *applier) shop(m *memberRec) {
	if a.store != "" && !slices.Contains(m.shops, a.store) {
		m.shops = append(m.shops, a.store)
	}
}

// shopsOf returns the stores member was touched from in this batch.
func (a *applier) shopsOf(member string) []string {
	if m := a.members[member]; m != nil {
		return m.shops
	}
	return nil
}

// flushStreams records where the touched members (ids, sorted) shop and
// marks them for a summary (Txn.MarkChanged), in the applying transaction.
func (a *applier) flushStreams(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now, _ := a.opts.Clock.Now()
	var stores []string
	for _, id := range ids { // rows in a fixed order (PostgreSQL locks)
		stores = append(stores[:0], a.shopsOf(id)...)
		slices.Sort(stores)
		if err := a.tx.MarkChanged(id, stores, now); err != nil {
			return err
		}
	}
	return nil
}

// MarkChanged records, for bbolt, that member changed and was touched from
// stores at time at. A member still marked from an earlier batch, and a
// store already recorded at at or later, are left as they are: a put of
// the same value would only rewrite the page.
func (b *boltTxn) MarkChanged(member string, stores []string, at time.Time) error {
	if b.shops == nil {
		var err error
		if b.shops, err = b.tx.CreateBucketIfNotExists(bShops); err != nil {
			return err
		}
		if b.dirty, err = b.tx.CreateBucketIfNotExists(bDirty); err != nil {
			return err
		}
	}
	if b.dirty.Get([]byte(member)) == nil {
		if err := b.dirty.Put([]byte(member), nil); err != nil {
			return err
		}
	}
	sec := uint64(max(at.Unix(), 0))
	for _, st := range stores {
		k := shopKey(member, st)
		if v := b.shops.Get(k); len(v) == 8 && binary.BigEndian.Uint64(v) >= sec {
			continue
		}
		if err := b.shops.Put(k, u64(sec)); err != nil {
			return err
		}
	}
	return nil
}

// lookedUpAgain: a store marked within this long is not written again by
// LookedUp (the summary window is months; a lookup is a durable write
// otherwise, one at a time on head office's request goroutine).
const lookedUpAgain = time.Hour

// LookedUp records that a store was told about the member by a card
// lookup (Streams.LookedUp), apart from where the member shops.
func (s *Store) LookedUp(member, store string) error {
	now, _ := s.opts.Clock.Now()
	at := uint64(max(now.Unix(), 0))
	k := shopKey(member, store)
	recent := func(tx *bolt.Tx) bool {
		for _, name := range [][]byte{bTold, bShops} {
			if b := tx.Bucket(name); b != nil {
				if v := b.Get(k); len(v) == 8 && binary.BigEndian.Uint64(v)+uint64(lookedUpAgain/time.Second) >= at {
					return true
				}
			}
		}
		return false
	}
	var done bool
	if err := s.db.View(func(tx *bolt.Tx) error { done = recent(tx); return nil }); err != nil || done {
		return err
	}
	err := s.update(func(tx *bolt.Tx) error {
		if recent(tx) {
			return nil
		}
		told, err := tx.CreateBucketIfNotExists(bTold)
		if err != nil {
			return err
		}
		return told.Put(k, u64(at))
	})
	if err != nil {
		return fmt.Errorf("member %q looked up at store %q: %w", member, store, err)
	}
	return nil
}

// Shops returns every store where the member was seen (not the stores
// only told about it).
func (b *boltTxn) Shops(member string) ([]string, error) {
	return marksOf(b.tx, bShops, member, time.Time{}), nil
}

func shopKey(member, store string) []byte {
	k := make([]byte, 0, len(member)+1+len(store))
	k = append(k, member...)
	k = append(k, 0)
	return append(k, store...)
}

// storesOf returns the stores that hold the member: where it was seen,
// or that were told about it by a lookup, at or after since (all of them
// when since is zero), in store order.
func storesOf(tx *bolt.Tx, member string, since time.Time) []string {
	out := marksOf(tx, bShops, member, since)
	for _, st := range marksOf(tx, bTold, member, since) {
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	slices.Sort(out)
	return out
}

// marksOf returns the stores of the member's marks in bucket name (bShops
// or bTold) at or after since (all when since is zero), in store order.
func marksOf(tx *bolt.Tx, name []byte, member string, since time.Time) []string {
	b := tx.Bucket(name)
	if b == nil {
		return nil
	}
	prefix := append([]byte(member), 0)
	var out []string
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if !since.IsZero() && len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < since.Unix() {
			continue
		}
		out = append(out, string(k[len(prefix):]))
	}
	return out
}

// ShopsOf returns the stores where head office saw the member, or told
// them about it, within the last months months (all when months <= 0), in
// store order.
func (s *Store) ShopsOf(member string, months int) ([]string, error) {
	since := s.since(months)
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		out = storesOf(tx, member, since)
		return nil
	})
	return out, err
}

func (s *Store) since(months int) time.Time {
	if months <= 0 {
		return time.Time{}
	}
	now, _ := s.opts.Clock.Now()
	return now.AddDate(0, -months, 0)
}

// nextPos assigns the next position of the chain-wide counter. A store
// that has none yet starts above every seq of the older counter-per-restart
// scheme (epoch<<32 | counter), so registers that applied those accept the
// new positions as newer.
func nextPos(tx *bolt.Tx) (uint64, error) {
	m := tx.Bucket(bMeta)
	p := getU64(m, kSumPos)
	if p == 0 {
		p = (getU64(m, []byte("epoch")) + 1) << 32
	}
	p++
	return p, m.Put(kSumPos, u64(p))
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	if b == nil {
		return 0
	}
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// streamBucket returns the store's stream bucket and its two indexes,
// creating them.
func streamBucket(tx *bolt.Tx, store string) (st, byPos, byMem *bolt.Bucket, err error) {
	all, err := tx.CreateBucketIfNotExists(bStreams)
	if err != nil {
		return nil, nil, nil, err
	}
	if st, err = all.CreateBucketIfNotExists([]byte(store)); err != nil {
		return nil, nil, nil, err
	}
	if byPos, err = st.CreateBucketIfNotExists(kByPos); err != nil {
		return nil, nil, nil, err
	}
	byPos.FillPercent = 1.0 // positions only grow
	if byMem, err = st.CreateBucketIfNotExists(kByMem); err != nil {
		return nil, nil, nil, err
	}
	return st, byPos, byMem, nil
}

// TakeSummaries takes up to max changed members, places each at a new
// position of the streams of the stores where it shopped within the last
// months months (months <= 0: ever), and returns one batch per store, read
// in the same transaction. Members that shop nowhere are only unmarked.
// The caller publishes each batch and then calls SummarySent.
func (s *Store) TakeSummaries(months, max int) ([]StreamBatch, error) {
	if max <= 0 {
		max = 500
	}
	since := s.since(months)
	now, _ := s.opts.Clock.Now()
	var out []StreamBatch
	err := s.update(func(tx *bolt.Tx) error {
		out = nil
		dirty := tx.Bucket(bDirty)
		if dirty == nil {
			return nil
		}
		var ids []string
		c := dirty.Cursor()
		for k, _ := c.First(); k != nil && len(ids) < max; k, _ = c.Next() {
			ids = append(ids, string(k))
		}
		at := map[string]int{} // store -> index in out
		for _, id := range ids {
			if err := dirty.Delete([]byte(id)); err != nil {
				return err
			}
			stores := storesOf(tx, id, since)
			if len(stores) == 0 {
				continue
			}
			m, err := loadMember(tx, id)
			if err != nil {
				return err
			}
			if m == nil {
				continue
			}
			sum, err := m.summary(newBoltTxn(tx), now)
			if err != nil {
				return err
			}
			for _, store := range stores {
				st, byPos, byMem, err := streamBucket(tx, store)
				if err != nil {
					return err
				}
				pos, err := nextPos(tx)
				if err != nil {
					return err
				}
				if old := byMem.Get([]byte(id)); old != nil {
					if err := byPos.Delete(old); err != nil {
						return err
					}
				}
				if err := byPos.Put(u64(pos), []byte(id)); err != nil {
					return err
				}
				if err := byMem.Put([]byte(id), u64(pos)); err != nil {
					return err
				}
				i, ok := at[store]
				if !ok {
					i = len(out)
					at[store] = i
					out = append(out, StreamBatch{Store: store, From: getU64(st, kHead)})
				}
				if err := st.Put(kHead, u64(pos)); err != nil {
					return err
				}
				out[i].Seq = pos
				out[i].Members = append(out[i].Members, sum)
				out[i].Positions = append(out[i].Positions, pos)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("take summaries: %w", err)
	}
	return out, nil
}

// Dirty reports how many members wait for a summary.
func (s *Store) Dirty() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bDirty); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// CatchUp returns the part of the store's stream after position from: up
// to max members, in position order. Seq is the last member's position
// when more follow (more is true), else the stream's head. A from at or
// beyond the head returns a batch without members and Seq 0.
func (s *Store) CatchUp(store string, from uint64, max int) (b StreamBatch, more bool, err error) {
	if max <= 0 {
		max = 500
	}
	now, _ := s.opts.Clock.Now()
	b = StreamBatch{Store: store, From: from}
	err = s.db.View(func(tx *bolt.Tx) error {
		all := tx.Bucket(bStreams)
		if all == nil {
			return nil
		}
		st := all.Bucket([]byte(store))
		if st == nil {
			return nil
		}
		head := getU64(st, kHead)
		if from >= head {
			return nil
		}
		c := st.Bucket(kByPos).Cursor()
		var last uint64
		for k, v := c.Seek(u64(from + 1)); k != nil; k, v = c.Next() {
			if len(b.Members) == max {
				more = true
				break
			}
			m, err := loadMember(tx, string(v))
			if err != nil {
				return err
			}
			if m == nil {
				return fmt.Errorf("summary stream %q: position %d names member %q, which is not stored", store, binary.BigEndian.Uint64(k), v)
			}
			sum, err := m.summary(newBoltTxn(tx), now)
			if err != nil {
				return err
			}
			last = binary.BigEndian.Uint64(k)
			b.Members = append(b.Members, sum)
			b.Positions = append(b.Positions, last)
		}
		b.Seq = head
		if more {
			b.Seq = last
		}
		return nil
	})
	if err != nil {
		return StreamBatch{}, false, fmt.Errorf("catch up %q from %d: %w", store, from, err)
	}
	return b, more, nil
}

// SummarySent records that the store's stream up to seq was published.
func (s *Store) SummarySent(store string, seq uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		st, _, _, err := streamBucket(tx, store)
		if err != nil {
			return err
		}
		if seq > getU64(st, kSent) {
			return st.Put(kSent, u64(seq))
		}
		return nil
	})
}

// sumCounter is the chain-wide summary counter (Streams.SummaryCounter).
func sumCounter(tx *bolt.Tx) uint64 {
	m := tx.Bucket(bMeta)
	cur := getU64(m, kSumPos)
	if cur == 0 {
		cur = (getU64(m, []byte("epoch")) + 1) << 32 // as nextPos starts
	}
	return cur
}

// SummaryCounter returns the chain-wide counter (Streams.SummaryCounter).
func (s *Store) SummaryCounter() (c uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error { c = sumCounter(tx); return nil })
	return c, err
}

// Rebase moves the chain-wide counter to above when it is below and marks
// every member of the store's stream changed (Streams.Rebase).
func (s *Store) Rebase(store string, above uint64) (rebased bool, n int, err error) {
	counter := sumCounter
	if err := s.db.View(func(tx *bolt.Tx) error { rebased = counter(tx) < above; return nil }); err != nil || !rebased {
		return false, 0, err
	}
	err = s.update(func(tx *bolt.Tx) error {
		n = 0
		if rebased = counter(tx) < above; !rebased {
			return nil
		}
		if err := tx.Bucket(bMeta).Put(kSumPos, u64(above)); err != nil {
			return err
		}
		all := tx.Bucket(bStreams)
		if all == nil || all.Bucket([]byte(store)) == nil {
			return nil
		}
		dirty, err := tx.CreateBucketIfNotExists(bDirty)
		if err != nil {
			return err
		}
		return all.Bucket([]byte(store)).Bucket(kByMem).ForEach(func(k, _ []byte) error {
			n++
			return dirty.Put(k, nil)
		})
	})
	if err != nil {
		return false, 0, fmt.Errorf("rebase summary stream %q above %d: %w", store, above, err)
	}
	return rebased, n, nil
}

// SummaryStreams returns every store's stream state, in store order.
func (s *Store) SummaryStreams() ([]StreamState, error) {
	var out []StreamState
	err := s.db.View(func(tx *bolt.Tx) error {
		all := tx.Bucket(bStreams)
		if all == nil {
			return nil
		}
		return all.ForEachBucket(func(k []byte) error {
			st := all.Bucket(k)
			out = append(out, StreamState{Store: string(k), Head: getU64(st, kHead), Sent: getU64(st, kSent)})
			return nil
		})
	})
	return out, err
}

// LookupSummary finds a member by one of its aliases and returns its
// summary and the position of the chain-wide counter when it was read (the
// summary's version). ErrUnknownMember when no member has the alias; a
// member id is not looked up (Streams.LookupSummary).
func (s *Store) LookupSummary(alias string) (MemberSummary, uint64, error) {
	now, _ := s.opts.Clock.Now()
	var out MemberSummary
	var pos uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		id := string(tx.Bucket(bAliases).Get([]byte(alias)))
		if id == "" {
			return fmt.Errorf("alias %q: %w", alias, ErrUnknownMember)
		}
		m, err := loadMember(tx, id)
		if err != nil {
			return err
		}
		if m == nil {
			return fmt.Errorf("alias %q: %w", alias, ErrUnknownMember)
		}
		meta := tx.Bucket(bMeta)
		pos = getU64(meta, kSumPos)
		if pos == 0 {
			pos = (getU64(meta, []byte("epoch")) + 1) << 32
		}
		out, err = m.summary(newBoltTxn(tx), now)
		return err
	})
	return out, pos, err
}

// checkStreams checks that each stream's two indexes agree and that no
// position is above the stream's head or the chain-wide counter.
func checkStreams(tx *bolt.Tx) error {
	all := tx.Bucket(bStreams)
	if all == nil {
		return nil
	}
	counter := getU64(tx.Bucket(bMeta), kSumPos)
	return all.ForEachBucket(func(store []byte) error {
		st := all.Bucket(store)
		head := getU64(st, kHead)
		if head > counter {
			return fmt.Errorf("check: summary stream %q: head %d beyond the counter %d", store, head, counter)
		}
		byPos, byMem := st.Bucket(kByPos), st.Bucket(kByMem)
		if byPos == nil || byMem == nil {
			return nil
		}
		if np, nm := byPos.Stats().KeyN, byMem.Stats().KeyN; np != nm {
			return fmt.Errorf("check: summary stream %q: %d positions for %d members", store, np, nm)
		}
		return byPos.ForEach(func(k, v []byte) error {
			p := binary.BigEndian.Uint64(k)
			if p > head {
				return fmt.Errorf("check: summary stream %q: position %d beyond head %d", store, p, head)
			}
			if !bytes.Equal(byMem.Get(v), k) {
				return fmt.Errorf("check: summary stream %q: member %q at position %d is indexed elsewhere", store, v, p)
			}
			return nil
		})
	})
}
