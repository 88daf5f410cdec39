package hqstore

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

// A store of schema 1 (no running figures) opened for writing gets them
// computed from its purchases, and Check agrees.
func TestFiguresBuiltForSchema1(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "hq.db")
	opts := &Options{Clock: ledgertest.NewClock(now, true)}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for i, d := range []int{-30, -20, -5} {
		evs = append(evs, Event{Register: "r1", Store: "s1", OutboxRecord: ledger.OutboxRecord{Seq: uint64(i + 1), ID: "r1-" + string(rune('1'+i)), Type: ledger.OutSale,
			WallTime: now.AddDate(0, 0, d), ClockTrusted: true,
			Data: []byte(`{"id":"s` + string(rune('1'+i)) + `","member_id":"m1","total":1000,"wall_time":"` + now.AddDate(0, 0, d).Format(time.RFC3339) + `","clock_trusted":true}`)}})
	}
	if res, err := s.Apply(evs); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("apply: %v %v", err, res.Rejected)
	}
	want, _, _, err := memberFiguresOf(s, "m1", now)
	if err != nil || want != 3000 {
		t.Fatalf("figures before: %d %v", want, err)
	}
	// As schema 1 left it: no figures.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bFigSales, bFigDays} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put([]byte("schema"), u64(1))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if spend, visits, ok, err := memberFiguresOf(s, "m1", now); err != nil || spend != 3000 || visits != 3 || !ok {
		t.Fatalf("figures after the rebuild: %d %d %v %v", spend, visits, ok, err)
	}
}

func memberFiguresOf(s *Store, id string, now time.Time) (spend ledger.Money, visits int, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		sp, v, r, err := runningFigures(newBoltTxn(tx), id, time.Time{}, now)
		spend, visits, ok = sp, v, r != nil
		return err
	})
	return spend, visits, ok, err
}
