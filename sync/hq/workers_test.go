package hq_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

var (
	pgSrv *pgtest.Server
	pgErr error
)

// pgWorker is one loyalty-hq worker on PostgreSQL in a child process (so
// a test can kill it with SIGKILL): a shared subscription, its own client
// id, summaries from the elected leader. It logs to stderr; "leading"
// marks the leader.
func pgWorker(dsn, broker, id string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("worker", id)
	var st *pgstore.Store
	var err error
	po := &pgstore.Options{Notify: true, MaxConns: 4, Timeout: 5 * time.Second}
	sim := os.Getenv("HQ_PG_WORKER_SIM") != ""
	if sim {
		po = &pgstore.Options{Notify: true, MaxConns: 8} // loyalty-hq serve's defaults
	}
	for try := 0; try < 100; try++ { // the database may be restarting
		if st, err = pgstore.Open(dsn, po); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		log.Error("open", "err", err)
		return 2
	}
	defer st.Close()
	coord := pgstore.NewCoordinator(st, 0, 200*time.Millisecond, log)
	go coord.Run(ctx)
	opts := hq.Options{Conn: hq.Conn{Broker: broker, ClientID: id, WaitTimeout: wait},
		Group: "hq", Coordinator: coord, GapRetry: 200 * time.Millisecond, SummaryInterval: 100 * time.Millisecond,
		MaxBatch: 64, Signer: hqKey, Logger: log} // GapGrace: the default (1 s), as serve runs
	if sim {
		// BenchmarkChainSim: loyalty-hq serve's defaults, summaries off.
		opts.GapRetry, opts.MaxBatch, opts.SummaryInterval = 0, 0, -1
		opts.Conn.WaitTimeout = 30 * time.Second
	}
	svc, err := hq.New(st, opts)
	if err != nil {
		log.Error("new", "err", err)
		return 2
	}
	if err := svc.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 3
	}
	return 0
}

// worker is a running child worker.
type worker struct {
	id         string
	cmd        *exec.Cmd
	mu         stdsync.Mutex
	leader     bool
	subscribed bool
	done       chan struct{}
}

func startWorker(t *testing.T, dsn, broker, id string) *worker {
	t.Helper()
	return startWorkerEnv(t, dsn, broker, id)
}

// startWorkerEnv starts a child worker with env added to its environment.
func startWorkerEnv(t testing.TB, dsn, broker, id string, env ...string) *worker {
	t.Helper()
	w := &worker{id: id, done: make(chan struct{})}
	w.cmd = exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	w.cmd.Env = append(os.Environ(), "HQ_PG_WORKER_DSN="+dsn, "HQ_PG_WORKER_BROKER="+broker, "HQ_PG_WORKER_ID="+id)
	w.cmd.Env = append(w.cmd.Env, env...)
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "leading:") {
				w.mu.Lock()
				w.leader = true
				w.mu.Unlock()
			}
			if strings.Contains(line, "msg=subscribed") {
				w.mu.Lock()
				w.subscribed = true
				w.mu.Unlock()
			}
			if testing.Verbose() || strings.Contains(line, "level=ERROR") {
				t.Log(line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() { w.stop(syscall.SIGTERM) })
	return w
}

func (w *worker) isLeader() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leader
}

func (w *worker) stop(sig syscall.Signal) {
	_ = w.cmd.Process.Signal(sig)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// chainRegister is the tests' register (helpers_test.go) on a session
// that subscribes again at every connect (so it survives a broker
// restart) and asks for its store's member summaries from its position
// then and again at the session's first live ack (not retained; unlike
// the real uplink it does not wait for the session to have sent events:
// a summary the broker
// confirmed but had not delivered when it died is lost; the request at
// connect may reach no worker yet), and that resends what head office
// has not acknowledged after a quiet second, much as the real uplink
// does (sync/uplink askCatchUp, route).
func chainRegister(t *testing.T, url, store, id string) *register {
	r := &register{t: t, store: store, id: id, summary: map[string]protocol.MemberSummary{}}
	var sessions, askedOnAck atomic.Uint64
	askCatchUp := func(c mqtt.Client) {
		r.mu.Lock()
		from := r.pos
		r.mu.Unlock()
		b, err := protocol.EncodeCatchUp(protocol.CatchUp{Register: id, From: from})
		if err != nil {
			t.Errorf("catch-up request: %v", err)
			return
		}
		c.Publish(protocol.CatchUpTopic(store, id), 1, false, b).WaitTimeout(wait)
	}
	onAck := func(c mqtt.Client, m mqtt.Message) {
		a, err := decodeAck(m.Topic(), m.Payload(), id)
		if err != nil {
			t.Errorf("bad ack: %v", err)
			return
		}
		r.mu.Lock()
		r.acked = max(r.acked, a.Watermark)
		resend := a.Gap != 0
		n := uint64(len(r.recs))
		r.mu.Unlock()
		if resend {
			go r.sendQuiet(seqRange(a.Gap, n)...)
		}
		if s := sessions.Load(); !m.Retained() && askedOnAck.Swap(s) != s {
			go askCatchUp(c)
		}
	}
	r.c = connect(t, url, "reg-"+id, true, func(o *mqtt.ClientOptions) {
		o.SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond)
		o.SetOnConnectHandler(func(c mqtt.Client) {
			sessions.Add(1)
			go func() {
				topics := map[string]byte{
					protocol.AckTopic(store, id):             1,
					protocol.MembersTopic(store):             1,
					protocol.RegisterMembersTopic(store, id): 1,
				}
				tok := c.SubscribeMultiple(topics, func(c mqtt.Client, m mqtt.Message) {
					if m.Topic() == protocol.AckTopic(store, id) {
						onAck(c, m)
					} else {
						r.onMembers(c, m)
					}
				})
				if !tok.WaitTimeout(wait) || tok.Error() != nil || r.closed.Load() {
					return // the next connect subscribes again
				}
				askCatchUp(c)
			}()
		})
	})
	t.Cleanup(func() { r.closed.Store(true) })
	return r
}

// sendQuiet publishes like send but takes a failed publish (the broker
// restarting) as the real uplink does: the events stay unacknowledged and
// resendLoop sends them again.
func (r *register) sendQuiet(seqs ...uint64) {
	for _, s := range seqs {
		if r.closed.Load() {
			return
		}
		tok := r.c.Publish(protocol.EventsTopic(r.store, r.id), 1, false, r.payload(s))
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			return
		}
	}
}

// resendLoop resends from the acknowledged watermark when nothing was
// acknowledged for a while, until ctx ends.
func (r *register) resendLoop(ctx context.Context, quiet time.Duration) {
	last, since := r.ackedWM(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(quiet / 4):
		}
		a := r.ackedWM()
		r.mu.Lock()
		n := uint64(len(r.recs))
		r.mu.Unlock()
		if a != last {
			last, since = a, time.Now()
			continue
		}
		if a < n && time.Since(since) > quiet {
			r.sendQuiet(seqRange(a+1, min(n, a+200))...)
			since = time.Now()
		}
	}
}

// TestWorkersSurviveFaults runs three loyalty-hq workers (child processes)
// on one PostgreSQL behind real mosquitto, four registers streaming to
// them, and one fault mid-stream: a worker killed with SIGKILL (the
// leader, so summaries must move to another), PostgreSQL restarted, or the
// broker restarted. Afterwards every register's events are at head office
// exactly once (applied count and watermark equal the register's
// sequence, the events table holds each once: Check), balances equal the
// sum of the events, and every store's registers hold the final balance of
// every member from the leader's summaries.
func TestWorkersSurviveFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, fault := range []string{"kill -9 the leader", "restart PostgreSQL", "restart the broker"} {
		t.Run(fault, func(t *testing.T) { workersFault(t, fault) })
	}
}

func workersFault(t *testing.T, fault string) {
	srv := pgtest.Need(t, pgSrv, pgErr)
	_, dsn, err := srv.Schema()
	if err != nil {
		t.Fatal(err)
	}
	b := mosquittotest.Start(t, &mosquittotest.Options{MaxQueuedMessages: 100000, Persistence: true})
	var ws []*worker
	for i := 0; i < 3; i++ {
		ws = append(ws, startWorker(t, dsn, b.URL(), fmt.Sprintf("hq-w%d", i)))
	}
	const regs, per, members = 4, 250, 6
	want := map[string]ledger.Points{}
	var rs []*register
	for i := 0; i < regs; i++ {
		r := chainRegister(t, b.URL(), fmt.Sprintf("s%d", i%2), fmt.Sprintf("s%d-r%d", i%2, i))
		for seq := 1; seq <= per; seq++ {
			m := fmt.Sprintf("m%d", (i+seq)%members)
			pts := ledger.Points(seq%9 + 1)
			want[m] += pts
			r.points(m, pts)
		}
		rs = append(rs, r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Wait for the workers' subscriptions before streaming (a clean
	// session has nothing queued before it subscribes).
	testkit.Eventually(t, wait*4, "a leader", func() bool {
		for _, w := range ws {
			if w.isLeader() {
				return true
			}
		}
		return false
	})
	testkit.Eventually(t, wait*4, "every worker subscribed", func() bool {
		for _, w := range ws {
			if !w.isSubscribed() {
				return false
			}
		}
		return true
	})
	var wg stdsync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := uint64(1); s <= per; s += 10 {
				r.sendQuiet(seqRange(s, min(s+9, per))...)
				time.Sleep(20 * time.Millisecond)
			}
		}()
		go r.resendLoop(ctx, time.Second)
	}
	acked := func() uint64 {
		var n uint64
		for _, r := range rs {
			n += r.ackedWM()
		}
		return n
	}
	testkit.Eventually(t, 60*time.Second, "a third acknowledged", func() bool { return acked() >= regs*per/3 })
	switch fault {
	case "kill -9 the leader":
		for _, w := range ws {
			if w.isLeader() {
				w.stop(syscall.SIGKILL)
				t.Logf("killed %s (the leader) at %d acknowledged", w.id, acked())
				break
			}
		}
	case "restart PostgreSQL":
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		t.Logf("PostgreSQL restarted at %d acknowledged", acked())
	case "restart the broker":
		b.Restart()
		t.Logf("broker restarted at %d acknowledged", acked())
	}
	wg.Wait()
	testkit.Eventually(t, 120*time.Second, "every event acknowledged", func() bool { return acked() == regs*per })
	st, err := pgstore.Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	states, err := st.Registers()
	if err != nil || len(states) != regs {
		t.Fatalf("registers %+v %v", states, err)
	}
	for _, s := range states {
		if s.Watermark != per || s.Applied != per || s.Held != 0 {
			t.Errorf("register %s: watermark %d applied %d held %d, want %d applied once each", s.Register, s.Watermark, s.Applied, s.Held, per)
		}
	}
	for m, w := range want {
		if got, err := st.Balance(m); err != nil || got != w {
			t.Errorf("member %s: balance %d (%v), want %d", m, got, err, w)
		}
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	// The leader (a new one after the kill) brings every store the final
	// balances.
	testkit.Eventually(t, 60*time.Second, "final balances in every store's summaries", func() bool {
		for _, r := range rs {
			for m, w := range want {
				if s, ok := r.memberSummary(m); !ok || s.Balance != w {
					return false
				}
			}
		}
		return true
	})
}

// While the database is down nothing is acknowledged, status says why
// (naming the address, never the password), and nothing is lost: once it
// is back the register's resends are applied.
func TestDatabaseDownNoAcks(t *testing.T) {
	srv := pgtest.Need(t, pgSrv, pgErr)
	_, dsn, err := srv.Schema()
	if err != nil {
		t.Fatal(err)
	}
	b := mosquittotest.Start(t, nil)
	st, err := pgstore.Open(dsn, &pgstore.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: b.URL(), WaitTimeout: wait}, Signer: hqKey, GapRetry: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, wait, "hq subscribed", func() bool { return svc.Status().Subscribed })
	r := chainRegister(t, b.URL(), "s1", "s1-r1")
	for range 20 {
		r.points("m1", 5)
	}
	r.send(seqRange(1, 10)...)
	testkit.Eventually(t, wait, "ack of 10", func() bool { return r.ackedWM() == 10 })
	srv.Stop()
	r.sendQuiet(seqRange(11, 20)...)
	testkit.Eventually(t, 4*wait, "the store error in status", func() bool { return svc.Status().StoreError != "" })
	why := svc.Status().StoreError
	if !strings.Contains(why, srv.Addr()) || strings.Contains(why, srv.Password()) {
		t.Fatalf("status store_error %q: want the address, never the password", why)
	}
	if a := r.ackedWM(); a != 10 {
		t.Fatalf("acknowledged %d while the database was down, want 10", a)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go r.resendLoop(rctx, time.Second)
	testkit.Eventually(t, 6*wait, "every event acknowledged once the database is back", func() bool { return r.ackedWM() == 20 })
	if s := svc.Status(); s.StoreError != "" {
		t.Fatalf("store_error %q after a good commit", s.StoreError)
	}
	if bal, err := st.Balance("m1"); err != nil || bal != 100 {
		t.Fatalf("balance %d %v, want 100", bal, err)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
}
