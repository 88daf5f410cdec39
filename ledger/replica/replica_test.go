package replica_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/powerfs"
	"github.com/loyalty-terminal/loyalty/ledger/replica"
)

func opts() *ledger.Options {
	return &ledger.Options{Register: "r1", Engine: &ledgertest.Engine{}, OfflineRedeemLimit: 100}
}

// sell records n member sales named prefix1..prefixN.
func sell(t *testing.T, l *ledger.Ledger, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := l.Member("m1"); err != nil {
		if _, err := l.Enrol(ctx, ledger.Member{ID: "m1"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= n; i++ {
		if _, err := l.RecordSale(ctx, ledger.SaleRequest{ID: fmt.Sprintf("%s%d", prefix, i), MemberID: "m1",
			Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1000}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// restoreAndCompare restores the copy in dir and checks that the restored
// ledger has every event of l (same incarnation, same records).
func restoreAndCompare(t *testing.T, l *ledger.Ledger, dir string) replica.Restored {
	t.Helper()
	path := filepath.Join(t.TempDir(), "restored.db")
	res, err := replica.Restore(dir, path, opts())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := l.Outbox(0, 100000)
	r := ledgertest.OpenAt(t, path, opts())
	got, _ := r.Outbox(0, 100000)
	if len(got) != len(want) {
		t.Fatalf("restored %d events, the ledger has %d (%+v)", len(got), len(want), res)
	}
	for i := range want {
		if got[i].ID != want[i].ID || string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("event %d differs:\n%+v\n%+v", i, got[i], want[i])
		}
	}
	i1, _ := l.Incarnation()
	i2, _ := r.Incarnation()
	if i1 != i2 {
		t.Fatalf("incarnation %s restored as %s", i1, i2)
	}
	// The restored ledger goes on from there.
	sell(t, r, "after-restore", 1)
	return res
}

// TestReplicaCopiesEveryEvent: the snapshot plus the log hold every event
// the ledger acknowledged once Step ran; Status says how many a card death
// would lose (Behind); Restore gives them all back, the ones after the
// snapshot through the outbox.
func TestReplicaCopiesEveryEvent(t *testing.T) {
	l := ledgertest.Open(t, opts())
	dir := t.TempDir()
	r, err := replica.New(l, replica.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sell(t, l, "a", 3)
	r.Step() // snapshot with a1..a3
	sell(t, l, "b", 4)
	// Status counts what is behind at the moment it is asked, not at the
	// last step: a "0 behind" read after b1..b4 would be a lie.
	if st := r.Status(); st.Behind != 8 || !st.OK {
		t.Fatalf("before the step: %+v, want 8 events behind", st)
	}
	r.Step()
	st := r.Status()
	if !st.OK || st.Behind != 0 || st.Copied != 15 || st.SnapshotSeq != 7 {
		t.Fatalf("status %+v", st)
	}
	res := restoreAndCompare(t, l, dir)
	if res.SnapshotSeq != 7 || res.Recovered != 8 || res.LastSeq != 15 || res.Torn {
		t.Fatalf("restored %+v", res)
	}
	// Restore never overwrites a ledger.
	if _, err := replica.Restore(dir, l.Path(), opts()); !errors.Is(err, replica.ErrExists) {
		t.Fatalf("restore over a ledger: %v", err)
	}
	// A line cut short at the end (power cut while copying) is left out.
	f, _ := os.OpenFile(filepath.Join(dir, replica.LogName), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":16,"id":"r1-1`)
	f.Close()
	if res := restoreAndCompare(t, l, dir); !res.Torn || res.Recovered != 8 {
		t.Fatalf("torn log: %+v", res)
	}
}

// TestReplicaDeviceFails: a second device that is full, fails with EIO or
// is missing is a warning in Status, never an outage: sales go on, and
// when it works again the copy starts over and catches up.
func TestReplicaDeviceFails(t *testing.T) {
	fs := powerfs.Mount(t, nil)
	for _, tc := range []struct {
		name  string
		fault *powerfs.Fault
		words string
	}{
		{"full", &powerfs.Fault{Op: powerfs.OpWrite, N: 1, Errno: syscall.ENOSPC, Sticky: true}, "full"},
		{"eio on sync", &powerfs.Fault{Op: powerfs.OpSync, N: 1, Errno: syscall.EIO, Sticky: true}, "I/O error"},
		{"missing", nil, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledgertest.Open(t, opts())
			dir := filepath.Join(fs.Dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			r, err := replica.New(l, replica.Options{Dir: dir, RetryEvery: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			sell(t, l, "a", 2)
			r.Step()
			if st := r.Status(); !st.OK || st.Behind != 0 {
				t.Fatalf("before the fault: %+v", st)
			}
			if tc.fault != nil {
				if err := fs.Fail(*tc.fault); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Rename(dir, dir+".away"); err != nil {
				t.Fatal(err)
			}
			sell(t, l, "b", 3) // sales go on
			r.Step()
			st := r.Status()
			if st.OK || !strings.Contains(st.Error, tc.words) || st.Behind != 6 || st.FailingSince.IsZero() {
				t.Fatalf("failing device: %+v", st)
			}
			if tc.fault != nil {
				if err := fs.ClearFaults(); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Rename(dir+".away", dir); err != nil {
				t.Fatal(err)
			}
			sell(t, l, "c", 1)
			r.Step()
			if st := r.Status(); !st.OK || st.Behind != 0 || st.Error != "" {
				t.Fatalf("device back: %+v", st)
			}
			restoreAndCompare(t, l, dir)
		})
	}
}

// TestRefusedRestoreLeavesNothing: a restore that is refused (the copy is
// another register's, or its log is of another ledger) leaves nothing at
// the ledger's path, so the operator's next, right attempt is not refused
// as "exists"; a restore that died half-way leaves a temporary file the
// next one replaces.
func TestRefusedRestoreLeavesNothing(t *testing.T) {
	l := ledgertest.Open(t, opts())
	dir := t.TempDir()
	r, err := replica.New(l, replica.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sell(t, l, "a", 3)
	r.Step()
	if st := r.Status(); !st.OK || st.Behind != 0 {
		t.Fatalf("status %+v", st)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	other := opts()
	other.Register = "r2"
	if _, err := replica.Restore(dir, path, other); !errors.Is(err, ledger.ErrOtherRegister) {
		t.Fatalf("restore of r1's copy for r2: %v, want ErrOtherRegister", err)
	}
	for _, p := range []string{path, path + replica.RestoringSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("after a refused restore %s: %v, want no file", p, err)
		}
	}
	// A log of another ledger beside this snapshot: refused, nothing left.
	l2 := ledgertest.Open(t, opts())
	dir2 := t.TempDir()
	r2, err := replica.New(l2, replica.Options{Dir: dir2})
	if err != nil {
		t.Fatal(err)
	}
	sell(t, l2, "b", 1)
	r2.Step()
	mixed := t.TempDir()
	for src, name := range map[string]string{dir: replica.SnapshotName, dir2: replica.LogName} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mixed, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := replica.Restore(mixed, path, opts()); !errors.Is(err, replica.ErrCopy) {
		t.Fatalf("restore of a snapshot with another ledger's log: %v, want ErrCopy", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after a refused restore: %v, want no file", err)
	}
	// The leftover of a restore that died is replaced; the right restore
	// now succeeds.
	if err := os.WriteFile(path+replica.RestoringSuffix, []byte("half a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := replica.Restore(dir, path, opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.LastSeq == 0 {
		t.Fatalf("restored %+v", res)
	}
	if _, err := os.Stat(path + replica.RestoringSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file after a restore: %v", err)
	}
	got := ledgertest.OpenAt(t, path, opts())
	if st, err := got.Stats(); err != nil || st.LastSeq != res.LastSeq {
		t.Fatalf("restored ledger: %+v %v, want last %d", st, err, res.LastSeq)
	}
}
