package hqstore_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
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
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

var long = flag.Bool("long", false, "run the long variants (more power-cut rounds)")

const pcRegister = "s1-r1"

// pcPoints is what event seq of the power-cut stream earns.
func pcPoints(seq uint64) ledger.Points { return ledger.Points(seq%7 + 1) }

func pcEvent(seq uint64) hqstore.Event {
	return hqstore.Event{Register: pcRegister, Store: "s1", OutboxRecord: ledger.OutboxRecord{
		Seq: seq, ID: fmt.Sprintf("%s-%d", pcRegister, seq), Type: ledger.OutPoints,
		Data: fmt.Appendf(nil, `{"member_id":"m1","kind":"earn","points":%d}`, pcPoints(seq))}}
}

// pcReport is version v of the report head office rewrites beside its
// store (loyalty-hq report -html ...).
func pcReport(v int) []byte { return bytes.Repeat(fmt.Appendf(nil, "r%09d|", v), 150+v%400) }

var pcDay = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// TestPowerCutChild is the child of TestPowerCut: it ingests the stream
// (resending a few events the store already has) in batches and prints
// "ACK <watermark>" after each Apply returned, the watermark head office
// would publish; it marks contacts ("CONTACT k" after Mark returned) and
// rewrites a report ("REPORTTRY v" / "REPORT v").
func TestPowerCutChild(t *testing.T) {
	dir := os.Getenv("HQ_POWERCUT_CHILD")
	if dir == "" {
		t.Skip("child process of TestPowerCut")
	}
	round, _ := strconv.Atoi(os.Getenv("HQ_POWERCUT_ROUND"))
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Printf(format+"\n", args...)
		mu.Unlock()
	}
	st, err := hqstore.Open(filepath.Join(dir, "hq.db"), &hqstore.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		say("ERR %v", err)
		os.Exit(2)
	}
	cl, err := contactlog.Open(filepath.Join(dir, "contacts", "contacts.db"), &contactlog.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		say("ERR %v", err)
		os.Exit(2)
	}
	wm, err := st.Watermark(pcRegister)
	if err != nil {
		say("ERR %v", err)
		os.Exit(2)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for v := round*100000 + 1; ; v++ {
			say("REPORTTRY %d", v)
			if err := durable.WriteBytes(filepath.Join(dir, "reports", "report.html"), 0o644, pcReport(v)); err != nil {
				say("ERR report: %v", err)
				return
			}
			say("REPORT %d", v)
			k := round*100000 + v%100000
			if _, err := cl.Mark(contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: fmt.Sprintf("m%d", k), Kind: retention.ContactDue, At: pcDay}}); err != nil {
				say("ERR contact: %v", err)
				return
			}
			say("CONTACT %d", k)
		}
	})
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(uint64(round), 5))
		next := max(wm, 3) - 2 // resend a little: duplicates change nothing
		for {
			var batch []hqstore.Event
			for range 1 + rng.IntN(30) {
				batch = append(batch, pcEvent(next))
				next++
			}
			res, err := st.Apply(batch)
			if err != nil {
				say("ERR %v", err)
				return
			}
			say("ACK %d", res.Registers[pcRegister].Watermark)
		}
	})
	wg.Wait()
	select {} // the parent kills us
}

// TestPowerCut cuts the power under head office (a child ingesting events,
// marking contacts and rewriting a report) at random moments, kills it,
// mounts what survived and opens it: the store covers every watermark it
// acknowledged, each event counts exactly once in the balance, Check
// passes, every acknowledged contact is in the contact log, and the report
// is a whole version never older than the last one written.
func TestPowerCut(t *testing.T) {
	t.Parallel()
	rounds := 15
	if *long {
		rounds = 200
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 13))
	lat := powerfs.Latency{Median: 300 * time.Microsecond, Sigma: 0.5}
	f := powerfs.Mount(t, &powerfs.Options{Seed: seed, Latency: lat})
	// The contact log and the reports have their own folders, so that
	// their directory syncs do not make the store's entry durable by
	// accident.
	for _, d := range []string{"reports", "contacts"} {
		if err := os.Mkdir(filepath.Join(f.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := durable.SyncDir(f.Dir); err != nil {
		t.Fatal(err)
	}
	var ackedWM uint64
	contacts := map[int]bool{}
	reportAcked, reportTried, torn := 0, 0, 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPowerCutChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), "HQ_POWERCUT_CHILD="+f.Dir, fmt.Sprintf("HQ_POWERCUT_ROUND=%d", round+1))
		var stderr bytes.Buffer // after the cut the child dies of SIGBUS on its mmap
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cutAfter := 1 + rng.IntN(30)
		tear := rng.IntN(2) == 0
		cut := false
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			kind, arg, _ := strings.Cut(line, " ")
			v, _ := strconv.Atoi(arg)
			switch kind {
			case "ACK":
				ackedWM = max(ackedWM, uint64(v))
				n++
			case "CONTACT":
				contacts[v] = true
			case "REPORT":
				reportAcked = max(reportAcked, v)
			case "REPORTTRY":
				reportTried = max(reportTried, v)
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
			t.Fatalf("round %d: the child stopped after %d commits, before the cut\n%s", round, n, stderr.Bytes())
		}
		if err := f.Remount(seed + uint64(round)); err != nil {
			t.Fatal(err)
		}
		verifyHQAfterCut(t, f.Dir, round, ackedWM, contacts)
		b, err := os.ReadFile(filepath.Join(f.Dir, "reports", "report.html"))
		v, whole := 0, false
		if len(b) > 10 {
			v, _ = strconv.Atoi(string(b[1:10]))
			whole = bytes.Equal(b, pcReport(v))
		}
		switch {
		case errors.Is(err, os.ErrNotExist) && reportAcked == 0:
		case err != nil:
			t.Fatalf("round %d: report: %v", round, err)
		case !whole || v < reportAcked || v > reportTried:
			t.Fatalf("round %d: report is %d bytes (version %d, whole %v); written %d, tried %d", round, len(b), v, whole, reportAcked, reportTried)
		}
	}
	t.Logf("%d rounds (%d with a torn last write): acknowledged watermark %d (every event once), %d acknowledged contacts, report version %d", rounds, torn, ackedWM, len(contacts), reportAcked)
}

func verifyHQAfterCut(t *testing.T, dir string, round int, ackedWM uint64, contacts map[int]bool) {
	t.Helper()
	st, err := hqstore.Open(filepath.Join(dir, "hq.db"), nil)
	if err != nil {
		t.Fatalf("round %d: open the store: %v", round, err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	wm, err := st.Watermark(pcRegister)
	if err != nil {
		t.Fatal(err)
	}
	if wm < ackedWM {
		t.Fatalf("round %d: head office acknowledged watermark %d, the store holds %d", round, ackedWM, wm)
	}
	var want ledger.Points
	for s := uint64(1); s <= wm; s++ {
		want += pcPoints(s)
	}
	if bal, err := st.Balance("m1"); err != nil || bal != want {
		t.Fatalf("round %d: balance %d (%v), want %d for events 1..%d once each", round, bal, err, want, wm)
	}
	cl, err := contactlog.Open(filepath.Join(dir, "contacts", "contacts.db"), nil)
	if err != nil {
		t.Fatalf("round %d: open the contact log: %v", round, err)
	}
	defer cl.Close()
	for k := range contacts {
		cs, err := cl.Contacts(fmt.Sprintf("m%d", k))
		if err != nil || len(cs) != 1 {
			t.Fatalf("round %d: acknowledged contact %d: %v %v", round, k, cs, err)
		}
	}
}

// TestStorageFailsNoAck: a commit whose sync (or write) fails is not
// acknowledged, the store refuses every later write, and after a power
// cut the store covers exactly what was acknowledged before.
func TestStorageFailsNoAck(t *testing.T) {
	t.Parallel()
	f := powerfs.Mount(t, nil)
	for i, flt := range []powerfs.Fault{
		{Op: powerfs.OpSync, N: 1, Errno: syscall.EIO},
		{Op: powerfs.OpSync, N: 2, Errno: syscall.EIO},
		{Op: powerfs.OpWrite, N: 1, Errno: syscall.ENOSPC, Sticky: true},
	} {
		path := filepath.Join(f.Dir, fmt.Sprintf("hq%d.db", i))
		st, err := hqstore.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Apply([]hqstore.Event{pcEvent(1), pcEvent(2)}); err != nil {
			t.Fatal(err)
		}
		if err := f.Fail(flt); err != nil {
			t.Fatal(err)
		}
		res, err := st.Apply([]hqstore.Event{pcEvent(3)})
		if !errors.Is(err, hqstore.ErrStorage) || len(res.Registers) != 0 {
			t.Fatalf("%+v: apply on failing storage: %v %+v", flt, err, res)
		}
		_ = f.ClearFaults()
		if _, err := st.Apply([]hqstore.Event{pcEvent(3)}); !errors.Is(err, hqstore.ErrStorage) {
			t.Fatalf("%+v: the next apply: %v, want ErrStorage", flt, err)
		}
		st.Close()
		if _, err := f.Cut(false); err != nil {
			t.Fatal(err)
		}
		if err := f.Remount(0); err != nil {
			t.Fatal(err)
		}
		st, err = hqstore.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Check(); err != nil {
			t.Fatal(err)
		}
		if wm, _ := st.Watermark(pcRegister); wm != 2 {
			t.Fatalf("%+v: watermark %d after the cut, want 2", flt, wm)
		}
		if res, err := st.Apply([]hqstore.Event{pcEvent(3)}); err != nil || res.Registers[pcRegister].Watermark != 3 {
			t.Fatalf("%+v: after reopening: %v %+v", flt, err, res)
		}
		st.Close()
	}
}
