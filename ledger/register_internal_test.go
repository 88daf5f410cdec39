package ledger

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestLedgerBelongsToItsRegister: a ledger records the register id it was
// made for and refuses to open read-write for another (ErrOtherRegister),
// leaving the file untouched: a ledger copied from another register, or a
// register.id changed under it, used to open silently and send events
// whose data names the other register, which head office refuses, so the
// stream stopped for good (review5). A ledger of a release before the id
// was kept names it in its sales; one without sales is bound to the first
// register opening it. Read-only opens (loyaltyctl) need no register.
func TestLedgerBelongsToItsRegister(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()
	open := func(path, register string) (*Ledger, error) {
		return Open(path, &Options{Register: register, Clock: fixedClock{at}})
	}
	mustOpen := func(path, register string) *Ledger {
		t.Helper()
		l, err := open(path, register)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	closeL := func(l *Ledger) {
		t.Helper()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	withSale := func(register string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "ledger.db")
		l := mustOpen(path, register)
		if _, err := l.Enrol(ctx, Member{ID: "m1", Name: "Dana"}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.RecordSale(ctx, typicalSale("s1", 1)); err != nil {
			t.Fatal(err)
		}
		closeL(l)
		return path
	}
	forget := func(path string) { // as a release before the id was kept wrote it
		t.Helper()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(kRegister) }); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(path, register, owner string) {
		t.Helper()
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		l, err := open(path, register)
		if err == nil {
			l.Close()
			t.Fatalf("ledger of %s opened for %s", owner, register)
		}
		if !errors.Is(err, ErrOtherRegister) || !strings.Contains(err.Error(), `"`+owner+`"`) || !strings.Contains(err.Error(), `"`+register+`"`) {
			t.Fatalf("ledger of %s opened for %s: %v, want ErrOtherRegister naming both", owner, register, err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Fatalf("the refused open changed the file")
		}
	}

	t.Run("kept", func(t *testing.T) {
		path := withSale("store1-r1")
		refused(path, "store2-r1", "store1-r1")
		ro, err := Open(path, &Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only open: %v", err)
		}
		closeL(ro)
		closeL(mustOpen(path, "store1-r1"))
	})
	t.Run("older release with sales", func(t *testing.T) {
		path := withSale("store1-r1")
		forget(path)
		refused(path, "store2-r1", "store1-r1")
		closeL(mustOpen(path, "store1-r1"))
		refused(path, "store2-r1", "store1-r1") // now from the kept id
	})
	t.Run("older schema", func(t *testing.T) {
		// Refused before its upgrade: the release that wrote it can still
		// open it (review6: it was upgraded to this schema, then refused).
		path := copyFixture(t, "testdata/schema8.db.gz")
		refused(path, "store9-r9", "store1-r1")
		closeL(mustOpen(path, "store1-r1"))
		refused(path, "store9-r9", "store1-r1")
	})
	t.Run("older release without sales", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		closeL(mustOpen(path, "store1-r1"))
		forget(path)
		closeL(mustOpen(path, "store2-r1"))
		refused(path, "store1-r1", "store2-r1")
	})
}
