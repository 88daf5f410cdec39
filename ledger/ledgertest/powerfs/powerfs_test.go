package powerfs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/powerfs"
)

func writeFile(t *testing.T, path string, b []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// remount cuts the power (unless cut is false: an orderly shutdown),
// unmounts and mounts the surviving image again at the same place.
func remount(t *testing.T, f *powerfs.FS, cut, tear bool) (*powerfs.FS, int) {
	t.Helper()
	torn := -1
	if cut {
		var err error
		if torn, err = f.Cut(tear); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Remount(0); err != nil {
		t.Fatal(err)
	}
	return f, torn
}

func content(t *testing.T, path string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func TestCutKeepsOnlySynced(t *testing.T) {
	f := powerfs.Mount(t, nil)
	d := f.Dir
	// synced file, synced entry: survives
	writeFile(t, filepath.Join(d, "a"), []byte("a1"), true)
	// entry synced, data never: empty
	writeFile(t, filepath.Join(d, "c"), []byte("c1"), false)
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	syncDir(t, d)
	// synced data, entry never synced: gone
	writeFile(t, filepath.Join(d, "b"), []byte("b1"), true)
	// an unsynced overwrite of a synced file: the old content
	writeFile(t, filepath.Join(d, "a"), []byte("a2-longer"), false)
	// in a subdirectory whose own entries were never synced: gone
	writeFile(t, filepath.Join(d, "sub", "x"), []byte("x"), true)
	if got, _ := content(t, filepath.Join(d, "a")); got != "a2-longer" {
		t.Fatalf("before the cut a = %q", got)
	}

	f, _ = remount(t, f, true, false)
	for _, c := range []struct {
		name, want string
		exists     bool
	}{{"a", "a1", true}, {"b", "", false}, {"c", "", true}, {"sub/x", "", false}} {
		got, ok := content(t, filepath.Join(f.Dir, c.name))
		if ok != c.exists || got != c.want {
			t.Errorf("%s after the cut: %q exists %v, want %q exists %v", c.name, got, ok, c.want, c.exists)
		}
	}
	if fi, err := os.Stat(filepath.Join(f.Dir, "sub")); err != nil || !fi.IsDir() {
		t.Errorf("sub after the cut: %v", err)
	}
}

func TestRenameNeedsDirSync(t *testing.T) {
	f := powerfs.Mount(t, nil)
	p := filepath.Join(f.Dir, "cfg")
	writeFile(t, p, []byte("old"), true)
	syncDir(t, f.Dir)
	writeFile(t, p+".tmp", []byte("new"), true)
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	f, _ = remount(t, f, true, false)
	if got, _ := content(t, p); got != "old" {
		t.Fatalf("rename without a directory sync: %q after the cut, want old", got)
	}
	writeFile(t, p+".tmp", []byte("new"), true)
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	syncDir(t, f.Dir)
	f, _ = remount(t, f, true, false)
	if got, _ := content(t, p); got != "new" {
		t.Fatalf("rename with a directory sync: %q after the cut, want new", got)
	}
	if _, ok := content(t, p+".tmp"); ok {
		t.Fatal("the temporary name survived")
	}
	// An orderly shutdown keeps everything, synced or not.
	writeFile(t, p, []byte("unsynced"), false)
	f, _ = remount(t, f, false, false)
	if got, _ := content(t, p); got != "unsynced" {
		t.Fatalf("after a clean unmount: %q", got)
	}
}

func TestTornWrite(t *testing.T) {
	old := bytes.Repeat([]byte{'o'}, 8192)
	neu := bytes.Repeat([]byte{'n'}, 8192-100)
	tornSeen := map[bool]bool{}
	f := powerfs.Mount(t, nil)
	for seed := uint64(1); seed <= 12; seed++ {
		if err := f.Remount(seed); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(f.Dir, "page")
		writeFile(t, p, old, true)
		syncDir(t, f.Dir)
		fh, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.WriteAt(neu, 100); err != nil {
			t.Fatal(err)
		}
		torn, err := f.Cut(true)
		if err != nil {
			t.Fatal(err)
		}
		fh.Close()
		if err := f.Remount(0); err != nil {
			t.Fatal(err)
		}
		got, _ := content(t, p)
		if len(got) != len(old) {
			t.Fatalf("seed %d: size %d after a torn overwrite", seed, len(got))
		}
		// Only whole sectors of the last write may have survived.
		newBytes := 0
		for sec := 0; sec < len(got); sec += 512 {
			part := got[max(sec, 100):min(sec+512, 100+len(neu))]
			n := strings.Count(part, "n")
			if n != 0 && n != len(part) {
				t.Fatalf("seed %d: sector at %d is half old, half new", seed, sec)
			}
			newBytes += n
		}
		if got[:100] != string(old[:100]) || newBytes != max(torn, 0) {
			t.Fatalf("seed %d: %d new bytes survived, the tear kept %d", seed, newBytes, torn)
		}
		tornSeen[torn > 0] = true
	}
	if !tornSeen[true] {
		t.Fatal("no seed tore the write in the middle")
	}
}

func TestCutFailsEverything(t *testing.T) {
	f := powerfs.Mount(t, nil)
	p := filepath.Join(f.Dir, "x")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := f.Cut(false); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write([]byte("late")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write after the cut: %v, want EIO", err)
	}
	if err := fh.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync after the cut: %v, want EIO", err)
	}
}

// TestFailedSyncLosesData: after a failed fsync the data is still read
// back but never reaches the card, and the next fsync succeeds anyway.
func TestFailedSyncLosesData(t *testing.T) {
	f := powerfs.Mount(t, nil)
	p := filepath.Join(f.Dir, "x")
	writeFile(t, p, []byte("v1"), true)
	syncDir(t, f.Dir)
	if err := f.Fail(powerfs.Fault{Op: powerfs.OpSync, N: 2, Errno: syscall.EIO}); err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if _, err := fh.WriteAt([]byte("v3"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("second sync: %v, want EIO", err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatalf("third sync: %v", err)
	}
	fh.Close()
	if got, _ := content(t, p); got != "v3" {
		t.Fatalf("read back %q before the cut", got)
	}
	f, _ = remount(t, f, true, false)
	if got, _ := content(t, p); got != "v2" {
		t.Fatalf("after the cut %q, want v2 (v3's sync failed)", got)
	}
}

func TestNoSpaceSticky(t *testing.T) {
	f := powerfs.Mount(t, nil)
	if err := f.Fail(powerfs.Fault{Op: powerfs.OpWrite, N: 3, Errno: syscall.ENOSPC, Sticky: true}); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(filepath.Join(f.Dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	for i := range 5 {
		_, err := fh.Write([]byte("abc"))
		if (i < 2) != (err == nil) || (err != nil && !errors.Is(err, syscall.ENOSPC)) {
			t.Fatalf("write %d: %v", i+1, err)
		}
	}
	if err := f.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write([]byte("abc")); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	st, err := f.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Faults != 3 || st.BytesWritten != 9 || st.Writes != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLatencyAndCounts(t *testing.T) {
	lat := powerfs.Latency{Median: 20 * time.Millisecond}
	f := powerfs.Mount(t, &powerfs.Options{Latency: lat})
	fh, err := os.Create(filepath.Join(f.Dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	start := time.Now()
	for range 3 {
		if _, err := fh.Write(make([]byte, 512)); err != nil {
			t.Fatal(err)
		}
		if err := fh.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Sync(); err != nil { // nothing to write: no latency
		t.Fatal(err)
	}
	took := time.Since(start)
	st, err := f.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Syncs != 4 || st.BytesWritten != 3*512 || st.SyncTime != 3*lat.Median {
		t.Fatalf("stats %+v", st)
	}
	if took < 3*lat.Median {
		t.Fatalf("three syncs took %v, the latency is %v each", took, lat.Median)
	}
}
