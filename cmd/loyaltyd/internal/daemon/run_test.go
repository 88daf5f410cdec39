package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/daemon"
	"github.com/loyalty-terminal/loyalty/device/manager"
	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
)

// wait bounds every testkit.Eventually in this package.
const wait = 10 * time.Second

// recPin is a fake GPIO output that remembers how often it went high.
type recPin struct {
	*gpiotest.Pin
	mu    sync.Mutex
	highs int
}

func (p *recPin) Out(l gpio.Level) error {
	if l == gpio.High {
		p.mu.Lock()
		p.highs++
		p.mu.Unlock()
	}
	return p.Pin.Out(l)
}

func (p *recPin) Highs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.highs
}

func register(t *testing.T, p gpio.PinIO) {
	t.Helper()
	if err := gpioreg.Register(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gpioreg.Unregister(p.Name()) })
}

func post(t *testing.T, base, path, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s: %d %v", path, resp.StatusCode, m)
	}
	return m
}

func view(base string) map[string]any {
	resp, err := http.Get(base + "/v1/checkout")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m
}

// TestRunWithGPIOButtonAndSignals runs the daemon in-process with a fake
// GPIO "complete" button and fake buzzer and LED: pressing the button
// records the sale, and the ok pattern plays on the outputs.
func TestRunWithGPIOButtonAndSignals(t *testing.T) {
	btn := &gpiotest.Pin{N: "FAKE_TOTAL_BTN", L: gpio.High, EdgesChan: make(chan gpio.Level, 16)}
	buz := &recPin{Pin: &gpiotest.Pin{N: "FAKE_BUZZER"}}
	green := &recPin{Pin: &gpiotest.Pin{N: "FAKE_OK_LED"}}
	register(t, btn)
	register(t, buz)
	register(t, green)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	yml := fmt.Sprintf(`register: {id: t-r1, store_id: t-store}
ledger: {path: %s}
rules: {version: 1, unit: 100, earn: {points_per_unit: 1}}
catalogue: {version: 1, items: [{sku: "4006381333931", name: Pen, price: 250}]}
devices:
  buttons: [{name: total, pin: FAKE_TOTAL_BTN, action: complete}]
  outputs: {buzzer: FAKE_BUZZER, ok_led: FAKE_OK_LED}
api: {listen: "%s"}
`, filepath.Join(t.TempDir(), "ledger.db"), addr)
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, daemon.Options{Config: cfg, Out: io.Discard}) }()
	base := "http://" + addr
	testkit.Eventually(t, wait, "the API", func() bool { return view(base) != nil })

	post(t, base, "/v1/members", `{"id":"m1","name":"Dana","aliases":["M12345674"]}`)
	post(t, base, "/v1/checkout/item", `{"sku":"4006381333931","quantity":4}`)
	post(t, base, "/v1/checkout/member", `{"alias":"M12345674"}`)
	btn.Lock()
	btn.L = gpio.Low // pressed (to ground, pull-up)
	btn.Unlock()
	btn.EdgesChan <- gpio.Low
	testkit.Eventually(t, wait, "the button to complete the sale", func() bool { v := view(base); return v != nil && v["state"] == "receipt" })
	btn.Lock()
	btn.L = gpio.High
	btn.Unlock()
	btn.EdgesChan <- gpio.High
	if v := view(base); v["balance"].(float64) != 10 {
		t.Fatalf("view after button: %v", v)
	}
	testkit.Eventually(t, wait, "the ok signal on buzzer and LED", func() bool { return buz.Highs() > 0 && green.Highs() > 0 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// gs1 appends the GS1 check digit to 12 digits.
func gs1(d string) string {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if (len(d)-1-i)%2 == 0 {
			n *= 3
		}
		sum += n
	}
	return d + string(rune('0'+(10-sum%10)%10))
}

// TestWeightLabelPriced runs the daemon in-process with a simulated
// scanner: a weight-embedded in-store label (prefix 21, article 12345,
// 1.234 kg) is priced from the article's price per kilogram (12.99/kg ->
// 16.03, rounded half up).
func TestWeightLabelPriced(t *testing.T) {
	base := startDaemon(t, `register: {id: t-r1, store_id: t-store}
ledger: {path: %s}
catalogue: {version: 1, items: [{sku: "2112345", name: Cheese per kg, price: 1299}]}
instore_prefixes: [{prefix: "21", kind: weight, article_digits: 5, value_digits: 5}]
devices:
  scanners: [{name: s1, simulate: true}]
  wiegand: [{name: door, simulate: true}]
api: {listen: "%s"}
`)
	label := gs1("211234501234")
	if res := post(t, base, "/v1/scan", `{"code":"`+label+`"}`); res["status"] != "accepted" || res["kind"] != "item" {
		t.Fatalf("scan of the weight label: %v, want accepted item", res)
	}
	// a scan the till refuses says so, with the till's reason, and is an
	// error answer (loyaltyctl exits 1)
	resp, err := http.Post(base+"/v1/scan", "application/json", strings.NewReader(`{"code":"4006381333931"}`))
	if err != nil {
		t.Fatal(err)
	}
	var refused map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&refused)
	resp.Body.Close()
	if resp.StatusCode != 422 || refused["code"] != "scan_refused" || refused["reason"] != "unknown_item" || strings.Contains(fmt.Sprint(refused), "4006381333931") {
		t.Fatalf("scan of an item not in the catalogue: %d %v", resp.StatusCode, refused)
	}
	testkit.Eventually(t, wait, "the weighed line", func() bool { v := view(base); return v != nil && v["total"] != nil && v["total"].(float64) > 0 })
	v := view(base)
	lines, _ := v["lines"].([]any)
	if v["total"].(float64) != 1603 || len(lines) != 1 {
		t.Fatalf("weighed label: %v", v)
	}
	if l := lines[0].(map[string]any); l["sku"] != "2112345" {
		t.Errorf("line sku %v, want the article 2112345", l["sku"])
	}
	// The simulated Wiegand reader next to the simulated scanner: a card
	// presented through the API reaches the checkout as the member.
	post(t, base, "/v1/members", `{"id":"m1","name":"Dana","aliases":["123-45678"]}`)
	post(t, base, "/v1/scan", `{"device":"door","code":"123-45678"}`)
	testkit.Eventually(t, wait, "the member from the Wiegand card", func() bool { v := view(base); return v != nil && v["member"] == "Dana" })
}

// TestMemberDataCheckedOnTheWayIn runs the daemon in-process: a phone typed
// in the store's local form finds a member enrolled with the international
// form (and consent can be given by phone), and a card number the
// configured check-digit rule refuses is not enrolled, since no scanner
// would ever accept it.
func TestMemberDataCheckedOnTheWayIn(t *testing.T) {
	base := startDaemon(t, `register: {id: t-r1, store_id: t-store, phone_region: IL}
ledger: {path: %s}
member_cards: {patterns: [{name: club, prefix: "M", length: 9, check: luhn}]}
api: {listen: "%s"}
`)
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := call("POST", "/v1/members", `{"id":"m1","name":"Dana","aliases":["M00000018","+972 50-123-4567"],"contact":{"phone":"+972 50-123-4567"}}`); code != 201 {
		t.Fatalf("enrol: %d %v", code, m)
	}
	for _, q := range []string{"0501234567", "050-123-4567", "%2B972501234567"} {
		if code, m := call("GET", "/v1/members?alias="+q, ""); code != 200 || m["member"].(map[string]any)["id"] != "m1" {
			t.Errorf("lookup %s: %d %v", q, code, m)
		}
	}
	if code, m := call("PUT", "/v1/members/050-1234567/consent", `{"given":true,"channel":"in-store"}`); code != 200 || m["member"].(map[string]any)["consent"].(map[string]any)["given"] != true {
		t.Errorf("consent by phone: %d %v", code, m)
	}
	code, m := call("POST", "/v1/members", `{"id":"m2","name":"Eli","aliases":["M00000001"]}`)
	if code != 400 || m["code"] != "invalid_card" || !strings.Contains(m["message"].(string), "check digit") {
		t.Errorf("enrol a card with a wrong check digit: %d %v", code, m)
	}
	if code, _ := call("GET", "/v1/members/m2", ""); code != 404 {
		t.Errorf("the refused member exists: %d", code)
	}
	// sync is disabled here: it reads as disabled, never online
	if _, st := call("GET", "/v1/status", ""); st["sync"].(map[string]any)["online"] != false || st["sync"].(map[string]any)["enabled"] != false {
		t.Errorf("status sync with sync disabled: %v", st["sync"])
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "loyalty_sync_online 0") || !strings.Contains(string(body), "loyalty_sync_enabled 0") {
		t.Errorf("metrics with sync disabled:\n%s", body)
	}
}

// runDaemon runs the daemon in-process with o until the test ends.
func runDaemon(t *testing.T, o daemon.Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// startDaemon runs the daemon in-process on the config yml, whose two %s
// are the ledger path and the API address, until the test ends; it returns
// the API's base URL once it answers.
func startDaemon(t *testing.T, yml string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(yml, filepath.Join(t.TempDir(), "ledger.db"), addr)))
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, daemon.Options{Config: cfg, Out: io.Discard})
	base := "http://" + addr
	testkit.Eventually(t, wait, "the API", func() bool { return view(base) != nil })
	return base
}

// TestSecondRegisterBesideTheFirstRefused: two loyaltyd whose ledgers sit in
// one folder share its dev/ folder of simulated devices. The second used to
// replace the first's scanner link (or fail on a half-made one, as make
// demo did in CI); now it stops at start with ErrSimDirInUse, and the first
// keeps taking scans through its link.
func TestSecondRegisterBesideTheFirstRefused(t *testing.T) {
	dir := t.TempDir()
	yml := `register: {id: %s, store_id: t-store}
ledger: {path: %s}
catalogue: {version: 1, items: [{sku: "4006381333931", name: Pen, price: 250}]}
devices:
  scanners: [{name: scanner1, simulate: true}]
api: {listen: "%s"}
`
	cfg := func(id, addr string) *config.Config {
		c, err := config.Parse("test.yaml", []byte(fmt.Sprintf(yml, id, filepath.Join(dir, id+".db"), addr)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	addr := testkit.FreeAddr(t)
	runDaemon(t, daemon.Options{Config: cfg("t-r1", addr), Out: io.Discard})
	base := "http://" + addr
	testkit.Eventually(t, wait, "the first register's API", func() bool { return view(base) != nil })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := daemon.Run(ctx, daemon.Options{Config: cfg("t-r2", testkit.FreeAddr(t)), Out: io.Discard})
	if !errors.Is(err, manager.ErrSimDirInUse) {
		t.Fatalf("second register beside the first: %v, want ErrSimDirInUse", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dev", "scanner1-in"), []byte("4006381333931\n"), 0); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "the first register's scan", func() bool {
		v := view(base)
		return v != nil && v["total"] != nil && v["total"].(float64) == 250
	})
}

// TestLedgerOfAnotherRegisterRefused: a ledger copied from another register
// (or a register.id changed under it) stops loyaltyd at start with
// ledger.ErrOtherRegister naming both ids, instead of sending the other
// register's events under this id, which head office refuses for good.
func TestLedgerOfAnotherRegisterRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	yml := `register: {id: %s, store_id: t-store}
ledger: {path: %s}
api: {listen: "%s"}
`
	start := func(id string) (addr string, stop func() error, done chan error) {
		addr = testkit.FreeAddr(t)
		cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(yml, id, path, addr)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		done = make(chan error, 1)
		go func() { done <- daemon.Run(ctx, daemon.Options{Config: cfg, Out: io.Discard}) }()
		return addr, func() error { cancel(); return <-done }, done
	}
	addr, stop, _ := start("t-r1")
	testkit.Eventually(t, wait, "t-r1's API", func() bool { return view("http://"+addr) != nil })
	if err := stop(); err != nil {
		t.Fatalf("t-r1: %v", err)
	}
	var err error
	_, _, done := start("t-r2")
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("loyaltyd started on t-r1's ledger as t-r2")
	}
	if !errors.Is(err, ledger.ErrOtherRegister) || !strings.Contains(err.Error(), `"t-r1"`) || !strings.Contains(err.Error(), `"t-r2"`) {
		t.Fatalf("ledger of t-r1 under t-r2: %v, want ErrOtherRegister naming both", err)
	}
}
