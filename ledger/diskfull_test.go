package ledger_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
)

// TestDiskFullChild records sales with RLIMIT_FSIZE set so the file cannot
// grow (without the sale log: a per-process limit would fail the log's
// preallocated blocks too, which a full disk does not; the log's own full
// disk is TestStorageFails "disk full (sale log)").
//
// It records sales with RLIMIT_FSIZE set so the file cannot
// grow past a small size (SIGXFSZ ignored, so writes fail with EFBIG as on
// a full disk). It prints ACK for each acknowledged sale, NOSPACE when a
// sale is refused, and DONE after checking the open ledger is still
// consistent and usable.
func TestDiskFullChild(t *testing.T) {
	path := os.Getenv("LEDGER_DISKFULL_CHILD")
	if path == "" {
		t.Skip("child process of TestDiskFull")
	}
	fail := func(err error) {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	signal.Ignore(syscall.SIGXFSZ)
	l, err := ledger.Open(path, &ledger.Options{Register: "r1", Engine: testEngine(), NoSaleLog: true})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1"}); err != nil {
		fail(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		fail(err)
	}
	lim := uint64(fi.Size()) + 256<<10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		fail(err)
	}
	for n := 0; n < 100000; n++ {
		req := ledger.SaleRequest{ID: fmt.Sprintf("s%d", n), MemberID: "m1"}
		for i := range 20 {
			req.Lines = append(req.Lines, ledger.Line{No: i + 1, SKU: strings.Repeat("x", 40) + fmt.Sprint(i), Quantity: 1, UnitPrice: 100})
		}
		_, err := l.RecordSale(ctx, req)
		if errors.Is(err, ledger.ErrNoSpace) {
			fmt.Println("NOSPACE", err)
			if err := l.Check(); err != nil {
				fail(fmt.Errorf("check after disk full: %w", err))
			}
			if _, err := l.Balance("m1"); err != nil {
				fail(err)
			}
			// The retry is refused again, or fits into the pages the
			// refused transaction gave back (bbolt frees the pages of
			// the commit before it when the next one begins): then it
			// is recorded whole, and the next sale fills the file.
			_, err := l.RecordSale(ctx, req)
			if err == nil {
				fmt.Println("ACK", req.ID)
				continue
			}
			if !errors.Is(err, ledger.ErrNoSpace) {
				fail(fmt.Errorf("retry on full disk: %v", err))
			}
			if err := l.Close(); err != nil {
				fail(err)
			}
			fmt.Println("DONE")
			return
		}
		if err != nil {
			fail(err)
		}
		fmt.Println("ACK", req.ID)
	}
	fail(errors.New("file never filled up"))
}

func TestDiskFull(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFullChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "LEDGER_DISKFULL_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	var nospace, done bool
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "ACK "):
			acked = append(acked, strings.TrimPrefix(line, "ACK "))
		case strings.HasPrefix(line, "NOSPACE"):
			nospace = true
			t.Log(line)
		case line == "DONE":
			done = true
		case strings.HasPrefix(line, "ERR"):
			t.Error("child:", line)
		}
	}
	_ = cmd.Wait()
	if !nospace || !done || len(acked) == 0 {
		t.Fatalf("child: nospace %v done %v acked %d", nospace, done, len(acked))
	}
	l, err := ledger.Open(path, &ledger.Options{Register: "r1", Engine: testEngine(), NoSaleLog: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if _, err := l.Sale(id); err != nil {
			t.Fatalf("acknowledged %s: %v", id, err)
		}
	}
	ps, _ := l.Purchases("m1")
	if len(ps) != len(acked) {
		t.Fatalf("%d purchases, %d acknowledged", len(ps), len(acked))
	}
	// With space again the ledger takes sales.
	if _, err := l.RecordSale(context.Background(), ledger.SaleRequest{ID: "after", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 100}}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d sales acknowledged before the disk filled", len(acked))
}

// TestDiskFullTmpfs fills a real 1 MiB tmpfs (writes fail with ENOSPC,
// unlike the file-size limit above where the file cannot grow). It needs
// root to mount and skips otherwise (fails when CI is set: testkit.Missing).
func TestDiskFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		testkit.Missing(t, "tmpfs mount", fmt.Sprintf("cannot mount a 1 MiB tmpfs here (%v; needs root); TestDiskFull covers EFBIG", err))
		return
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	path := filepath.Join(dir, "ledger.db")
	l, err := ledger.Open(path, &ledger.Options{Register: "r1", Engine: testEngine(), NoSaleLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	var acked []string
	var full error
	for n := 0; n < 100000 && full == nil; n++ {
		req := ledger.SaleRequest{ID: fmt.Sprintf("s%d", n), MemberID: "m1"}
		for i := range 20 {
			req.Lines = append(req.Lines, ledger.Line{No: i + 1, SKU: strings.Repeat("y", 60) + fmt.Sprint(i), Quantity: 1, UnitPrice: 100})
		}
		_, err := l.RecordSale(ctx, req)
		switch {
		case errors.Is(err, ledger.ErrNoSpace):
			full = err
		case err != nil:
			t.Fatalf("sale %d: %v", n, err)
		default:
			acked = append(acked, req.ID)
		}
	}
	if full == nil {
		t.Fatal("tmpfs never filled")
	}
	t.Logf("refused after %d sales: %v", len(acked), full)
	if err := l.Check(); err != nil {
		t.Fatalf("check on the open ledger after disk full: %v", err)
	}
	if b, err := l.Balance("m1"); err != nil || b != ledger.Points(20*len(acked)) {
		t.Fatalf("balance %d %v", b, err)
	}
	if err := l.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	l2, err := ledger.Open(path, &ledger.Options{Register: "r1", Engine: testEngine(), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if err := l2.Check(); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if _, err := l2.Sale(id); err != nil {
			t.Fatalf("acknowledged %s: %v", id, err)
		}
	}
}
