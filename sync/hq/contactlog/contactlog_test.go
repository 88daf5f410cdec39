package contactlog_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
)

func rec(id string, k retention.ContactKind, at string) contactlog.Record {
	t, _ := time.Parse("2006-01-02", at)
	return contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: id, Kind: k, At: t.Add(9 * time.Hour), Channel: "sms"}}
}

func TestMarkIdempotentAndPersistent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "contacts.db")
	s, err := contactlog.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    contactlog.Record
		new  bool
	}{
		{"first", rec("m1", "due", "2026-06-01"), true},
		{"same day again", rec("m1", "due", "2026-06-01"), false},
		{"other kind same day", rec("m1", "birthday", "2026-06-01"), true},
		{"prefix member", rec("m10", "due", "2026-06-01"), true},
		{"later", rec("m1", "sleeping", "2026-06-10"), true},
	} {
		added, err := s.Mark(tc.r)
		if err != nil || added != tc.new {
			t.Errorf("%s: added %v err %v, want %v", tc.name, added, err, tc.new)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = contactlog.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Contacts("m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Kind != "sleeping" {
		t.Errorf("m1 contacts after reopen: %+v", got)
	}
	if got, _ := s.Contacts("m"); len(got) != 0 {
		t.Errorf("prefix leak: %+v", got)
	}
	n := 0
	if err := s.Each(func(contactlog.Record) error { n++; return nil }); err != nil || n != 4 {
		t.Errorf("each: %d records, %v", n, err)
	}
}

func TestMarkRejectsBadRecords(t *testing.T) {
	s, err := contactlog.Open(filepath.Join(t.TempDir(), "c.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name string
		r    contactlog.Record
	}{
		{"no member", rec(" ", "due", "2026-06-01")},
		{"unknown kind", rec("m", "spam", "2026-06-01")},
		{"no time", contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: "m", Kind: "due"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Mark(tc.r); !errors.Is(err, contactlog.ErrInvalid) {
				t.Errorf("err = %v", err)
			}
		})
	}
	n := 0
	s.Each(func(contactlog.Record) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d records stored after rejections", n)
	}
}

func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := contactlog.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := contactlog.Open(path, &contactlog.Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, contactlog.ErrLocked) {
		t.Errorf("second open: %v", err)
	}
}

// TestCapsHoldAcrossRuns runs the contact list, marks what it sent, and
// runs again: the sleeping offer is made once per lapse, and a purchase
// starts a new lapse.
func TestCapsHoldAcrossRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	day := func(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }
	sleeper := retention.Member{ID: "s", Consent: true, Purchases: []retention.Purchase{
		{SaleID: "1", At: day("2026-04-01"), Amount: 1000}, {SaleID: "2", At: day("2026-04-11"), Amount: 1000}}}
	sent := 0
	for week := range 6 {
		asOf := day("2026-06-01").AddDate(0, 0, 7*week)
		s, err := contactlog.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := retention.Analyze([]retention.Member{sleeper}, asOf, &retention.Config{Sleeping: retention.SleepRule{Kind: retention.SleepIntervals}})
		if err != nil {
			t.Fatal(err)
		}
		cs, err := a.ContactList(s, &retention.ContactOptions{MaxPerLapse: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if _, err := s.Mark(contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: c.MemberID, Kind: c.Kind, At: asOf}}); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		s.Close()
	}
	if sent != 1 {
		t.Errorf("%d reminders over six weekly runs to a sleeping member, want the one sleeping offer", sent)
	}
	// The member buys again and lapses again: reminders resume.
	sleeper.Purchases = append(sleeper.Purchases, retention.Purchase{SaleID: "3", At: day("2026-07-20"), Amount: 1000})
	s, err := contactlog.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := retention.Analyze([]retention.Member{sleeper}, day("2026-10-01"), &retention.Config{Sleeping: retention.SleepRule{Kind: retention.SleepIntervals}})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := a.ContactList(s, &retention.ContactOptions{MaxPerLapse: 2})
	if err != nil || len(cs) != 1 || cs[0].Attempt != 1 {
		t.Errorf("new lapse: %+v, %v", cs, err)
	}
}
