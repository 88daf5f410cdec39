package hq_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
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
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: broker, ClientID: "hq-crash", WaitTimeout: wait}, MaxBatch: 50, Signer: hqKey})
	if err != nil {
		return 2
	}
	// A slow disk: widens the window between receiving and committing,
	// where the parent's SIGKILL should land.
	svc.SetBeforeApply(func(int) { time.Sleep(2 * time.Millisecond) })
	if err := svc.Run(context.Background()); err != nil {
		return 3
	}
	return 0
}

// TestKilledHQAcksOnlyCommitted kills head office (a child process) with
// SIGKILL at random moments while a register streams events. After each
// kill, every watermark the register was ever acknowledged is covered by
// the store; after restarts, every event is applied exactly once. The kill
// moments are drawn from a new seed each run (logged); TEST_SEED=n replays.
func TestKilledHQAcksOnlyCommitted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	b := mosquittotest.Start(t, &mosquittotest.Options{MaxQueuedMessages: 100000})
	path := filepath.Join(t.TempDir(), "hq.db")
	r := newRegister(t, b.URL(), "s1", "s1-r1")
	const n = 1500
	var want ledger.Points
	for i := 0; i < n; i++ {
		pts := ledger.Points(i%7 + 1)
		want += pts
		r.points("m1", pts)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HQ_CRASH_CHILD_STORE="+path, "HQ_CRASH_CHILD_BROKER="+b.URL())
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
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
		w, _ := st.Watermark("s1-r1")
		if acked := r.ackedWM(); acked > w {
			t.Fatalf("after kill %d: register was acknowledged %d but the store holds only %d", kill, acked, w)
		}
		return w
	}

	go r.send(seqRange(1, n)...) // the broker queues for head office's session while it is down
	r.resendOnSilence(time.Second)
	seed, _ := testkit.Seed(t) // TEST_SEED=n replays the kill moments
	rng := rand.New(rand.NewPCG(seed, 2))
	for kill := 1; kill <= 3; kill++ {
		cmd := start()
		target := min(r.ackedWM()+uint64(100+rng.IntN(300)), n)
		testkit.Eventually(t, 30*time.Second, "progress before the kill", func() bool { return r.ackedWM() >= target })
		time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond) // a random moment mid-stream
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		w := checkAcks(kill)
		t.Logf("kill %d: store watermark %d, register acked %d", kill, w, r.ackedWM())
	}
	cmd := start()
	testkit.Eventually(t, 60*time.Second, "every event acknowledged after restarts", func() bool { return r.ackedWM() == n })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
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
