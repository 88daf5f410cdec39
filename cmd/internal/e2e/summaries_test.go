package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// summHQ is the real `loyalty-hq serve` on a real mosquitto.
type summHQ struct {
	t       *testing.T
	b       *mosquittotest.Broker
	dir     string
	cfgPath string
	status  string // address of its status page
	cmd     *exec.Cmd
	exited  chan error
	stderr  *bytes.Buffer
}

func startHQBinary(t *testing.T, b *mosquittotest.Broker) *summHQ {
	t.Helper()
	return startHQBinaryRules(t, b, summaryRules)
}

// startHQBinaryRules is startHQBinary with the registers' rule set
// (a YAML document with a top-level rules: key) in its policy.
func startHQBinaryRules(t *testing.T, b *mosquittotest.Broker, registerRules string) *summHQ {
	t.Helper()
	h := &summHQ{t: t, b: b, dir: t.TempDir(), status: testkit.FreeAddr(t)}
	key := filepath.Join(h.dir, "hq-signing.key")
	if err := os.WriteFile(key, hqKey.MarshalPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The registers' own rule set (syncRegisterAt), so head office's
	// policy checks their earnings instead of holding them.
	rules := filepath.Join(h.dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(registerRules), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cfgPath = filepath.Join(h.dir, "hq.yaml")
	cfg := fmt.Sprintf("store: %s\nbroker:\n  url: %s\n  wait_timeout: 5s\nsigning_key_file: %s\nsummary_interval: 100ms\nstatus_addr: %s\npolicy:\n  rules_files: [%s]\nlog:\n  level: debug\n",
		filepath.Join(h.dir, "hq.db"), b.URL(), key, h.status, rules)
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	t.Cleanup(func() {
		if h.cmd != nil && h.cmd.ProcessState == nil {
			_ = h.cmd.Process.Kill()
			<-h.exited
		}
	})
	return h
}

// start runs loyalty-hq and waits until it has subscribed, by its status
// page, and its log shows that page on h.status (so the answer is its own).
// A port another process took first is replaced (h.status changes).
func (h *summHQ) start() {
	h.t.Helper()
	for try := 1; ; try++ {
		if !h.startOnce(try < testkit.PortTries) {
			return
		}
		h.t.Logf("loyalty-hq: port %s taken by another process; trying another", h.status)
		h.status = testkit.MoveAddr(h.t, h.cfgPath, h.status)
	}
}

// startOnce is one try of start; it says whether loyalty-hq exited because
// its port was taken (only when retry is set: else that fails the test).
func (h *summHQ) startOnce(retry bool) (taken bool) {
	h.t.Helper()
	h.stderr = &bytes.Buffer{}
	h.cmd = exec.Command(bins.hq, "serve", "-config", h.cfgPath)
	h.cmd.Dir = h.dir
	h.cmd.Stdout = io.Discard
	h.cmd.Stderr = &lockedWriter{w: h.stderr}
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(h.cmd, h.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st := h.serviceStatus(); st["subscribed"] == true && strings.Contains(h.logs(), "http://"+h.status+"/status") {
			return false
		}
		select {
		case err := <-h.exited:
			if retry && testkit.PortTaken(h.logs()) {
				return true
			}
			h.t.Fatalf("loyalty-hq exited before it subscribed: %v\n%s", err, h.logs())
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("loyalty-hq not subscribed in time\n%s", h.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logs is what loyalty-hq has written to stderr.
func (h *summHQ) logs() string {
	lw := h.cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return h.stderr.String()
}

func (h *summHQ) get(path string, v any) int {
	resp, err := http.Get("http://" + h.status + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		_ = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

func (h *summHQ) serviceStatus() map[string]any {
	var doc struct {
		Service map[string]any `json:"service"`
	}
	h.get("/status", &doc)
	return doc.Service
}

// balance is head office's chain-wide balance of a member.
func (h *summHQ) balance(member string) float64 {
	h.t.Helper()
	var sum struct {
		Balance float64 `json:"balance"`
	}
	if code := h.get("/members/"+member, &sum); code != 200 {
		h.t.Fatalf("head office's member %s: %d", member, code)
	}
	return sum.Balance
}

func (h *summHQ) term() {
	h.t.Helper()
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(20 * time.Second):
		h.t.Fatalf("loyalty-hq did not stop\n%s", h.logs())
	}
}

// syncRegisterAt is a register with the given ids, syncing to broker.
func syncRegisterAt(t *testing.T, b *mosquittotest.Broker, store, id string) *register {
	r := newRegister(t)
	r.regID, r.storeID = id, store
	r.extraCfg = syncCfg(b.URL()) + "  lookup_timeout: 3s\n"
	r.rules = summaryRules
	return r
}

// summaryRules is the rule set of these tests' registers.
const summaryRules = `rules:
  version: 1
  unit: 100
  earn:
    points_per_unit: 1
  rounding: floor
  round_per: line
  rewards:
    - id: voucher
      name: Voucher
      points: 150
      discount: 500
`

// memberBalance is the register's balance of a member, or -1 when it does
// not know the member.
func memberBalance(r *register, member string) float64 {
	code, m := r.api("GET", "/v1/members/"+member, nil)
	if code != 200 {
		return -1
	}
	b, _ := m["balance"].(float64)
	return b
}

// TestSummariesQueuedWhileAwayAllArrive is issue 11's first bug on the
// real binaries: register r1 (store s1) is stopped while r2 (store s2)
// sells to ten members who shop at both stores, one sale each, spaced so
// that each goes out in its own members message; when r1 starts again it
// has every member at head office's balance (before: 2 of 10 stayed
// stale, refused as "stale or out-of-order"), and a redemption of 150
// points works there.
func TestSummariesQueuedWhileAwayAllArrive(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	h := startHQBinary(t, b)
	r2 := syncRegisterAt(t, b, "s2", "r2")
	r2.start()
	r1 := syncRegisterAt(t, b, "s1", "r1")
	r1.start()
	const n = 10
	for i := range n {
		enrolAPI(t, r2, fmt.Sprintf("m%d", i), "")
	}
	// Head office must have the enrolments before r1 can look them up
	// (a lookup of a member head office has not heard of yet is a 404).
	waitStatus(t, r2, "enrolments at head office", drained)
	// Each member buys at r1 too (r1 asks head office who they are), so
	// each shops at both stores.
	for i := range n {
		id := fmt.Sprintf("m%d", i)
		code, m := r1.api("POST", "/v1/sales", map[string]any{"id": "s1-" + id, "member": id,
			"lines": []map[string]any{{"no": 1, "sku": "X", "quantity": 1, "unit_price": 1000}}})
		if code != 201 {
			t.Fatalf("sale at r1 for %s, a member enrolled at r2: %d %v\n%s", id, code, m, r1.logs())
		}
	}
	waitStatus(t, r1, "drained", drained)
	waitStatus(t, r2, "drained", drained)
	if _, err := r1.term(); err != nil {
		t.Fatalf("r1 exit: %v\n%s", err, r1.logs())
	}
	for i := range n {
		saleAPI(t, r2, fmt.Sprintf("s2-m%d", i), fmt.Sprintf("m%d", i), 10000+i*5000)
		time.Sleep(300 * time.Millisecond) // each in its own round of summaries (100ms)
	}
	waitStatus(t, r2, "drained", drained)
	want := map[string]float64{}
	for i := range n {
		id := fmt.Sprintf("m%d", i)
		deadline := time.Now().Add(20 * time.Second)
		for want[id] = h.balance(id); want[id] != float64(10+100+50*i); want[id] = h.balance(id) {
			if time.Now().After(deadline) {
				t.Fatalf("head office's balance of %s is %v", id, want[id])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	r1.start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		stale := 0
		for id, w := range want {
			if memberBalance(r1, id) != w {
				stale++
			}
		}
		if stale == 0 {
			break
		}
		if time.Now().After(deadline) {
			for id, w := range want {
				t.Logf("%s: r1 %v, head office %v", id, memberBalance(r1, id), w)
			}
			t.Fatalf("%d of %d members stale at r1 after it came back\n%s", stale, n, r1.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(r1.logs(), "member summaries rejected") {
		t.Errorf("r1 rejected member summaries:\n%s", r1.logs())
	}
	// 150 of m1's 160 points, redeemed at r1.
	code, m := r1.api("POST", "/v1/sales", map[string]any{"id": "redeem-m1", "member_id": "m1",
		"lines":       []map[string]any{{"no": 1, "sku": "X", "quantity": 1, "unit_price": 1000}},
		"redemptions": []map[string]any{{"reward_id": "voucher"}}})
	if code != 201 {
		t.Fatalf("redeeming 150 of m1's %v points at r1: %d %v", want["m1"], code, m)
	}
	stopAndOpen(t, r1)
	stopAndOpen(t, r2)
}

// TestNewRegisterLearnsExistingMembers is issue 11's second bug on the
// real binaries. A second, new register in a store head office knows
// learns the members that existed before it (catch-up from position 0)
// without sending anything, so a sale there for a member enrolled at the
// store's other register works (before: 404 unknown_member). The first
// register of a new store learns a card it does not know by asking head
// office, and its display shows the chain-wide balance. A restart of head
// office resends nothing the stores already have; with head office down,
// an unknown card stays unknown after the lookup timeout.
func TestNewRegisterLearnsExistingMembers(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	h := startHQBinary(t, b)
	r1 := syncRegisterAt(t, b, "s1", "r1")
	r1.start()
	enrol(t, r1) // m1, card memberCard
	for i := range 5 {
		enrolAPI(t, r1, fmt.Sprintf("k%d", i), "")
	}
	saleAPI(t, r1, "s1", "m1", 4200)
	waitStatus(t, r1, "drained", drained)
	waitHQ := func(what string, cond func(map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st := h.serviceStatus()
			if st != nil && cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("head office never %s: %v\n%s", what, st, h.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// r1's own members come back to r1's store.
	waitHQ("sent the store's summaries", func(st map[string]any) bool { return st["summaries_sent"].(float64) >= 6 })

	// A new register in store s1: it has sent nothing, and learns every
	// member of its store.
	r2 := syncRegisterAt(t, b, "s1", "r2")
	r2.start()
	// A sale by member id does not ask head office: the member must be
	// in r2's ledger already.
	sale := func(id, member string) (int, map[string]any) {
		return r2.api("POST", "/v1/sales", map[string]any{"id": id, "member_id": member,
			"lines": []map[string]any{{"no": 1, "sku": "X", "quantity": 1, "unit_price": 1000}}})
	}
	deadline := time.Now().Add(20 * time.Second)
	code, m := sale("s2", "m1")
	for ; code == 404; code, m = sale("s2", "m1") {
		if time.Now().After(deadline) {
			t.Fatalf("new register r2 of store s1 never learned m1: %d %v\n%s", code, m, r2.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if bal, _ := m["balance"].(float64); code != 201 || bal != 52 {
		t.Fatalf("sale for m1 at the new register: %d %v", code, m)
	}
	for i := range 5 {
		if code, m := sale(fmt.Sprintf("sk%d", i), fmt.Sprintf("k%d", i)); code != 201 {
			t.Fatalf("sale for k%d at the new register: %d %v", i, code, m)
		}
	}
	waitStatus(t, r2, "drained", drained)
	// The store has every summary of those sales (r1 learns them only
	// from head office) before head office stops: a summary still unsent
	// at the stop is rightly sent after the restart.
	testkit.Eventually(t, 30*time.Second, "r2's sales in the store's summaries at r1", func() bool {
		if memberBalance(r1, "m1") != 52 {
			return false
		}
		for i := range 5 {
			if memberBalance(r1, fmt.Sprintf("k%d", i)) != 10 {
				return false
			}
		}
		return true
	})

	// Head office restarts: nothing is resent to stores that have it.
	sent := h.serviceStatus()
	h.term()
	before := h.logs()
	h.start()
	// A resend would go out in head office's first summary round, or the
	// round retrying it, before any catch-up request is answered (a round
	// resends what is unsent before it answers requests). So a catch-up
	// request at r1's position (nothing to send) from a probe is the
	// barrier: once head office counts a catch-up answered, any resend is
	// counted too.
	pos := waitStatus(t, r1, "at a position", func(s map[string]any) bool { p, _ := s["members_seq"].(float64); return p > 0 })["members_seq"].(float64)
	probe := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("e2e-probe").SetAutoReconnect(false))
	if tok := probe.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("probe connect: %v", tok.Error())
	}
	defer probe.Disconnect(100)
	req, err := protocol.EncodeCatchUp(protocol.CatchUp{Register: "probe", From: uint64(pos)})
	if err != nil {
		t.Fatal(err)
	}
	if tok := probe.Publish(protocol.CatchUpTopic("s1", "probe"), 1, false, req); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("probe catch-up request: %v", tok.Error())
	}
	// A register's catch-up request still on its way at the stop (asked
	// at its session's first ack) is answered after the restart, on that
	// register's own topic: asked for, not resent.
	if st := waitHQ("answered a catch-up request", func(st map[string]any) bool { return st["catch_ups"].(float64) >= 1 }); st["summaries_sent"].(float64) != st["catch_up_summaries"].(float64) {
		t.Fatalf("head office resent %v summaries after a restart (%v of them answering %v catch-up requests; before: %v)\nhead office before:\n%s\nafter:\n%s\nr1:\n%s\nr2:\n%s",
			st["summaries_sent"], st["catch_up_summaries"], st["catch_ups"], sent, before, h.logs(), r1.logs(), r2.logs())
	}

	// The first register of a new store: a card it does not know is
	// asked of head office; the display shows the chain-wide balance.
	r3 := syncRegisterAt(t, b, "s3", "r3")
	r3.start()
	waitStatus(t, r3, "online", func(s map[string]any) bool { return s["online"] == true })
	r3.scan(memberCard)
	r3.waitDisplay("m1's chain-wide balance at a new store", func(b []byte) bool {
		return strings.HasPrefix(last(lowerLines(b)), "52 pts")
	})
	waitHQ("answered the lookup", func(st map[string]any) bool { return st["lookups"].(float64) >= 1 })

	// Head office down: the card stays unknown, after the timeout.
	r4 := syncRegisterAt(t, b, "s4", "r4")
	r4.start()
	waitStatus(t, r4, "online", func(s map[string]any) bool { return s["online"] == true })
	h.term()
	t0 := time.Now()
	if code, out := r4.api("GET", "/v1/members/"+memberCard, nil); code != 404 || out["code"] != "unknown_member" {
		t.Fatalf("unknown card with head office down: %d %v", code, out)
	}
	if d := time.Since(t0); d < 3*time.Second {
		t.Errorf("answered in %v without waiting for head office (lookup_timeout 3s)", d)
	}
	for _, r := range []*register{r1, r2, r3, r4} {
		stopAndOpen(t, r)
	}
}
