package hqstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// Member erasure (GDPR article 17; docs/hq.md "Erasing a member"). The
// member's personal data goes: the profile (name, contact, birthday,
// consent and its history, aliases) is reduced to the bare id, the
// aliases leave the alias index, and every stored profile event of the
// member (applied, held beyond a gap, held for review, held by policy) is
// redacted to {"erased":id,"sha256":digest} (ledger.RedactRecord). The
// member id stays as an opaque id: purchases, point events and the
// balance stay under it for the accounts, with no personal data attached.
// A profile event for an erased member that arrives later (a resend, a
// register that had not heard of the erasure) is redacted before it is
// stored and held by policy with code CodeErased; a resent event is
// recognised as a duplicate because its redacted form is the same bytes.

// CodeErased is the policy code of a profile event for an erased member:
// held, redacted, never applied.
const CodeErased = "erased"

// bErasures: member id -> Erasure (JSON); its sequence numbers the
// erasures. kErasuresVersion (in bMeta) counts the writes of an erasure
// record (Erasures.ErasuresVersion).
var (
	bErasures        = []byte("erasures")
	kErasuresVersion = []byte("erasures_version")
)

// Erasure is the record of one member's erasure.
type Erasure struct {
	Member string `json:"member"`
	// N numbers the erasures in the order head office made them; the
	// erase documents carry it (docs/protocol.md "Member erasure").
	N  uint64 `json:"n"`
	By string `json:"by,omitempty"`
	// At is head office's clock at the erasure, for people; N orders.
	At time.Time `json:"at"`
	// Stores are the stores where the member was ever seen (where its
	// summaries went); Registers are their registers at the erasure,
	// each asked to erase and confirm.
	Stores    []string `json:"stores,omitempty"`
	Registers []string `json:"registers,omitempty"`
	// Confirmed maps a register to the sequence number of its
	// confirmation (an OutErased event in its stream).
	Confirmed map[string]uint64 `json:"confirmed,omitempty"`
	// Redacted counts the stored profile events redacted.
	Redacted int `json:"redacted"`
}

// Pending lists the registers asked to confirm that have not, in order.
func (e Erasure) Pending() []string {
	var out []string
	for _, r := range e.Registers {
		if _, ok := e.Confirmed[r]; !ok {
			out = append(out, r)
		}
	}
	return out
}

// Erasures is member erasure on a head-office store.
type Erasures interface {
	// EraseMember erases a member's personal data (see above) and records
	// the erasure; by says who asked. ErrUnknownMember for an id never
	// seen. Erasing an erased member changes nothing and returns its
	// record.
	EraseMember(id, by string) (Erasure, error)
	// Erasures lists every erasure in the order made (N).
	Erasures() ([]Erasure, error)
	// ErasureOf returns a member's erasure; ErrNotErased when it has none.
	ErasureOf(id string) (Erasure, error)
	// ErasuresVersion moves with every write of an erasure record (a new
	// erasure, a register's confirmation), in the transaction that writes
	// it, and nothing else moves it. Head office reads and publishes its
	// erasures again only when it moved; on PostgreSQL it is in the shared
	// database, so every worker sees any worker's change. A store that
	// never erased anyone says 0.
	ErasuresVersion() (uint64, error)
}

// ErrNotErased is ErasureOf's answer for a member never erased.
var ErrNotErased = errors.New("hqstore: member not erased")

// EraseTxn is what EraseIn needs beyond Txn.
type EraseTxn interface {
	Txn
	DeleteAlias(alias string) error
	// RewriteProfiles offers fn every stored record that may hold a
	// member or consent event (applied, held beyond a gap, held for
	// review, held by policy) and stores what fn returns in its place
	// (nil: unchanged); it returns how many it replaced.
	RewriteProfiles(fn func(rec []byte) ([]byte, error)) (int, error)
}

// EraseIn erases member id inside tx as erasure number n (see
// Erasures.EraseMember); stores and registers are whom to ask.
func EraseIn(tx EraseTxn, id, by string, n uint64, at time.Time, stores, registers []string) (Erasure, error) {
	if prev, err := tx.Erasure(id); err != nil {
		return Erasure{}, err
	} else if prev != nil {
		return parseErasure(prev)
	}
	row, ok, err := tx.Member(id)
	if err != nil {
		return Erasure{}, err
	}
	if !ok {
		return Erasure{}, fmt.Errorf("erase %s: %w", id, ErrUnknownMember)
	}
	m := recOf(row)
	p, err := m.profile()
	if err != nil {
		return Erasure{}, err
	}
	for _, al := range p.Aliases {
		owner, err := tx.Alias(al)
		if err != nil {
			return Erasure{}, err
		}
		if owner == id {
			if err := tx.DeleteAlias(al); err != nil {
				return Erasure{}, err
			}
		}
	}
	m.prof, m.profileDirty = &ledger.Member{ID: id}, true
	nrow, err := m.row()
	if err != nil {
		return Erasure{}, err
	}
	if err := tx.PutMember(nrow); err != nil {
		return Erasure{}, err
	}
	redacted, err := tx.RewriteProfiles(func(rec []byte) ([]byte, error) { return redactStored(rec, id) })
	if err != nil {
		return Erasure{}, err
	}
	e := Erasure{Member: id, N: n, By: by, At: at.UTC(), Stores: stores, Registers: registers, Redacted: redacted}
	if err := putErasure(tx, e); err != nil {
		return Erasure{}, err
	}
	// Registers get the bare summary too (no profile, the balance).
	return e, tx.MarkChanged(id, nil, at)
}

func putErasure(tx Txn, e Erasure) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.PutErasure(e.Member, v)
}

func parseErasure(v []byte) (Erasure, error) {
	var e Erasure
	if err := json.Unmarshal(v, &e); err != nil {
		return Erasure{}, fmt.Errorf("erasure record: %w", err)
	}
	return e, nil
}

// mayBeProfile is the cheap test before a stored record is decoded.
func mayBeProfile(rec []byte) bool {
	return bytes.Contains(rec, []byte(`"type":"`+ledger.OutMember+`"`)) || bytes.Contains(rec, []byte(`"type":"`+ledger.OutConsent+`"`))
}

// redactStored returns the redacted form of a stored record (an event as
// encodeRecord stores it, or a review or policy record wrapping one) when
// it is a profile event of member; nil otherwise.
func redactStored(rec []byte, member string) ([]byte, error) {
	if !mayBeProfile(rec) {
		return nil, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(rec, &probe); err != nil {
		return nil, fmt.Errorf("stored record: %w", err)
	}
	if inner, ok := probe["record"]; ok {
		out, err := redactStored(inner, member)
		if out == nil || err != nil {
			return nil, err
		}
		probe["record"] = out
		return json.Marshal(probe)
	}
	var r ledger.OutboxRecord
	if err := json.Unmarshal(rec, &r); err != nil {
		return nil, fmt.Errorf("stored record: %w", err)
	}
	if !ledger.IsProfileRecord(r.Type) || ledger.ProfileMember(r.Data) != member {
		return nil, nil
	}
	if _, ok := ledger.RedactedMember(r.Data); ok {
		return nil, nil
	}
	return encodeRecord(ledger.RedactRecord(r, member)), nil
}

// erasedOp redacts a profile event for an erased member (or one a
// register already redacted) before anything stores it.
func (a *applier) erasedOp(o op) (op, error) {
	id := profileOf(o)
	if id == "" {
		return o, nil
	}
	if o.erased == "" {
		if v, err := a.tx.Erasure(id); err != nil || v == nil {
			return o, err
		}
	}
	o.e.OutboxRecord = ledger.RedactRecord(o.e.OutboxRecord, id)
	o.raw = encodeRecord(o.e.OutboxRecord)
	o.member, o.consent, o.erased = nil, nil, id
	return o, nil
}

// erasedHold holds a redacted profile event by policy (applied to its
// stream, not to the member).
func (a *applier) erasedHold(rs *RegisterState, o op) error {
	return a.policyHold(rs, o, policy.Verdict{Code: CodeErased,
		Text: fmt.Sprintf("member %s was erased: its profile event is not applied and its data not kept", o.erased)})
}

// confirmErasure records a register's confirmation of an erasure.
func (a *applier) confirmErasure(e Event, c *ledger.Erased) error {
	v, err := a.tx.Erasure(c.MemberID)
	if err != nil || v == nil {
		return err // an erasure head office does not know: kept in the stream only
	}
	er, err := parseErasure(v)
	if err != nil {
		return err
	}
	if _, ok := er.Confirmed[e.Register]; ok {
		return nil
	}
	if er.Confirmed == nil {
		er.Confirmed = map[string]uint64{}
	}
	er.Confirmed[e.Register] = e.Seq
	return putErasure(a.tx, er)
}

// eraseTargets are the stores where member was ever seen and their
// registers (from the registers' states), sorted.
func eraseTargets(b interface {
	ShopsOf(string, int) ([]string, error)
	Registers() ([]RegisterState, error)
}, member string) (stores, registers []string, err error) {
	if stores, err = b.ShopsOf(member, 0); err != nil {
		return nil, nil, err
	}
	in := map[string]bool{}
	for _, s := range stores {
		in[s] = true
	}
	rs, err := b.Registers()
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rs {
		if in[r.Store] {
			registers = append(registers, r.Register)
		}
	}
	sort.Strings(registers)
	return stores, registers, nil
}

// EraseTargets is eraseTargets for other backends.
func EraseTargets(b interface {
	ShopsOf(string, int) ([]string, error)
	Registers() ([]RegisterState, error)
}, member string) (stores, registers []string, err error) {
	return eraseTargets(b, member)
}

// ParseErasure decodes a stored erasure record (Txn.PutErasure).
func ParseErasure(v []byte) (Erasure, error) { return parseErasure(v) }

// bbolt backend.

func (b *boltTxn) erasureBucket() (*bolt.Bucket, error) {
	if bk := b.tx.Bucket(bErasures); bk != nil || !b.tx.Writable() {
		return bk, nil
	}
	return b.tx.CreateBucketIfNotExists(bErasures)
}

func (b *boltTxn) Erasure(member string) ([]byte, error) {
	bk, err := b.erasureBucket()
	if err != nil || bk == nil {
		return nil, err
	}
	return bk.Get([]byte(member)), nil
}

func (b *boltTxn) PutErasure(member string, rec []byte) error {
	bk, err := b.erasureBucket()
	if err != nil {
		return err
	}
	if err := bk.Put([]byte(member), rec); err != nil {
		return err
	}
	m := b.tx.Bucket(bMeta)
	return m.Put(kErasuresVersion, u64(getU64(m, kErasuresVersion)+1))
}

func (b *boltTxn) DeleteAlias(alias string) error {
	return b.tx.Bucket(bAliases).Delete([]byte(alias))
}

func (b *boltTxn) RewriteProfiles(fn func(rec []byte) ([]byte, error)) (int, error) {
	n := 0
	rewrite := func(bk *bolt.Bucket) error {
		type kv struct{ k, v []byte }
		var put []kv
		err := bk.ForEach(func(k, v []byte) error {
			if v == nil {
				return nil // a nested bucket
			}
			nv, err := fn(v)
			if nv != nil {
				put = append(put, kv{append([]byte(nil), k...), nv})
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, p := range put {
			if err := bk.Put(p.k, p.v); err != nil {
				return err
			}
		}
		n += len(put)
		return nil
	}
	for _, parent := range [][]byte{bEvents, bHeld} {
		p := b.tx.Bucket(parent)
		var regs [][]byte
		if err := p.ForEachBucket(func(k []byte) error { regs = append(regs, append([]byte(nil), k...)); return nil }); err != nil {
			return n, err
		}
		for _, r := range regs {
			if err := rewrite(p.Bucket(r)); err != nil {
				return n, err
			}
		}
	}
	for _, name := range [][]byte{bReview, bPolicyHeld} {
		if bk := b.tx.Bucket(name); bk != nil {
			if err := rewrite(bk); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// EraseMember erases a member (Erasures.EraseMember).
func (s *Store) EraseMember(id, by string) (Erasure, error) {
	stores, regs, err := eraseTargets(s, id)
	if err != nil {
		return Erasure{}, err
	}
	var e Erasure
	err = s.update(func(tx *bolt.Tx) error {
		bt := newBoltTxn(tx)
		bk, err := bt.erasureBucket()
		if err != nil {
			return err
		}
		if v := bk.Get([]byte(id)); v != nil {
			e, err = parseErasure(v)
			return err
		}
		n, err := bk.NextSequence()
		if err != nil {
			return err
		}
		now, _ := s.opts.Clock.Now()
		e, err = EraseIn(bt, id, by, n, now, stores, regs)
		return err
	})
	return e, err
}

// Erasures lists every erasure in the order made.
func (s *Store) Erasures() ([]Erasure, error) {
	var out []Erasure
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bErasures)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(_, v []byte) error {
			e, err := parseErasure(v)
			out = append(out, e)
			return err
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out, err
}

// ErasuresVersion says when the erasure records changed
// (Erasures.ErasuresVersion).
func (s *Store) ErasuresVersion() (v uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error { v = getU64(tx.Bucket(bMeta), kErasuresVersion); return nil })
	return v, err
}

// ErasureOf returns a member's erasure (ErrNotErased when none).
func (s *Store) ErasureOf(id string) (Erasure, error) {
	var e Erasure
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bErasures)
		var v []byte
		if bk != nil {
			v = bk.Get([]byte(id))
		}
		if v == nil {
			return fmt.Errorf("%s: %w", id, ErrNotErased)
		}
		var err error
		e, err = parseErasure(v)
		return err
	})
	return e, err
}

// CompactFile rewrites a closed bbolt file (head office's store, the
// contact log) with only its live data: bbolt keeps deleted and
// overwritten values in free pages until they are reused, so after an
// erasure the old bytes would still be in the file. The copy is written
// beside it, synced and renamed over it (a power cut leaves the old file
// or the new one).
func CompactFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	src, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("compact %s: %w", path, err)
	}
	defer src.Close()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, fi.Mode().Perm(), &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}

// profileOf is the member whose profile o writes (empty: none).
func profileOf(o op) string {
	switch {
	case o.member != nil:
		return o.member.ID
	case o.consent != nil:
		return o.consent.MemberID
	}
	return o.erased
}

// erasedHeldOp is erasedOp for an event drained from those held beyond a
// gap: the member's row is read (a backend with row locks locks it) before
// the erasure is looked up, so an erasure committing meanwhile either
// came first (and is seen) or waits for this commit and redacts what it
// wrote (review10: a drain that read the held record before an erasure
// rewrote it applied the unredacted profile).
func (a *applier) erasedHeldOp(o op) (op, error) {
	if id := profileOf(o); id != "" {
		if _, _, err := a.tx.Member(id); err != nil {
			return o, err
		}
	}
	return a.erasedOp(o)
}
