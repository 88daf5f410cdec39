package faulttest_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// Environment of the re-executed register child.
const (
	envChild  = "FAULTTEST_REGISTER_CHILD" // ledger path
	envBroker = "FAULTTEST_BROKER"
	envRecord = "FAULTTEST_RECORD"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envChild); path != "" {
		os.Exit(registerChild(path))
	}
	os.Exit(m.Run())
}

// registerChild is a register process: it records FAULTTEST_RECORD events,
// prints "LAST <seq>", then runs its uplink until SIGTERM (clean) or
// SIGKILL (the fault).
func registerChild(path string) int {
	fail := func(err error) int { fmt.Println("ERROR", err); return 1 }
	l, err := ledger.Open(path, &ledger.Options{Register: "r1"})
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	ctx := context.Background()
	n, _ := strconv.Atoi(os.Getenv(envRecord))
	for i := 0; i < 5; i++ {
		m := fmt.Sprintf("r1-m%d", i)
		if _, err := l.Enrol(ctx, ledger.Member{ID: m, Name: "Member " + m, Aliases: []string{"card-" + m}}); err != nil {
			return fail(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := g; k < n; k += 8 {
				if _, err := l.Adjust(ctx, fmt.Sprintf("r1-adj-%d", k), fmt.Sprintf("r1-m%d", k%5), ledger.Points(1+k%9), "fault test", "op"); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return fail(err)
	}
	pending, _, _ := l.OutboxStats()
	w, _ := l.Confirmed()
	fmt.Printf("LAST %d\n", w+uint64(pending))
	u, err := uplink.New(l, &uplink.Options{Brokers: []string{os.Getenv(envBroker)}, Store: store, Register: "r1",
		OpTimeout: 2 * time.Second, AckTimeout: time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond,
		OnMembers: uplink.ApplyMembersTo(l, "r1"), Keys: hqRing}) // head office's key: it forgets on signed acks only
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	go func() { // report confirmations to the parent, which cannot open the locked ledger
		var last uint64
		for ctx.Err() == nil {
			if w := u.Status().Watermark; w != last {
				last = w
				fmt.Printf("CONFIRMED %d\n", w)
			}
			time.Sleep(20 * time.Millisecond) // report interval
		}
	}()
	if err := u.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

type child struct {
	cmd       *exec.Cmd
	last      chan uint64
	confirmed atomic.Uint64
	done      chan struct{}
}

func startChild(t *testing.T, path, url string, record int) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+path, envBroker+"="+url, envRecord+"="+strconv.Itoa(record))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, last: make(chan uint64, 1), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "LAST "); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				c.last <- n
			} else if v, ok := strings.CutPrefix(line, "CONFIRMED "); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				c.confirmed.Store(n)
			} else if strings.HasPrefix(line, "ERROR") {
				t.Errorf("register child: %s", line)
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.signal(t, syscall.SIGKILL) })
	return c
}

func (c *child) signal(t *testing.T, sig syscall.Signal) {
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(wait):
		t.Errorf("register child did not exit on %v", sig)
	}
}

// TestRegisterKilledBetweenPubackAndAck: the register publishes its whole
// backlog and gets every PUBACK, but head office is down so no ack comes;
// the register is SIGKILLed. Head office comes back and applies what the
// broker queued; the register restarts, learns the watermark and resends
// what is missing. Nothing is lost and nothing applied twice.
func TestRegisterKilledBetweenPubackAndAck(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	o := startOffice(t, b.URL()) // creates head office's persistent session
	o.stop()

	// An observer sees what the broker forwards, i.e. what was PUBACKed.
	seen := make(chan uint64, 1024)
	obs := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("observer").SetAutoReconnect(false))
	if tok := obs.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer obs.Disconnect(100)
	var mu sync.Mutex
	maxSeen := uint64(0)
	tok := obs.Subscribe(protocol.EventsTopic(store, "r1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		evs, err := protocol.DecodeEvents(m.Payload(), store, "r1")
		if err != nil {
			t.Errorf("observer: %v", err)
			return
		}
		s, _ := evs[len(evs)-1].Seq()
		mu.Lock()
		maxSeen = max(maxSeen, s)
		mu.Unlock()
		select {
		case seen <- s:
		default:
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	states := make(chan string, 64)
	tok = obs.Subscribe(protocol.StatusTopic(store, "r1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if s, err := protocol.DecodeStatus(m.Payload(), store, "r1"); err == nil {
			select {
			case states <- s.State:
			default:
			}
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	path := filepath.Join(t.TempDir(), "r1.db")
	c := startChild(t, path, b.URL(), 1000)
	var last uint64
	select {
	case last = <-c.last:
	case <-time.After(wait):
		t.Fatal("child did not record")
	}
	testkit.Eventually(t, wait, "whole backlog PUBACKed and forwarded", func() bool { mu.Lock(); defer mu.Unlock(); return maxSeen == last })
	for len(states) > 0 {
		<-states
	}
	c.signal(t, syscall.SIGKILL)
	// The broker notices the dead connection and publishes the last will.
	select {
	case st := <-states:
		if st != protocol.StateOffline {
			t.Fatalf("status after SIGKILL: %s, want the offline will", st)
		}
	case <-time.After(wait):
		t.Fatal("no last will after SIGKILL")
	}

	// Nothing was confirmed: PUBACK is not an acknowledgement. (Opened
	// read-write, as loyaltyd does: a read-only open refuses a ledger
	// whose sale log holds batches the kill left out of the file.)
	l, err := ledger.Open(path, &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := l.Confirmed(); w != 0 {
		t.Fatalf("register confirmed %d without head office", w)
	}
	l.Close()

	o.start()
	testkit.Eventually(t, wait, "head office applied the queued events", func() bool { w, _ := o.store().Watermark("r1"); return w > 0 })
	c = startChild(t, path, b.URL(), 0)
	<-c.last
	testkit.Eventually(t, wait, "head office has everything", func() bool { w, _ := o.store().Watermark("r1"); return w == last })
	testkit.Eventually(t, wait, "restarted register confirmed", func() bool { return c.confirmed.Load() == last })
	c.signal(t, syscall.SIGTERM)
	r := openRegister(t, "r1", path, false)
	r.start([]string{b.URL()}, uplink.Options{})
	verify(t, o, r)
}
