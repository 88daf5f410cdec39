package storetest

import (
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// StateSetter overwrites a register's state as stored, bypassing the
// applier: how a backend's test corrupts its bookkeeping.
type StateSetter func(t *testing.T, s hqstore.Backend, rs hqstore.RegisterState)

// CheckFindsReviewBookkeeping: Check finds a register state whose review
// bookkeeping does not match the records (the count of events held for
// review, the first reused number the acks stay below, the first event
// held beyond the gap): such a state acknowledges what head office holds
// different content for, or keeps a register waiting for nothing.
func CheckFindsReviewBookkeeping(t *testing.T, open Opener, set StateSetter) {
	s := open(t, hqstore.Options{})
	for seq := uint64(1); seq <= 5; seq++ {
		apply(t, s, incEv(seq, "m1", 10, "aaaa"))
	}
	apply(t, s, incEv(4, "m2", 40, "aaaa")) // a restored copy: held as reused
	apply(t, s, incEv(8, "m1", 80, "aaaa")) // beyond the gap 6..7
	apply(t, s, incEv(3, "m3", 30, "bbbb")) // another ledger: held as incarnation
	rs, err := s.RegisterState("r1")
	if err != nil {
		t.Fatal(err)
	}
	if rs.ReusedFrom != 4 || rs.Review != 2 || rs.Held != 1 || rs.HeldFrom != 8 {
		t.Fatalf("state %+v, want reused from 4, 2 for review, 8 held", rs)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("check of a sound store: %v", err)
	}
	for _, tc := range []struct {
		name  string
		bad   func(*hqstore.RegisterState)
		words string
	}{
		{"review count", func(rs *hqstore.RegisterState) { rs.Review = 1 }, "held for review"},
		{"reused from above", func(rs *hqstore.RegisterState) { rs.ReusedFrom = 5 }, "reused_from"},
		{"reused from below", func(rs *hqstore.RegisterState) { rs.ReusedFrom = 2 }, "reused_from"},
		{"held from", func(rs *hqstore.RegisterState) { rs.HeldFrom = 9 }, "held_from"},
	} {
		bad := rs
		tc.bad(&bad)
		set(t, s, bad)
		err := s.Check()
		if err == nil || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("%s: check %v, want an error about %s", tc.name, err, tc.words)
		}
		set(t, s, rs)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("check after the state was put back: %v", err)
	}
}
