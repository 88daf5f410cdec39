package hq_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

var (
	simRegisters = flag.Int("sim.registers", 1000, "registers in BenchmarkChainSim")
	simWorkers   = flag.String("sim.workers", "1,2,3", "worker counts of BenchmarkChainSim's steady runs")
	simStormW    = flag.String("sim.storm-workers", "3", "worker counts after whose steady run BenchmarkChainSim runs a reconnect storm (empty: none)")
	simTrade     = flag.Duration("sim.trade", 3*time.Second, "how long each register trades in a steady run")
	simEvery     = flag.Duration("sim.every", time.Second, "time between two events of one register while trading")
	simStormN    = flag.Int("sim.storm-events", 250, "events each register records while the storm's outage lasts")
	simStormRegs = flag.Int("sim.storm-registers", 500, "registers (the first of -sim.registers) that go offline in the storm; make bench runs 500 x 250, not 1,000 x 250, to stay short")
)

// simOutbox is a register's ledger outbox in memory (uplink.Outbox, with
// an incarnation as a real ledger has): events are recorded with the time
// of their commit, and Confirm notes, for each event it covers, the time
// from that commit to head office's acknowledgement.
type simOutbox struct {
	inc    string
	reg    string
	notify chan struct{}

	mu        stdsync.Mutex
	recs      []ledger.OutboxRecord // seq i+1 at index i
	at        []time.Time
	confirmed uint64
	lat       []time.Duration
}

var _ uplink.Outbox = (*simOutbox)(nil)

func newSimOutbox(reg string, n int) *simOutbox {
	return &simOutbox{reg: reg, inc: fmt.Sprintf("%032x", n+1), notify: make(chan struct{}, 1)}
}

// add records n point events, as n sales would.
func (o *simOutbox) add(n int) {
	o.mu.Lock()
	now := time.Now()
	for range n {
		seq := uint64(len(o.recs) + 1)
		pe := ledger.PointEvent{ID: protocol.EventID(o.reg, seq), Register: o.reg, Seq: seq, Kind: ledger.KindEarn,
			MemberID: "m" + strconv.Itoa(int(seq*7919+uint64(len(o.recs)*31+len(o.reg)))%5000), Points: ledger.Points(seq%9 + 1)}
		data, _ := json.Marshal(pe)
		o.recs = append(o.recs, ledger.OutboxRecord{Seq: seq, ID: pe.ID, Type: ledger.OutPoints, WallTime: now.UTC(), ClockTrusted: true, Data: data})
		o.at = append(o.at, now)
	}
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

func (o *simOutbox) Incarnation() (string, error) { return o.inc, nil }

func (o *simOutbox) Outbox(after uint64, n int) ([]ledger.OutboxRecord, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	after = min(max(after, o.confirmed), uint64(len(o.recs)))
	end := min(after+uint64(n), uint64(len(o.recs)))
	return slices.Clone(o.recs[after:end]), nil
}

func (o *simOutbox) Confirm(w uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w > uint64(len(o.recs)) {
		return fmt.Errorf("%w: %d beyond %d", ledger.ErrPruneNotAllowed, w, len(o.recs))
	}
	now := time.Now()
	for s := o.confirmed + 1; s <= w; s++ {
		o.lat = append(o.lat, now.Sub(o.at[s-1]))
	}
	o.confirmed = max(o.confirmed, w)
	return nil
}

func (o *simOutbox) Confirmed() (uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.confirmed, nil
}

func (o *simOutbox) OutboxStats() (int, ledger.OutboxRecord, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n := uint64(len(o.recs)) - o.confirmed; n > 0 {
		return int(n), o.recs[o.confirmed], nil
	}
	return 0, ledger.OutboxRecord{}, nil
}

func (o *simOutbox) OutboxNotify() <-chan struct{} { return o.notify }

// pending is how many events head office has not confirmed yet.
func (o *simOutbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.recs) - int(o.confirmed)
}

// simReg is a simulated register: the real uplink (sync/uplink, its own
// MQTT session and client id) over an in-memory outbox.
type simReg struct {
	store, id string
	ob        *simOutbox
	stop      func()
	up        *uplink.Uplink
}

func (r *simReg) start(b testing.TB, url string) {
	u, err := uplink.New(r.ob, &uplink.Options{Brokers: []string{url}, Store: r.store, Register: r.id,
		ConfirmEvery: time.Millisecond, // Confirm at once: it times commit-to-ack
		OpTimeout:    30 * time.Second,
		Keys:         hqRing}) // head office's key: registers confirm on signed acks only
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = u.Run(ctx) }()
	r.up, r.stop = u, func() { cancel(); <-done }
}

// BenchmarkChainSim runs a chain on one machine: -sim.registers (1,000)
// registers (the real uplink over an in-memory outbox, each with its own
// MQTT session) against real mosquitto and head-office workers (child
// processes, as loyalty-hq serve with postgres.group, on its defaults) on
// one durable PostgreSQL. The registers connect once; workers are added
// one by one up to each count of -sim.workers (1, 2, 3), and each count
// gets a steady run: every register records an event every -sim.every for
// -sim.trade; events/s is all of them over the time until head office
// confirmed the last, p99 the commit-to-ack time of single events. After
// the steady run of each -sim.storm-workers count (3) comes a reconnect
// storm: the first -sim.storm-registers (500) registers offline while
// each records -sim.storm-events (250) events, then all reconnect at
// once; the drain time is until head office confirmed every one. Before
// each run the chain is left until head office has worked off its queues.
// Each REPORT line's name says what was run. It runs once whatever b.N
// is; member summaries are off (ingest is measured).
func BenchmarkChainSim(b *testing.B) {
	srv, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		pgtest.Need(b, nil, err)
	}
	defer srv.Close()
	n := *simRegisters
	storms := map[int]bool{}
	for _, w := range strings.Split(*simStormW, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(w)); err == nil {
			storms[v] = true
		}
	}
	var counts []int
	for _, w := range strings.Split(*simWorkers, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(w)); err == nil && v >= 1 {
			counts = append(counts, v)
		}
	}
	slices.Sort(counts)
	trade := fmt.Sprintf("every%dms_%ds", simEvery.Milliseconds(), int(simTrade.Seconds()))
	c := startSimChain(b, srv, n)
	for _, workers := range slices.Compact(counts) {
		c.workersUpTo(workers)
		c.quiet()
		rate, p99 := c.steady(*simTrade, *simEvery)
		fmt.Printf("REPORT hq_sim_%dregs_%s_%dworkers_events_per_s %.0f\n", n, trade, workers, rate)
		fmt.Printf("REPORT hq_sim_%dregs_%s_%dworkers_p99_commit_to_ack_ms %.0f\n", n, trade, workers, p99.Seconds()*1000)
		if storms[workers] {
			m := min(*simStormRegs, n)
			c.quiet()
			drain, resends := c.storm(m, *simStormN)
			fmt.Printf("REPORT hq_sim_storm_%dregs_x%d_%dworkers_drain_s %.1f\n", m, *simStormN, workers, drain.Seconds())
			fmt.Printf("REPORT hq_sim_storm_%dregs_x%d_%dworkers_register_resends %d\n", m, *simStormN, workers, resends)
		}
	}
	broker, hqRSS := c.close()
	fmt.Printf("REPORT hq_sim_%dregs_broker_peak_rss_mb %.0f\n", n, broker)
	fmt.Printf("REPORT hq_sim_%dregs_hq_peak_rss_mb_per_worker %.0f\n", n, hqRSS)
}

type simChain struct {
	b       testing.TB
	dsn     string
	broker  *mosquittotest.Broker
	workers []*worker
	regs    []*simReg
	// acks counts the acks head office publishes (a watcher's
	// subscription), to see when it has worked off its queues.
	acks atomic.Uint64
}

// startSimChain starts the broker and n registers on a fresh schema; no
// worker yet.
func startSimChain(b testing.TB, srv *pgtest.Server, n int) *simChain {
	_, dsn, err := srv.Schema()
	if err != nil {
		b.Fatal(err)
	}
	c := &simChain{b: b, dsn: dsn, broker: mosquittotest.Start(b, &mosquittotest.Options{MaxQueuedMessages: 100000, MaxInflightMessages: 200})}
	for i := range n {
		store := fmt.Sprintf("s%03d", i/2)
		id := fmt.Sprintf("%s-r%d", store, i%2)
		r := &simReg{store: store, id: id, ob: newSimOutbox(id, i)}
		r.start(b, c.broker.URL())
		c.regs = append(c.regs, r)
	}
	c.online()
	connect(b, c.broker.URL(), "sim-ack-watch", true, func(o *mqtt.ClientOptions) {
		o.SetDefaultPublishHandler(func(mqtt.Client, mqtt.Message) { c.acks.Add(1) })
		o.SetOnConnectHandler(func(cl mqtt.Client) { go cl.Subscribe(protocol.Root+"/+/+/"+protocol.KindAck, 0, nil) })
	})
	return c
}

// quiet waits until head office has sent no ack for a second: it has
// worked off what is queued (the duplicates a storm leaves behind), so
// the next run measures only itself.
func (c *simChain) quiet() {
	deadline := time.Now().Add(5 * time.Minute)
	last, since := c.acks.Load(), time.Now()
	for time.Since(since) < time.Second && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if n := c.acks.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}

// online waits until every register is connected.
func (c *simChain) online() {
	deadline := time.Now().Add(2 * time.Minute)
	for _, r := range c.regs {
		for !r.up.Status().Online {
			if time.Now().After(deadline) {
				c.b.Fatalf("register %s not online within 2m", r.id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// workersUpTo starts workers until there are n, each subscribed.
func (c *simChain) workersUpTo(n int) {
	for len(c.workers) < n {
		w := startWorkerEnv(c.b, c.dsn, c.broker.URL(), fmt.Sprintf("sim-hq-%d", len(c.workers)), "HQ_PG_WORKER_SIM=1")
		c.workers = append(c.workers, w)
		deadline := time.Now().Add(time.Minute)
		for !w.isSubscribed() {
			if time.Now().After(deadline) {
				c.b.Fatalf("worker %s not subscribed within 1m", w.id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// close stops the registers and the workers and returns the broker's and
// the largest worker's peak resident memory (VmHWM) in MB.
func (c *simChain) close() (brokerMB, hqMB float64) {
	brokerMB = peakRSSMB(c.broker.PID())
	for _, w := range c.workers {
		hqMB = max(hqMB, peakRSSMB(w.cmd.Process.Pid))
	}
	var wg stdsync.WaitGroup
	for _, r := range c.regs {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop() }()
	}
	wg.Wait()
	for _, w := range c.workers {
		w.stop(syscall.SIGTERM)
	}
	c.broker.Stop()
	return brokerMB, hqMB
}

// drained waits until head office confirmed every register's events.
func (c *simChain) drained(limit time.Duration) time.Time {
	deadline := time.Now().Add(limit)
	for {
		left := 0
		for _, r := range c.regs {
			left += r.ob.pending()
		}
		if left == 0 {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.b.Fatalf("%d events not acknowledged within %v", left, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *simChain) steady(trade, every time.Duration) (rate float64, p99 time.Duration) {
	start := time.Now()
	var wg stdsync.WaitGroup
	total := 0
	for _, r := range c.regs {
		k := int(trade / every)
		total += k
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(rand.N(every)) // tills do not ring in step
			for range k {
				r.ob.add(1)
				time.Sleep(every)
			}
		}()
	}
	wg.Wait()
	end := c.drained(5 * time.Minute)
	var lat []time.Duration
	for _, r := range c.regs {
		r.ob.mu.Lock()
		lat = append(lat, r.ob.lat...)
		r.ob.lat = nil
		r.ob.mu.Unlock()
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		p99 = lat[len(lat)*99/100]
	}
	return float64(total) / end.Sub(start).Seconds(), p99
}

// storm takes the first m registers offline, records per events at each,
// and brings them all back at once; it returns the time until head office
// confirmed every event and the resends the registers made meanwhile
// (gap requests honoured, silences).
func (c *simChain) storm(m, per int) (time.Duration, uint64) {
	regs := c.regs[:m]
	var wg stdsync.WaitGroup
	for _, r := range regs {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop() }()
	}
	wg.Wait()
	for _, r := range regs {
		r.ob.add(per)
	}
	start := time.Now()
	for _, r := range regs {
		r.start(c.b, c.broker.URL())
	}
	end := c.drained(10 * time.Minute)
	var resends uint64
	for _, r := range regs {
		resends += r.up.Status().Resends
	}
	return end.Sub(start), resends
}

// peakRSSMB reads a process's peak resident set (VmHWM) in MB.
func peakRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func (w *worker) isSubscribed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.subscribed
}
