package hq_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// TestMain doubles as the head-office child process of TestKilledHQAcksOnlyCommitted.
func TestMain(m *testing.M) {
	if path := os.Getenv("HQ_CRASH_CHILD_STORE"); path != "" {
		os.Exit(crashChild(path, os.Getenv("HQ_CRASH_CHILD_BROKER")))
	}
	if dsn := os.Getenv("HQ_PG_WORKER_DSN"); dsn != "" {
		os.Exit(pgWorker(dsn, os.Getenv("HQ_PG_WORKER_BROKER"), os.Getenv("HQ_PG_WORKER_ID")))
	}
	// One PostgreSQL for the package's worker tests (workers_test.go).
	os.Exit(pgtest.Main(m, pgtest.Options{}, func(s *pgtest.Server, err error) { pgSrv, pgErr = s, err }))
}

func crashChild(path, broker string) int {
	st, err := hqstore.Open(path, &hqstore.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		os.Stderr.WriteString("child: " + err.Error() + "\n")
		return 2
	}
	var ingest hqstore.Ingest = st
	if v := os.Getenv("HQ_CRASH_CHILD_PAUSE"); v != "" {
		lo, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			os.Stderr.WriteString("child: " + err.Error() + "\n")
			return 2
		}
		ingest = &pausingStore{Store: st, register: crashRegister, lo: lo, report: os.NewFile(3, "report")}
	}
	svc, err := hq.New(ingest, hq.Options{Conn: hq.Conn{Broker: broker, ClientID: "hq-crash", WaitTimeout: wait}, MaxBatch: 50, Signer: hqKey})
	if err != nil {
		return 2
	}
	// A slow disk: more events arrive while a batch commits.
	svc.SetBeforeApply(func(int) { time.Sleep(2 * time.Millisecond) })
	if err := svc.Run(context.Background()); err != nil {
		return 3
	}
	return 0
}

const crashRegister = "s1-r1"

// pausingStore is the crash child's store: the first batch handed to
// Apply once the register's committed watermark has reached lo, and that
// holds events of the register beyond it, is never applied. The child
// writes "paused <watermark> <events beyond it>" to report and waits for
// the parent's SIGKILL, with that batch received and uncommitted.
type pausingStore struct {
	*hqstore.Store
	register string
	lo       uint64
	report   *os.File
}

func (p *pausingStore) Apply(evs []hqstore.Event) (hqstore.Result, error) {
	rs, err := p.Store.RegisterState(p.register)
	if err != nil {
		return hqstore.Result{}, err
	}
	var beyond int
	for _, e := range evs {
		if e.Register == p.register && e.Seq > rs.Watermark {
			beyond++
		}
	}
	if rs.Watermark >= p.lo && beyond > 0 {
		fmt.Fprintf(p.report, "paused %d %d\n", rs.Watermark, beyond)
		for {
			time.Sleep(time.Hour) // until the parent's SIGKILL
		}
	}
	return p.Store.Apply(evs)
}

// TestKilledHQAcksOnlyCommitted kills head office (a child process) with
// SIGKILL three times while a register streams events, each time with a
// batch received and not yet committed: the child stops before the first
// commit after the register's watermark has reached a random point, says
// so, and the parent kills it there. The register releases its events in
// parts, never the last one before the fourth child, so no kill can come
// after the last event (held events beyond a gap are applied at once when
// it fills, and used to carry the watermark to the end before a kill).
// After each kill, every watermark the register was ever acknowledged is
// covered by the store, and the store holds exactly what the child had
// committed when it stopped; after the restarts, every event is applied
// exactly once. The kill points are drawn from a new seed each run
// (logged); TEST_SEED=n replays.
func TestKilledHQAcksOnlyCommitted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	b := mosquittotest.Start(t, &mosquittotest.Options{MaxQueuedMessages: 100000})
	path := filepath.Join(t.TempDir(), "hq.db")
	r := newRegister(t, b.URL(), "s1", crashRegister)
	const n = 1500
	var want ledger.Points
	// release adds the register's events up to upTo and sends them.
	release := func(upTo uint64) {
		r.mu.Lock()
		from := uint64(len(r.recs)) + 1
		r.mu.Unlock()
		for s := from; s <= upTo; s++ {
			pts := ledger.Points(s%7 + 1)
			want += pts
			r.points("m1", pts)
		}
		go r.send(seqRange(from, upTo)...) // the broker queues for head office's session while it is down
	}
	released := func() uint64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return uint64(len(r.recs))
	}
	// start runs a head-office child; exited closes when it has exited,
	// paused says at which watermark it stopped and with how many events
	// beyond it in hand (closed without a value if it exited without
	// stopping).
	start := func(env ...string) (cmd *exec.Cmd, exited <-chan struct{}, paused <-chan [2]uint64) {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "HQ_CRASH_CHILD_STORE="+path, "HQ_CRASH_CHILD_BROKER="+b.URL()), env...)
		cmd.Stderr = os.Stderr
		cmd.ExtraFiles = []*os.File{pw} // fd 3: the child's report
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done }) // a failed test leaves no child behind
		stopped := make(chan [2]uint64, 1)
		go func() {
			defer pr.Close()
			var w, beyond uint64
			if _, err := fmt.Fscanf(pr, "paused %d %d\n", &w, &beyond); err == nil {
				stopped <- [2]uint64{w, beyond}
			}
			close(stopped)
		}()
		return cmd, done, stopped
	}
	checkAcks := func(kill int) uint64 {
		st, err := hqstore.Open(path, &hqstore.Options{LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Check(); err != nil {
			t.Fatalf("after kill %d: %v", kill, err)
		}
		w, _ := st.Watermark(crashRegister)
		if acked := r.ackedWM(); acked > w {
			t.Fatalf("after kill %d: register was acknowledged %d but the store holds only %d", kill, acked, w)
		}
		return w
	}

	r.resendOnSilence(time.Second)
	seed, _ := testkit.Seed(t) // TEST_SEED=n replays the kill points
	rng := rand.New(rand.NewPCG(seed, 2))
	var w uint64 // the store's watermark after the last kill
	for kill := 1; kill <= 3; kill++ {
		lo := min(w+uint64(50+rng.IntN(200)), n-100)   // the child stops at the first commit from here on
		release(min(lo+uint64(50+rng.IntN(150)), n-1)) // events in flight beyond lo
		cmd, exited, paused := start("HQ_CRASH_CHILD_PAUSE=" + strconv.FormatUint(lo, 10))
		var at, beyond uint64
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case p, ok := <-paused:
				if !ok {
					t.Fatalf("kill %d: the child exited before it stopped at watermark %d", kill, lo)
				}
				at, beyond = p[0], p[1]
				break wait
			case <-deadline:
				t.Fatalf("kill %d: the child did not stop at watermark %d within 60s (register acked %d of %d released)", kill, lo, r.ackedWM(), released())
			case <-time.After(50 * time.Millisecond):
				// Everything released is committed and acked: no batch with
				// events beyond lo will come. One more part makes one.
				if rel := released(); r.ackedWM() == rel && rel < n-1 {
					release(min(rel+50, n-1))
				}
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		w = checkAcks(kill)
		t.Logf("kill %d: the child stopped at watermark %d (wanted from %d) with %d events beyond it uncommitted; store watermark %d, register acked %d, %d released",
			kill, at, lo, beyond, w, r.ackedWM(), released())
		if at < lo || at >= n || beyond == 0 {
			t.Fatalf("kill %d: the child stopped at watermark %d with %d events beyond it, want from %d, before the last event %d, and some uncommitted", kill, at, beyond, lo, n)
		}
		if w != at {
			t.Fatalf("kill %d: store watermark %d after the kill, but the child had stopped at %d", kill, w, at)
		}
	}
	release(n)
	cmd, exited, _ := start()
	testkit.Eventually(t, 60*time.Second, "every event acknowledged after restarts", func() bool { return r.ackedWM() == n })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-exited
	checkAcks(4)
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if bal, _ := st.Balance("m1"); bal != want {
		t.Fatalf("balance %d, want %d: some event lost or applied twice", bal, want)
	}
}
