package ledger_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/powerfs"
)

// sideVersion is the content of version v of the side file the power-cut
// child rewrites beside the ledger (as loyaltyd does with its config
// versions): a few KB, so that a torn write lands inside it.
func sideVersion(v int) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "v%09d|", v), 200+v%300)
}

func parseSide(b []byte) (int, bool) {
	if len(b) < 11 || b[0] != 'v' {
		return 0, false
	}
	v, err := strconv.Atoi(string(b[1:10]))
	return v, err == nil && bytes.Equal(b, sideVersion(v))
}

// TestPowerCutChild is the child of TestPowerCut: on the test filesystem it
// records sales (and refunds) from four goroutines, printing "ACK <id>"
// only after RecordSale returned, and rewrites a side file, printing
// "SIDETRY v" before and "SIDE v" after each durable write.
func TestPowerCutChild(t *testing.T) {
	path := os.Getenv("LEDGER_POWERCUT_CHILD")
	if path == "" {
		t.Skip("child process of TestPowerCut")
	}
	round, _ := strconv.Atoi(os.Getenv("LEDGER_POWERCUT_ROUND"))
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Printf(format+"\n", args...)
		mu.Unlock()
	}
	l, err := ledger.Open(path, &ledger.Options{Register: "r1", Engine: testEngine(), LockTimeout: 10 * time.Second})
	if err != nil {
		say("ERR %v", err)
		os.Exit(2)
	}
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1", Aliases: []string{"c1"}}); err != nil {
		say("ERR %v", err)
		os.Exit(2)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		side := filepath.Join(filepath.Dir(path), "state", "state.json")
		for v := round*100000 + 1; ; v++ {
			say("SIDETRY %d", v)
			if err := durable.WriteBytes(side, 0o640, sideVersion(v)); err != nil {
				say("ERR side: %v", err)
				return
			}
			say("SIDE %d", v)
			time.Sleep(time.Millisecond)
		}
	})
	for g := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				id := fmt.Sprintf("%d-%d-%d", round, g, n)
				req := ledger.SaleRequest{ID: id, MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: int64(1 + n%3), UnitPrice: 1000}}}
				if _, err := l.RecordSale(ctx, req); err != nil {
					say("ERR %v", err)
					return
				}
				if n%5 == 4 {
					if _, err := l.Refund(ctx, ledger.RefundRequest{ID: "rf-" + id, SaleID: id}); err != nil {
						say("ERR %v", err)
						return
					}
				}
				say("ACK %s", id)
			}
		})
	}
	wg.Wait()
	select {} // the parent kills us
}

// TestPowerCut cuts the power under a child process that records sales on
// the test filesystem, at random moments (sometimes tearing the last
// write), kills the child, mounts what survived and opens it: every
// acknowledged sale is there exactly once, Check passes, and the side file
// is a whole version, never older than the last one acknowledged.
func TestPowerCut(t *testing.T) {
	t.Parallel()
	rounds := 20
	if *long {
		rounds = 300
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	// A little latency on every sync: cuts land inside commits.
	lat := powerfs.Latency{Median: 300 * time.Microsecond, Sigma: 0.5}
	f := powerfs.Mount(t, &powerfs.Options{Seed: seed, Latency: lat})
	path := filepath.Join(f.Dir, "ledger.db")
	// The side file lives in its own folder so that its directory syncs
	// do not make the ledger's directory entry durable by accident.
	side := filepath.Join(f.Dir, "state", "state.json")
	if err := os.Mkdir(filepath.Dir(side), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := durable.SyncDir(f.Dir); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sideAcked, sideTried, torn := 0, 0, 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPowerCutChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), "LEDGER_POWERCUT_CHILD="+path, fmt.Sprintf("LEDGER_POWERCUT_ROUND=%d", round+1))
		var stderr bytes.Buffer // after the cut the child dies of SIGBUS on its mmap
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cutAfter := 1 + rng.IntN(40)
		tear := rng.IntN(2) == 0
		cut := false
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			kind, arg, _ := strings.Cut(line, " ")
			switch kind {
			case "ACK":
				acked[arg] = true
				n++
			case "SIDE", "SIDETRY":
				v, _ := strconv.Atoi(arg)
				if kind == "SIDE" {
					sideAcked = max(sideAcked, v)
				} else {
					sideTried = max(sideTried, v)
				}
			case "ERR":
				if !cut {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
					t.Fatalf("round %d: child before the cut: %s\n%s", round, line, stderr.Bytes())
				}
			}
			if n >= cutAfter && !cut {
				time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
				k, err := f.Cut(tear)
				if err != nil {
					t.Fatal(err)
				}
				if k > 0 {
					torn++
				}
				cut = true
				_ = cmd.Process.Kill()
			}
		}
		_ = cmd.Wait()
		if !cut {
			t.Fatalf("round %d: the child stopped after %d acknowledged sales, before the cut\n%s", round, n, stderr.Bytes())
		}
		if err := f.Remount(seed + uint64(round)); err != nil {
			t.Fatal(err)
		}
		verifyAfterCrash(t, path, acked, round)
		b, err := os.ReadFile(side)
		switch v, ok := parseSide(b); {
		case errors.Is(err, os.ErrNotExist) && sideAcked == 0:
		case err != nil:
			t.Fatalf("round %d: side file: %v", round, err)
		case !ok || v < sideAcked || v > sideTried:
			t.Fatalf("round %d: side file is %d bytes (version %d, whole %v); acknowledged %d, tried %d", round, len(b), v, ok, sideAcked, sideTried)
		}
	}
	t.Logf("%d rounds (%d with a torn last write), %d acknowledged sales present exactly once, side file acknowledged up to version %d", rounds, torn, len(acked), sideAcked)
}

// TestStorageFails: a write or sync that fails during a sale refuses the
// sale with a clear error; after a failed sync (or an EIO) the ledger
// records nothing more until it is opened again, and after a power cut the
// refused sale is not there while every acknowledged one is. Running out
// of space while writing is refused the same way but the ledger goes on.
// The cases "... (sale log)" fail the sale log's append (its write, its
// one sync); the others commit every sale (NoSaleLog), so the faults hit
// bbolt's data and meta syncs.
func TestStorageFails(t *testing.T) {
	t.Parallel()
	f := powerfs.Mount(t, nil)
	for _, tc := range []struct {
		name   string
		fault  powerfs.Fault
		want   error
		stops  bool
		noneOK bool // the refused sale cannot have reached the card
		logged bool // with the sale log
	}{
		{"eio on the data sync", powerfs.Fault{Op: powerfs.OpSync, N: 1, Errno: syscall.EIO}, ledger.ErrStorage, true, true, false},
		{"eio on the meta sync", powerfs.Fault{Op: powerfs.OpSync, N: 2, Errno: syscall.EIO}, ledger.ErrStorage, true, true, false},
		{"enospc on a sync", powerfs.Fault{Op: powerfs.OpSync, N: 2, Errno: syscall.ENOSPC}, ledger.ErrStorage, true, true, false},
		{"eio on a write", powerfs.Fault{Op: powerfs.OpWrite, N: 1, Errno: syscall.EIO}, ledger.ErrStorage, true, true, false},
		{"disk full", powerfs.Fault{Op: powerfs.OpWrite, N: 1, Errno: syscall.ENOSPC, Sticky: true}, ledger.ErrNoSpace, false, true, false},
		{"eio on the sync (sale log)", powerfs.Fault{Op: powerfs.OpSync, N: 1, Errno: syscall.EIO}, ledger.ErrStorage, true, true, true},
		{"enospc on the sync (sale log)", powerfs.Fault{Op: powerfs.OpSync, N: 1, Errno: syscall.ENOSPC}, ledger.ErrStorage, true, true, true},
		{"eio on a write (sale log)", powerfs.Fault{Op: powerfs.OpWrite, N: 1, Errno: syscall.EIO}, ledger.ErrStorage, true, true, true},
		{"disk full (sale log)", powerfs.Fault{Op: powerfs.OpWrite, N: 1, Errno: syscall.ENOSPC, Sticky: true}, ledger.ErrNoSpace, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(tc.name)
			path := filepath.Join(f.Dir, name+".db")
			opts := func() *ledger.Options {
				return &ledger.Options{Register: "r1", Engine: testEngine(), NoSaleLog: !tc.logged}
			}
			l, err := ledger.Open(path, opts())
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := l.Enrol(ctx, ledger.Member{ID: "m1"}); err != nil {
				t.Fatal(err)
			}
			sale := func(id string) error {
				_, err := l.RecordSale(ctx, ledger.SaleRequest{ID: id, MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 500}}})
				return err
			}
			for i := range 3 {
				if err := sale(fmt.Sprintf("ok%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Fail(tc.fault); err != nil {
				t.Fatal(err)
			}
			err = sale("refused")
			if !errors.Is(err, tc.want) {
				t.Fatalf("sale on failing storage: %v, want %v", err, tc.want)
			}
			t.Logf("refused: %v", err)
			if err := f.ClearFaults(); err != nil {
				t.Fatal(err)
			}
			err = sale("next")
			if tc.stops && !errors.Is(err, ledger.ErrStorage) {
				t.Fatalf("the sale after a failed sync: %v, want ErrStorage", err)
			}
			if !tc.stops && err != nil {
				t.Fatalf("with space again: %v", err)
			}
			_ = l.Close()
			if _, err := f.Cut(false); err != nil {
				t.Fatal(err)
			}
			if err := f.Remount(0); err != nil {
				t.Fatal(err)
			}
			l, err = ledger.Open(path, opts())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.Check(); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, err := l.Sale(fmt.Sprintf("ok%d", i)); err != nil {
					t.Fatalf("acknowledged sale: %v", err)
				}
			}
			if _, err := l.Sale("refused"); !errors.Is(err, ledger.ErrUnknownSale) {
				t.Fatalf("the refused sale after the cut: %v", err)
			}
			if err := sale("after"); err != nil {
				t.Fatalf("after reopening: %v", err)
			}
		})
	}
}

// TestSaleLogCheckpointFails: the disk fills while sales wait in the sale
// log. The checkpoint that would take them into the file fails (a backup
// asking for it gets ErrNoSpace), the acknowledged sales stay readable, a
// new sale is refused with ErrNoSpace, and Close cannot take them into
// the file either; after a power cut the next Open applies the log: every
// acknowledged sale is there once, the refused one is not.
func TestSaleLogCheckpointFails(t *testing.T) {
	t.Parallel()
	f := powerfs.Mount(t, nil)
	path := filepath.Join(f.Dir, "checkpoint-fails.db")
	opts := &ledger.Options{Register: "r1", Engine: testEngine(), SaleLogInterval: time.Hour}
	l, err := ledger.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	sale := func(l *ledger.Ledger, id string) error {
		_, err := l.RecordSale(ctx, ledger.SaleRequest{ID: id, MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 500}}})
		return err
	}
	for i := range 3 {
		if err := sale(l, fmt.Sprintf("ok%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Fail(powerfs.Fault{Op: powerfs.OpWrite, N: 1, Errno: syscall.ENOSPC, Sticky: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Backup(new(bytes.Buffer)); !errors.Is(err, ledger.ErrNoSpace) {
		t.Fatalf("backup on a full disk: %v, want ErrNoSpace (its checkpoint failed)", err)
	}
	for i := range 3 {
		if _, err := l.Sale(fmt.Sprintf("ok%d", i)); err != nil {
			t.Fatalf("acknowledged sale after the failed checkpoint: %v", err)
		}
	}
	if err := sale(l, "refused"); !errors.Is(err, ledger.ErrNoSpace) {
		t.Fatalf("sale on a full disk: %v, want ErrNoSpace", err)
	}
	_ = l.Close()
	if err := f.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Cut(false); err != nil {
		t.Fatal(err)
	}
	if err := f.Remount(0); err != nil {
		t.Fatal(err)
	}
	l, err = ledger.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	ps, err := l.Purchases("m1")
	if err != nil || len(ps) != 3 {
		t.Fatalf("%d purchases after the cut (%v), want the 3 acknowledged", len(ps), err)
	}
	if _, err := l.Sale("refused"); !errors.Is(err, ledger.ErrUnknownSale) {
		t.Fatalf("the refused sale after the cut: %v", err)
	}
	if err := sale(l, "after"); err != nil {
		t.Fatalf("with space again: %v", err)
	}
}
