package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWebPageCannotDriveTheDaemon repeats issue 10's attacks on the real
// daemon: a page's text/plain POST /v1/sales with its own Origin (which a
// browser sends without a preflight) and a DNS-rebound read with
// Host: attacker.example are refused and nothing is recorded; a SIGHUP is
// logged and ignored, never a silent death.
func TestWebPageCannotDriveTheDaemon(t *testing.T) {
	r := newRegister(t)
	r.start()
	enrol(t, r)
	send := func(method, path, host, ctype, origin, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+r.addr+path, strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sale := `{"id":"pos-web","member":"` + memberCard + `","lines":[{"no":1,"sku":"4006381333931","quantity":1,"unit_price":250}]}`
	for _, tc := range []struct {
		name, method, path, host, ctype, origin string
		want                                    int
	}{
		{"page posts text/plain with its Origin", "POST", "/v1/sales", "", "text/plain", "http://attacker.example", 403},
		{"text/plain without Origin", "POST", "/v1/sales", "", "text/plain", "", 415},
		{"JSON from a foreign Origin", "POST", "/v1/sales", "", "application/json", "http://attacker.example", 403},
		{"rebound page reads a member", "GET", "/v1/members/m1", "attacker.example:8080", "", "", 421},
		{"rebound page exports members", "GET", "/v1/export/members?format=json", "attacker.example", "", "", 421},
	} {
		code, body := send(tc.method, tc.path, tc.host, tc.ctype, tc.origin, sale)
		if code != tc.want || strings.Contains(body, "Dana") {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	if code, out := r.api("GET", "/v1/sales/pos-web", nil); code != 404 {
		t.Fatalf("a refused request recorded a sale: %d %v", code, out)
	}

	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.logs(), "SIGHUP ignored") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for SIGHUP:\n%s", r.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := send("POST", "/v1/sales", "", "application/json", "", sale); code != 201 {
		t.Fatalf("after SIGHUP the daemon does not take a genuine sale: %d %s", code, body)
	}
}
