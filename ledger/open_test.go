package ledger_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
)

func TestSecondOpenFailsFastWithErrLocked(t *testing.T) {
	f := newFixture(t, nil)
	start := time.Now()
	_, err := ledger.Open(f.path, &ledger.Options{Register: "r1", LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ledger.ErrLocked) || !strings.Contains(err.Error(), f.path) {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second open took %v", d)
	}
}

// ledgerFile makes a valid ledger with one sale and returns its path.
func ledgerFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(path, &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(context.Background(), ledger.SaleRequest{ID: "s1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 5}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenRefusesAndLeavesFileUntouched(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   error
	}{
		{"newer schema", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Update(func(tx *bolt.Tx) error {
				v := make([]byte, 8)
				binary.BigEndian.PutUint64(v, ledger.SchemaVersion+1)
				return tx.Bucket([]byte("meta")).Put([]byte("schema"), v)
			})
			if err != nil {
				t.Fatal(err)
			}
		}, ledger.ErrSchemaTooNew},
		{"both meta pages smashed", func(t *testing.T, path string) {
			smash(t, path, 0, 64)
			smash(t, path, 4096, 64)
		}, ledger.ErrCorrupt},
		{"not a bbolt file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a ledger "), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ledger.ErrCorrupt},
		{"bbolt file of something else", func(t *testing.T, path string) {
			os.Remove(path)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
				t.Fatal(err)
			}
		}, ledger.ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ledgerFile(t)
			tc.damage(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ledger.Open(path, &ledger.Options{Register: "r1"})
			if err == nil {
				l.Close()
				t.Fatal("opened a damaged file")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want %v naming the file", err, tc.want)
			}
			if errors.Is(err, ledger.ErrCorrupt) && !strings.Contains(err.Error(), "backup") {
				t.Fatalf("corrupt error does not say how to recover: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("refused file was modified")
			}
		})
	}
}

func smash(t *testing.T, path string, off int64, n int) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(bytes.Repeat([]byte{0xA5}, n), off+16); err != nil {
		t.Fatal(err)
	}
}

func TestOpenValidatesOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		opts *ledger.Options
	}{
		{"nil options have no register", nil},
		{"negative offline limit", &ledger.Options{Register: "r1", OfflineRedeemLimit: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ledger.Open(filepath.Join(dir, "x.db"), tc.opts); !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestBackupIsAConsistentLedger(t *testing.T) {
	f := newFixture(t, nil)
	f.enrol(t, "m1", "c1")
	f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1"})
	var buf bytes.Buffer
	if _, err := f.l.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ledger.Open(path, &ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if m, err := c.LookupAlias("c1"); err != nil || m.ID != "m1" {
		t.Fatalf("backup lookup %+v %v", m, err)
	}
	if b, _ := c.Balance("m1"); b != 10 {
		t.Fatalf("backup balance %d", b)
	}
	if _, err := c.RecordSale(context.Background(), ledger.SaleRequest{ID: "x", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1}}}); !errors.Is(err, ledger.ErrReadOnly) {
		t.Fatalf("write on read-only: %v", err)
	}
}

// TestOpenMigratesSchema1: files of the first development builds (events,
// lots and purchases in three buckets, no expiry index, no counters) are
// migrated on the next read-write open.
func TestOpenMigratesSchema1(t *testing.T) {
	f := newFixture(t, nil)
	f.enrol(t, "m1")
	f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1"})
	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite the file into the schema 1 layout.
	db, err := bolt.Open(f.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		old := map[byte]string{'e': "events", 'l': "lots", 'p': "purchases"}
		members, err := tx.CreateBucketIfNotExists([]byte("members"))
		if err != nil {
			return err
		}
		for _, name := range old {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		err = tx.Bucket([]byte("rows")).ForEach(func(k, v []byte) error {
			if k[0] == 0 {
				return nil // the expiry index: schema 1 had none
			}
			member, kind, seq := k[:len(k)-10], k[len(k)-9], k[len(k)-8:]
			if kind == 'm' { // the member records had a bucket of their own
				return members.Put(member, append([]byte(nil), v...))
			}
			if old[kind] == "" {
				return nil // rows later schemas added (day rows of the window)
			}
			key := append(append(append([]byte{}, member...), 0), seq...)
			return tx.Bucket([]byte(old[kind])).Put(key, append([]byte(nil), v...))
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket([]byte("rows")); err != nil {
			return err
		}
		meta := tx.Bucket([]byte("meta"))
		if err := meta.Delete([]byte("counts")); err != nil {
			return err
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, 1)
		return meta.Put([]byte("schema"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Open(f.path, &ledger.Options{ReadOnly: true}); !errors.Is(err, ledger.ErrReadOnly) {
		t.Fatalf("read-only open of a schema 1 file: %v", err)
	}
	f.l = ledgertestOpen(t, f)
	if err := f.l.Check(); err != nil {
		t.Fatal(err)
	}
	if st, err := f.l.Stats(); err != nil || st.Members != 1 || st.Sales != 1 || st.Events != 1 {
		t.Fatalf("counters after migration: %+v %v", st, err)
	}
	if ps, err := f.l.Purchases("m1"); err != nil || len(ps) != 1 {
		t.Fatalf("purchases after migration: %+v %v", ps, err)
	}
	f.clock.Advance(400 * 24 * time.Hour)
	if n, err := f.l.ExpireDue(context.Background()); err != nil || n != 1 || f.balance(t, "m1") != 0 {
		t.Fatalf("expire after migration: %d %v", n, err)
	}
}

// TestOpenSchema9Ledger: schema 10 only adds head office's bonus state to
// member records (a schema 9 program could not read such a record, so
// the number moved), schema 11 the sale log (a schema 10 program would
// ignore it). A schema 9 or 10 file opens read-only as it is and is
// upgraded by a read-write open, nothing but its number rewritten.
func TestOpenSchema9Ledger(t *testing.T) {
	for _, old := range []uint64{9, 10} {
		t.Run(fmt.Sprintf("schema %d", old), func(t *testing.T) { openOlderSchema(t, old) })
	}
}

func openOlderSchema(t *testing.T, old uint64) {
	path := ledgerFile(t)
	schema := func() uint64 {
		t.Helper()
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var v uint64
		db.View(func(tx *bolt.Tx) error {
			v = binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema")))
			return nil
		})
		return v
	}
	if s := schema(); s != 11 || ledger.SchemaVersion != 11 {
		t.Fatalf("a new ledger has schema %d (SchemaVersion %d), want 11", s, ledger.SchemaVersion)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, old)
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), v)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := ledger.Open(path, &ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of a schema %d file: %v", old, err)
	}
	if err := ro.Check(); err != nil {
		t.Fatalf("check of a schema %d file: %v", old, err)
	}
	ro.Close()
	if s := schema(); s != old {
		t.Fatalf("a read-only open changed the schema to %d", s)
	}
	l, err := ledger.Open(path, &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatalf("read-write open of a schema %d file: %v", old, err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	if st, err := l.Stats(); err != nil || st.Sales != 1 {
		t.Fatalf("after the upgrade: %+v %v", st, err)
	}
	l.Close()
	if s := schema(); s != 11 {
		t.Fatalf("after a read-write open: schema %d, want 11", s)
	}
}
