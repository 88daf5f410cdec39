package hqstore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

// A store of schema 2 (each member's profile after its row) is read as it
// is, read-only too; opened for writing it becomes schema 3 without a
// rewrite, and a member's profile moves to its own bucket when the
// member's row is next written. A point event leaves the profile alone.
// A program before 3 would miss the profiles: a newer schema is refused.
func TestProfilesApartFromSchema2(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "hq.db")
	opts := &Options{Clock: ledgertest.NewClock(now, true)}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(seq uint64, typ ledger.OutboxType, data string) Event {
		return Event{Register: "r1", Store: "s1", OutboxRecord: ledger.OutboxRecord{Seq: seq, ID: "r1-" + string(rune('0'+seq)), Type: typ,
			WallTime: now, ClockTrusted: true, Data: []byte(data)}}
	}
	if res, err := s.Apply([]Event{
		ev(1, ledger.OutMember, `{"id":"m1","name":"Ann Lee","aliases":["card-1"]}`),
		ev(2, ledger.OutPoints, `{"register":"r1","kind":"earn","member_id":"m1","points":10}`),
		ev(3, ledger.OutPoints, `{"register":"r1","kind":"earn","member_id":"m2","points":5}`),
	}); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("apply: %v %v", err, res.Rejected)
	}
	rowLen := func(id string) (row, prof int) {
		s.db.View(func(tx *bolt.Tx) error {
			row = len(tx.Bucket(bMembers).Get([]byte(id)))
			if pb := tx.Bucket(bProfiles); pb != nil {
				prof = len(pb.Get([]byte(id)))
			}
			return nil
		})
		return row, prof
	}
	if row, prof := rowLen("m1"); row > 40 || prof == 0 {
		t.Fatalf("schema 3 row of m1: %d bytes, profile %d bytes; want the profile apart", row, prof)
	}
	// As schema 2 left it: the profile after the row, no profile bucket.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		pb, mb := tx.Bucket(bProfiles), tx.Bucket(bMembers)
		if err := pb.ForEach(func(k, v []byte) error {
			return mb.Put(k, append(append([]byte(nil), mb.Get(k)...), v...))
		}); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bProfiles); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put([]byte("schema"), u64(2))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	name := func(s *Store) string {
		t.Helper()
		m, err := s.Member("m1")
		if err != nil {
			t.Fatal(err)
		}
		return m.Name
	}
	ro, err := Open(path, &Options{Clock: opts.Clock, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := name(ro); got != "Ann Lee" {
		t.Fatalf("read-only schema 2: name %q", got)
	}
	ro.Close()

	if s, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	if got := name(s); got != "Ann Lee" {
		t.Fatalf("schema 2 opened for writing: name %q", got)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Apply([]Event{ev(4, ledger.OutPoints, `{"register":"r1","kind":"earn","member_id":"m1","points":7}`)}); err != nil || res.Applied != 1 {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if row, prof := rowLen("m1"); row > 40 || prof == 0 {
		t.Fatalf("m1 after a point event: row %d bytes, profile %d bytes; want the profile moved out", row, prof)
	}
	if bal, _ := s.Balance("m1"); bal != 17 || name(s) != "Ann Lee" {
		t.Fatalf("after the move: balance %d, name %q", bal, name(s))
	}
	if m, err := s.LookupAlias("card-1"); err != nil || m.ID != "m1" {
		t.Fatalf("alias: %v %v", m.ID, err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put([]byte("schema"), u64(schemaVersion+1)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, opts); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("a newer schema opened: %v", err)
	}
}
