package faulttest_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

var long = flag.Bool("long", false, "run the long fault-test variants (70,000+ events)")

const wait = 60 * time.Second

const store = "s1"

// office is a real head office: hqstore on disk plus sync/hq, restartable.
type office struct {
	t      testing.TB
	url    string
	path   string
	mu     sync.Mutex
	st     *hqstore.Store
	svc    *hq.Service
	cancel context.CancelFunc
	done   chan error
}

func startOffice(t testing.TB, url string) *office {
	t.Helper()
	o := &office{t: t, url: url, path: filepath.Join(t.TempDir(), "hq.db")}
	o.start()
	t.Cleanup(o.stop)
	return o
}

func (o *office) start() {
	o.t.Helper()
	st, err := hqstore.Open(o.path, nil)
	if err != nil {
		o.t.Fatalf("open hq store: %v", err)
	}
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: o.url, WaitTimeout: 5 * time.Second}, GapRetry: 200 * time.Millisecond, Signer: hqKey})
	if err != nil {
		o.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	o.mu.Lock()
	o.st, o.svc, o.cancel, o.done = st, svc, cancel, done
	o.mu.Unlock()
	testkit.Eventually(o.t, wait, "head office subscribed", func() bool { return svc.Status().Subscribed })
}

func (o *office) stop() {
	o.mu.Lock()
	cancel, done, st := o.cancel, o.done, o.st
	o.cancel = nil
	o.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		o.t.Errorf("head office did not stop within %v", wait)
	}
	// Every stop, the last one at the end of the test included, checks
	// head office's store as the register's ledger is checked.
	if err := st.Check(); err != nil {
		o.t.Errorf("head office store check: %v", err)
	}
	st.Close()
}

func (o *office) store() *hqstore.Store {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.st
}

// register is a real register ledger with its uplink.
type register struct {
	t       testing.TB
	id      string
	l       *ledger.Ledger
	members []string
	n       atomic.Int64
	u       *uplink.Uplink
	stopU   func()
}

func newRegister(t testing.TB, id string) *register {
	t.Helper()
	return openRegister(t, id, filepath.Join(t.TempDir(), id+".db"), true)
}

func openRegister(t testing.TB, id, path string, enrol bool) *register {
	t.Helper()
	l := ledgertest.OpenAt(t, path, &ledger.Options{Register: id}) // Check runs when the test ends
	r := &register{t: t, id: id, l: l}
	for i := 0; i < 5; i++ {
		m := fmt.Sprintf("%s-m%d", id, i)
		r.members = append(r.members, m)
		if enrol {
			if _, err := l.Enrol(context.Background(), ledger.Member{ID: m, Name: "Member " + m, Aliases: []string{"card-" + m}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

func (r *register) start(urls []string, o uplink.Options) {
	r.t.Helper()
	o.Brokers, o.Store, o.Register = urls, store, r.id
	if o.OpTimeout == 0 {
		o.OpTimeout = 2 * time.Second
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = time.Second
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 2 * time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMin, o.BackoffMax = 20*time.Millisecond, 500*time.Millisecond
	}
	if o.OnMembers == nil {
		o.OnMembers = uplink.ApplyMembersTo(r.l, r.id)
	}
	if o.Keys == nil {
		o.Keys = hqRing
	}
	u, err := uplink.New(ledger.Wire{Ledger: r.l}, &o) // as loyaltyd gives it (daemon/open.go)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	r.u = u
	r.stopU = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(wait):
				r.t.Errorf("uplink of %s did not stop within %v", r.id, wait)
			}
		})
	}
	r.t.Cleanup(r.stopU)
}

// record makes n point adjustments (+1..+9, so a double application would
// show in the balance) from 8 concurrent callers, as 8 tills would.
func (r *register) record(n int) {
	r.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	base := r.n.Add(int64(n)) - int64(n)
	per := (n + 7) / 8
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g * per; i < min(n, (g+1)*per); i++ {
				k := base + int64(i)
				m := r.members[k%int64(len(r.members))]
				if _, err := r.l.Adjust(context.Background(), fmt.Sprintf("%s-adj-%d", r.id, k), m, ledger.Points(1+k%9), "fault test", "op"); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		r.t.Fatal(err)
	}
}

// last is the register's last sequence number.
func (r *register) last() uint64 {
	r.t.Helper()
	n, _, err := r.l.OutboxStats()
	if err != nil {
		r.t.Fatal(err)
	}
	w, err := r.l.Confirmed()
	if err != nil {
		r.t.Fatal(err)
	}
	return w + uint64(n)
}

// verify waits for head office and every register to agree, then checks:
// every event applied exactly once (applied count = last seq, nothing held,
// rejected or in conflict), in order (the watermark is contiguous by
// construction of hqstore), the register's outbox confirmed to the end, and
// every member's balance equal at head office and at the register.
func verify(t testing.TB, o *office, regs ...*register) {
	t.Helper()
	for _, r := range regs {
		n := r.last()
		testkit.Eventually(t, wait, r.id+" fully acknowledged", func() bool {
			w, err := o.store().Watermark(r.id)
			c, _ := r.l.Confirmed()
			return err == nil && w == n && c == n
		})
	}
	states, err := o.store().Registers()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]hqstore.RegisterState{}
	for _, s := range states {
		byID[s.Register] = s
	}
	for _, r := range regs {
		s := byID[r.id]
		n := r.last()
		if s.Applied != n || s.Held != 0 || s.Rejected != 0 || s.Conflicts != 0 || s.Watermark != n {
			t.Fatalf("%s at head office: %+v, want applied = watermark = %d and nothing held, rejected or in conflict", r.id, s, n)
		}
		t.Logf("%s: %d events applied once each; %d duplicates dropped by head office", r.id, n, s.Duplicates)
		for _, m := range r.members {
			testkit.Eventually(t, wait, "balance of "+m+" equal on both sides", func() bool {
				hb, err1 := o.store().Balance(m)
				rb, err2 := r.l.Balance(m)
				return err1 == nil && err2 == nil && hb == rb
			})
		}
	}
}

// linkGoroutines counts goroutines running paho or uplink code.
func linkGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "paho.mqtt.golang") || strings.Contains(g, "sync/uplink") {
			n++
		}
	}
	return n
}

// hqKey is head office's signing key in these tests (the same in every
// re-executed process); registers pin hqRing.
var hqKey, hqRing = func() (*signing.Signer, *signing.Keyring) {
	k, err := signing.Generate(bytes.NewReader(bytes.Repeat([]byte{42}, 32)))
	if err != nil {
		panic(err)
	}
	r, err := signing.NewKeyring(k.Public())
	if err != nil {
		panic(err)
	}
	return k, r
}()
