package contactlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// Sentinel errors. Callers test with errors.Is.
var (
	// ErrInvalid reports a record that cannot be stored (no member, unknown
	// kind, zero time).
	ErrInvalid = errors.New("contactlog: invalid record")
	// ErrLocked reports that another process has the file open.
	ErrLocked = errors.New("contactlog: file is locked by another process")
	// ErrClosed reports use after Close.
	ErrClosed = errors.New("contactlog: closed")
)

var (
	bucket     = []byte("contacts")
	runsBucket = []byte("runs") // key YYYY-MM-DD of a contact-list run that recorded its contacts
)

// Options configures Open. A nil *Options means defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the file; default 1s.
	LockTimeout time.Duration
	// Location is the time zone of the calendar day in a record's key;
	// default UTC.
	Location *time.Location
}

// Store is an open contact log.
type Store struct {
	db  *bolt.DB
	loc *time.Location
}

// Open opens or creates the contact log at path.
func Open(path string, opts *Options) (*Store, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = time.Second
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(runsBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// bbolt syncs a new file but not its directory entry.
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Store{db: db, loc: o.Location}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Record is one stored contact.
type Record struct {
	retention.ContactRecord        // member, kind, time and channel ("sms", "email", "phone", "in-store")
	Operator                string `json:"operator,omitempty"` // who marked it
}

// key orders records by member then day; the member id is length-prefixed
// so "a" and "ab" never interleave. The channel is part of the key: the
// same member, kind and day on another channel is another contact.
func (s *Store) key(r Record) []byte {
	d := r.At.In(s.loc).Format("2006-01-02")
	k := fmt.Appendf(nil, "%04d%s\x00%s\x00%s", len(r.MemberID), r.MemberID, d, r.Kind)
	if r.Channel != "" {
		k = fmt.Appendf(k, "\x00%s", r.Channel)
	}
	return k
}

func prefix(member string) []byte {
	return fmt.Appendf(nil, "%04d%s\x00", len(member), member)
}

// Mark records a contact. It reports whether the record is new: marking
// the same member, kind, day and channel again changes nothing and returns
// false.
func (s *Store) Mark(r Record) (bool, error) {
	if strings.TrimSpace(r.MemberID) == "" || len(r.MemberID) > 9999 {
		return false, fmt.Errorf("%w: member id %q", ErrInvalid, r.MemberID)
	}
	if _, err := retention.ParseContactKind(string(r.Kind)); err != nil {
		return false, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if r.At.IsZero() {
		return false, fmt.Errorf("%w: no time", ErrInvalid)
	}
	if r.Channel != "" && !retention.ValidChannel(r.Channel) {
		return false, fmt.Errorf("%w: channel %q (want one of %v)", ErrInvalid, r.Channel, retention.Channels)
	}
	val, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("mark: %w", err)
	}
	added := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		k := s.key(r)
		if b.Get(k) != nil {
			return nil
		}
		added = true
		return b.Put(k, val)
	})
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return false, ErrClosed
		}
		return false, fmt.Errorf("mark: %w", err)
	}
	return added, nil
}

// Contacts returns a member's contacts, oldest first. It implements
// retention.ContactHistory.
func (s *Store) Contacts(memberID string) ([]retention.ContactRecord, error) {
	var out []retention.ContactRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		p := prefix(memberID)
		for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), string(p)); k, v = c.Next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
			out = append(out, r.ContactRecord)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("contacts of %s: %w", memberID, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// Each calls fn for every record, by member then day.
func (s *Store) Each(fn func(Record) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
			return fn(r)
		})
	})
}

// MarkRun records that a contact list was run (and its contacts recorded)
// on the calendar day of at. Follow-up windows are evaluated since the
// last run (retention.ContactOptions.LastRun).
func (s *Store) MarkRun(at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("%w: no time", ErrInvalid)
	}
	d := at.In(s.loc).Format("2006-01-02")
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(runsBucket).Put([]byte(d), []byte(d))
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// LastRunBefore returns the day of the latest run strictly before the
// calendar day of at, or false when there was none.
func (s *Store) LastRunBefore(at time.Time) (time.Time, bool, error) {
	d := at.In(s.loc).Format("2006-01-02")
	var out time.Time
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(runsBucket).Cursor()
		k, _ := c.Seek([]byte(d))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		if k == nil {
			return nil
		}
		t, err := time.ParseInLocation("2006-01-02", string(k), s.loc)
		if err != nil {
			return fmt.Errorf("run %q: %w", k, err)
		}
		out, found = t, true
		return nil
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return time.Time{}, false, ErrClosed
	}
	return out, found, err
}

var _ retention.ContactHistory = (*Store)(nil)

// Forget deletes every contact recorded for a member (its erasure,
// docs/hq.md "Erasing a member") and returns how many. The file keeps the
// old bytes in free pages until it is compacted (hqstore.CompactFile).
func (s *Store) Forget(memberID string) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		p := prefix(memberID)
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(p); k != nil && strings.HasPrefix(string(k), string(p)); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("forget %s: %w", memberID, err)
	}
	return n, nil
}
