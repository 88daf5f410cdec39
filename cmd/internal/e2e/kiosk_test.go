package e2e_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
)

const chromium = "/usr/bin/chromium"

// kioskClients reads the daemon's gauge of connected kiosk pages.
func kioskClients(r *register) string {
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "loyalty_kiosk_clients "); ok {
			return v
		}
	}
	return ""
}

// TestKioskLiveInChromium opens the real daemon's kiosk page in headless
// Chromium, then completes a sale with the pty scanner: the DOM Chromium
// dumps shows the new balance, which only the live SSE update can bring.
func TestKioskLiveInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		testkit.Missing(t, "chromium", chromium+" not found; make testdeps installs it")
	}
	r := newRegister(t)
	r.start()
	enrol(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=5000", "--dump-dom", "http://"+r.addr+"/?until=receipt")
	cmd.WaitDelay = time.Second
	done := make(chan string, 1)
	go func() {
		out, err := cmd.Output()
		if err != nil {
			t.Logf("chromium: %v", err)
		}
		done <- string(out)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for kioskClients(r) != "1" {
		if time.Now().After(deadline) {
			t.Fatal("kiosk page never connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.scan("9780201379624")
	r.scan(memberCard)
	r.scan("*TOTAL*")
	dom := <-done
	for _, want := range []string{`data-state="receipt"`, `data-balance="49"`, `lang="bg"`, "+49 точки от тази покупка", "Благодарим, Dana Levi!"} {
		if !strings.Contains(dom, want) {
			t.Errorf("kiosk DOM lacks %q\n%s", want, dom)
		}
	}
}

// TestOfflineShownWhenBrokerUnreachable runs with sync to a broker that is
// not there: sales still work, and status, the checkout view and the kiosk
// say offline.
func TestOfflineShownWhenBrokerUnreachable(t *testing.T) {
	r := newRegister(t)
	r.extraCfg = syncCfg("tcp://127.0.0.1:1") // nothing listens on port 1 (a port from testkit.FreeAddr could be a broker by the time it is dialled)
	r.start()
	enrol(t, r)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, v := r.api("GET", "/v1/checkout", nil)
		if v["offline"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkout never showed offline: %v\n%s", v, r.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.scan("4006381333931")
	r.scan(memberCard)
	r.scan("*TOTAL*")
	r.waitDisplay("the new balance", func(b []byte) bool { return hasLine(lowerLines(b), "Balance 2") })
	_, st := r.api("GET", "/v1/status", nil)
	sy := st["sync"].(map[string]any)
	if sy["online"] != false || sy["enabled"] != true || !strings.HasPrefix(sy["summary"].(string), "offline, ") || sy["pending"].(float64) < 1 {
		t.Fatalf("sync status: %v", sy)
	}
}
