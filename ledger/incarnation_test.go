package ledger_test

import (
	"encoding/binary"
	"regexp"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestIncarnation: a ledger gets an incarnation when it is created, keeps
// it across reopening, another ledger gets another one, and a schema 3
// file (before incarnations) gets one when opened.
func TestIncarnation(t *testing.T) {
	f := newFixture(t, nil)
	a, err := f.l.Incarnation()
	if err != nil || !hex32.MatchString(a) {
		t.Fatalf("incarnation %q %v", a, err)
	}
	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	f.l = ledgertest.OpenAt(t, f.path, f.opts)
	if again, _ := f.l.Incarnation(); again != a {
		t.Fatalf("reopened: %q, was %q", again, a)
	}
	g := newFixture(t, nil)
	if b, _ := g.l.Incarnation(); b == a || !hex32.MatchString(b) {
		t.Fatalf("second ledger %q, first %q", b, a)
	}

	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(f.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if err := meta.Delete([]byte("incarnation")); err != nil {
			return err
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, 3)
		return meta.Put([]byte("schema"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f.l = ledgertest.OpenAt(t, f.path, f.opts) // Check runs at cleanup
	c, err := f.l.Incarnation()
	if err != nil || !hex32.MatchString(c) || c == a {
		t.Fatalf("migrated schema 3 file: %q %v", c, err)
	}
	if st, err := f.l.Stats(); err != nil || st.LastSeq != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
}
