package e2e_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func enrol(t *testing.T, r *register) {
	t.Helper()
	code, out := r.api("POST", "/v1/members", map[string]any{"id": "m1", "name": "Dana Levi", "aliases": []string{memberCard, "+359888000001"}, "language": "bg"})
	if code != 201 {
		t.Fatalf("enrol: %d %v", code, out)
	}
}

func TestCheckoutWithScannerAndDisplay(t *testing.T) {
	r := newRegister(t)
	r.start()
	enrol(t, r)

	r.scan("4006381333931")
	r.waitDisplay("the pen", func(b []byte) bool { return hasLine(upperLines(b), "Stabilo pen") })
	r.scan("9780201379624")
	r.waitDisplay("the total", func(b []byte) bool { return hasLine(lowerLines(b), "Total 52.49") })
	r.scan(memberCard)
	r.waitDisplay("the member", func(b []byte) bool { return hasLine(upperLines(b), "Dana Levi") })
	r.scan("*TOTAL*")
	// 52 points (floor(2.50) + floor(49.99)) on a fresh member
	r.waitDisplay("the new balance", func(b []byte) bool { return hasLine(lowerLines(b), "Balance 51") })
	if !hasLine(upperLines(r.disp.Bytes()), "+51 pts") {
		t.Errorf("earned line missing: %q", upperLines(r.disp.Bytes()))
	}
	code, out := r.api("GET", "/v1/members?alias="+memberCard, nil)
	if code != 200 || out["balance"].(float64) != 51 {
		t.Fatalf("member after sale: %d %v", code, out)
	}
	code, out = r.api("GET", "/v1/checkout", nil)
	if code != 200 || out["state"] != "receipt" || out["earned"].(float64) != 51 {
		t.Fatalf("checkout view: %d %v", code, out)
	}
	saleID := out["sale_id"].(string)
	// A double-pressed TOTAL records nothing more.
	r.scan("*TOTAL*")
	// The second TOTAL re-shows the receipt: wait for that, then check
	// that nothing more was recorded.
	r.waitDisplay("the receipt again", func(b []byte) bool { return count(lowerLines(b), "Balance 51") == 2 })
	code, st := r.api("GET", "/v1/status", nil)
	if code != 200 || st["ledger"].(map[string]any)["sales"].(float64) != 1 {
		t.Fatalf("status after double total: %v", st)
	}
	if code, _ := r.api("GET", "/v1/sales/"+saleID, nil); code != 200 {
		t.Fatalf("sale %s not found", saleID)
	}
	// A payment card number scanned by mistake (Luhn-valid, 16 digits) is
	// refused with a fixed message: it never reaches the display.
	r.scan("4111111111111111")
	r.waitDisplay("the refusal", func(b []byte) bool { return hasLine(upperLines(b), "Not a member card") })
	if strings.Contains(string(r.disp.Bytes()), "4111") || strings.Contains(r.logs(), "4111111111111111") {
		t.Fatal("a payment card number reached the display or the log")
	}
	// An unknown member card and a scan in the wrong state change nothing.
	r.scan("M12345682")
	r.scan("*CANCEL*")
	r.waitDisplay("cancel accepted", func(b []byte) bool { return bytes0C(b) })
	if code, st = r.api("GET", "/v1/status", nil); code != 200 || st["ledger"].(map[string]any)["sales"].(float64) != 1 {
		t.Fatalf("sales changed: %v", st)
	}
	// Idle member card: "check my points".
	r.scan(memberCard)
	r.waitDisplay("my points", func(b []byte) bool { return strings.HasPrefix(last(lowerLines(b)), "51 pts") })

	// loyaltyctl against the running daemon.
	out2, err := ctl(t, "-addr", "http://"+r.addr, "status")
	if err != nil || !strings.Contains(out2, "scanner1 healthy") {
		t.Fatalf("loyaltyctl status: %v\n%s", err, out2)
	}
	out2, err = ctl(t, "-ledger", filepath.Join(r.dir, "ledger.db"), "ledger", "verify")
	if err == nil || !strings.Contains(out2, "held by a running loyaltyd") {
		t.Fatalf("verify on a held file should refuse and explain: %v\n%s", err, out2)
	}
	bk := filepath.Join(t.TempDir(), "backup.db")
	if out2, err = ctl(t, "-addr", "http://"+r.addr, "-quiet", "backup", "-o", bk); err != nil {
		t.Fatalf("backup: %v\n%s", err, out2)
	}
	if out2, err = ctl(t, "-ledger", bk, "ledger", "verify"); err != nil || !strings.Contains(out2, "1 sales") {
		t.Fatalf("verify backup: %v\n%s", err, out2)
	}
	if took, err := r.term(); err != nil || took > 9*time.Second {
		t.Fatalf("SIGTERM: %v after %v\n%s", err, took, r.logs())
	}
	if out2, err = ctl(t, "-ledger", filepath.Join(r.dir, "ledger.db"), "-json", "ledger", "verify"); err != nil || !strings.Contains(out2, `"ok": true`) {
		t.Fatalf("verify after stop: %v\n%s", err, out2)
	}
	if out2, err = ctl(t, "-addr", "http://"+r.addr, "-ledger", filepath.Join(r.dir, "ledger.db"), "export", "sales", "-format", "csv"); err != nil || !strings.Contains(out2, saleID+",e2e-r1,") {
		t.Fatalf("direct export: %v\n%s", err, out2)
	}
}

func count(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}

func bytes0C(b []byte) bool { return strings.HasSuffix(string(b), "\x0c") }

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// TestKillMidSale kills loyaltyd with SIGKILL (a crash, a power cut) or
// stops it with SIGTERM (systemctl stop) while sales are being posted and a
// basket is open, restarts it, and checks that every acknowledged sale is
// there exactly once and a retry of each changes nothing.
func TestKillMidSale(t *testing.T) {
	for _, sig := range []string{"SIGKILL", "SIGTERM"} {
		t.Run(sig, func(t *testing.T) { stopMidSale(t, sig) })
	}
}

func stopMidSale(t *testing.T, sig string) {
	r := newRegister(t)
	r.start()
	enrol(t, r)

	var mu sync.Mutex
	acked := map[string]float64{} // sale id -> balance reported
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("pos-%d-%d", w, i)
				body := fmt.Sprintf(`{"id":%q,"member":%q,"lines":[{"no":1,"sku":"4006381333931","quantity":1,"unit_price":250}]}`, id, memberCard)
				resp, err := http.Post("http://"+r.addr+"/v1/sales", "application/json", strings.NewReader(body))
				if err != nil {
					return // the daemon is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 201 {
					mu.Lock()
					acked[id] = 1
					mu.Unlock()
				}
			}
		}()
	}
	// An open basket at the moment of the kill.
	r.scan("4006381333931")
	r.scan(memberCard)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 30 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if sig == "SIGKILL" {
		r.kill()
	} else if took, err := r.term(); err != nil || took > 9*time.Second {
		t.Fatalf("SIGTERM under load: %v after %v\n%s", err, took, r.logs())
	}
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no sale was acknowledged before the kill")
	}

	r.start()
	code, st := r.api("GET", "/v1/status", nil)
	if code != 200 {
		t.Fatalf("status after restart: %d", code)
	}
	sales := int(st["ledger"].(map[string]any)["sales"].(float64))
	if sales < len(acked) {
		t.Fatalf("acknowledged %d sales, ledger has %d", len(acked), sales)
	}
	// Every acked sale is there; a retry of each is a replay.
	for id := range acked {
		body := map[string]any{"id": id, "member": memberCard, "lines": []map[string]any{{"no": 1, "sku": "4006381333931", "quantity": 1, "unit_price": 250}}}
		code, out := r.api("POST", "/v1/sales", body)
		if code != 200 || out["replayed"] != true {
			t.Fatalf("retry of acknowledged %s: %d %v", id, code, out)
		}
	}
	if code, st = r.api("GET", "/v1/status", nil); code != 200 || int(st["ledger"].(map[string]any)["sales"].(float64)) != sales {
		t.Fatalf("retries added sales: %d -> %v", sales, st["ledger"])
	}
	// 2 points per sale (floor(2.50)) and nothing else happened to m1.
	code, m := r.api("GET", "/v1/members?alias="+memberCard, nil)
	if code != 200 || int(m["balance"].(float64)) != 2*sales {
		t.Fatalf("balance %v, want %d for %d sales", m["balance"], 2*sales, sales)
	}
	// The open basket was not acknowledged (no sale recorded for it) and
	// is back after the restart, with the cashier told.
	if code, v := r.api("GET", "/v1/checkout", nil); code != 200 || v["state"] != "member" || v["message"] != "Basket restored" || len(v["lines"].([]any)) != 1 {
		t.Fatalf("checkout after restart: %v", v)
	}
	if _, err := r.term(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if out, err := ctl(t, "-ledger", filepath.Join(r.dir, "ledger.db"), "ledger", "verify"); err != nil {
		t.Fatalf("verify after kill and restart: %v\n%s", err, out)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	r := newRegister(t)
	r.start()
	cmd := exec.Command(bins.loyaltyd, "-config", r.cfgPath)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another loyaltyd") {
		t.Fatalf("second daemon: %v\n%s", err, out)
	}
}

func TestBadConfigExplains(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("register:\n  id: r1\n  bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bins.loyaltyd, "-config", p).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bogus") || !strings.Contains(string(out), "bad.yaml:3") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
}
