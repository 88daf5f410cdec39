package durable_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/powerfs"
)

// version k's content: a few KB, so a tear lands inside it.
func version(k int) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "v%06d|", k), 300+k%700)
}

func parse(b []byte) (int, bool) {
	if len(b) < 8 || b[0] != 'v' {
		return 0, false
	}
	k, err := strconv.Atoi(string(b[1:7]))
	return k, err == nil && bytes.Equal(b, version(k))
}

// cutRounds rewrites one file again and again with write, cuts the power
// at a random moment, remounts, and counts the rounds after which the file
// was not a whole version at least as new as the last acknowledged one.
func cutRounds(t *testing.T, rounds int, write func(path string, b []byte) error) (bad int) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 3))
	f := powerfs.Mount(t, &powerfs.Options{Seed: seed, Latency: powerfs.Latency{Median: 200 * time.Microsecond, Sigma: 0.5}})
	path := filepath.Join(f.Dir, "side.json")
	if err := durable.WriteBytes(path, 0o600, version(0)); err != nil {
		t.Fatal(err)
	}
	k := 0
	for round := range rounds {
		var acked atomic.Int64
		acked.Store(int64(k))
		stop := make(chan struct{})
		done := make(chan int)
		go func(k int) {
			for {
				select {
				case <-stop:
					done <- k
					return
				default:
				}
				if err := write(path, version(k+1)); err != nil {
					if !errors.Is(err, syscall.EIO) {
						t.Errorf("round %d: %v", round, err)
					}
					<-stop
					done <- k + 1
					return
				}
				k++
				acked.Store(int64(k))
			}
		}(k)
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
		// Every round cuts after at least one acknowledged write (on a
		// loaded machine the writer may not have finished one in the
		// sleep, and a round that only cuts the synced old version
		// tests nothing).
		for deadline := time.Now().Add(30 * time.Second); acked.Load() == int64(k); time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no write acknowledged in 30 s", round)
			}
		}
		if _, err := f.Cut(rng.IntN(2) == 0); err != nil {
			t.Fatal(err)
		}
		close(stop)
		last := <-done
		if err := f.Remount(seed + uint64(round)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		got, ok := parse(b)
		if err != nil || !ok || got < int(acked.Load()) || got > last {
			bad++
			t.Logf("round %d: %d bytes (version %d, whole %v, err %v); acknowledged %d, last tried %d", round, len(b), got, ok, err, acked.Load(), last)
			if err := durable.WriteBytes(path, 0o600, version(last+1)); err != nil {
				t.Fatal(err)
			}
			got = last + 1
		}
		k = got
	}
	return bad
}

func TestWriteFileSurvivesPowerCuts(t *testing.T) {
	if bad := cutRounds(t, 30, func(path string, b []byte) error { return durable.WriteBytes(path, 0o600, b) }); bad != 0 {
		t.Fatalf("%d rounds left a side file that is neither the old nor the new content", bad)
	}
}

// TestUnsyncedRenameIsCaught: the same rounds with the file data never
// synced (rename, then only the directory synced) must find empty files;
// otherwise the rounds above prove nothing.
func TestUnsyncedRenameIsCaught(t *testing.T) {
	naive := func(path string, b []byte) error {
		if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
		return durable.SyncDir(filepath.Dir(path))
	}
	if bad := cutRounds(t, 4, naive); bad == 0 {
		t.Fatal("a rename of unsynced data survived every power cut whole")
	}
}

// TestWriteFileError: a failing writer leaves the old content and no
// temporary file.
func TestWriteFileError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x")
	if err := durable.WriteBytes(path, 0o600, []byte("old")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := durable.WriteFile(path, 0o600, func(w io.Writer) error {
		_, _ = w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("content %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files left", len(ents))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}
