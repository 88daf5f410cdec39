package hqserve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStatusNeedsTokenOffLoopback: head office's status page (member
// profiles, balances) answers other machines only with its token, and a
// config that opens it to the network without one is refused, as is a
// broker password sent in plain text to another machine.
func TestStatusNeedsTokenOffLoopback(t *testing.T) {
	const key = "signing_key_file: /etc/k\n"
	for _, tc := range []struct{ doc, want string }{
		{"broker: {url: 'tcp://127.0.0.1:1883'}\nstatus_addr: 0.0.0.0:8090\n", "status_token_file"},
		{"broker: {url: 'tcp://127.0.0.1:1883'}\nstatus_addr: 10.1.2.3:8090\n", "status_token_file"},
		{"broker: {url: 'tcp://hq.example:1883', username: hq, password_file: /etc/p}\n", "plain text"},
	} {
		if _, err := Parse("hq.yaml", []byte(tc.doc+key)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming %s", tc.doc, err, tc.want)
		}
	}
	for _, ok := range []string{
		"broker: {url: 'tcp://127.0.0.1:1883'}\nstatus_addr: 0.0.0.0:8090\nstatus_token_file: /etc/t\n",
		"broker: {url: 'tcp://hq.example:1883', username: hq, password_file: /etc/p, insecure: true}\n",
		"broker: {url: 'tcp://127.0.0.1:1883', username: hq, password_file: /etc/p}\n",
	} {
		if _, err := Parse("hq.yaml", []byte(ok+key)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}

	h := statusGuard("status-token-0123456789", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("members")) }))
	open := statusGuard("", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("members")) }))
	for _, tc := range []struct {
		name   string
		h      http.Handler
		remote string
		auth   string
		want   int
	}{
		{"loopback", h, "127.0.0.1:5000", "", 200},
		{"remote without token", h, "10.0.0.7:5000", "", 401},
		{"remote with a wrong token", h, "10.0.0.7:5000", "Bearer nope", 401},
		{"remote with the token", h, "10.0.0.7:5000", "Bearer status-token-0123456789", 200},
		{"remote, no token configured", open, "10.0.0.7:5000", "Bearer ", 401},
	} {
		req := httptest.NewRequest("GET", "/members/m1", nil)
		req.RemoteAddr = tc.remote
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, req)
		if rec.Code != tc.want || (tc.want != 200 && strings.Contains(rec.Body.String(), "members")) {
			t.Errorf("%s: %d %q", tc.name, rec.Code, rec.Body.String())
		}
	}
}
