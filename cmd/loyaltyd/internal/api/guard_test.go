package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/api"
)

// TestWebPageCannotDrive reproduces issue 10's attacks from a browser on
// the register: a page posting text/plain (no CORS preflight) with its
// own Origin, and a DNS-rebound page (Host: attacker.example) reading
// members. Each is refused and nothing is recorded; the same requests as
// the POS or loyaltyd send them pass.
func TestWebPageCannotDrive(t *testing.T) {
	e := setup(t)
	s := api.New(api.Options{Ledger: e.l, Token: token, MetricsToken: "metrics-token-0123456789"})
	h := s.Handler(nil)
	for _, tc := range []struct {
		name, method, path, host, ctype, origin, site, remote, auth, body string
		want                                                              int
		code                                                              string
	}{
		{"text/plain sale from a page", "POST", "/v1/sales", "127.0.0.1:8080", "text/plain", "http://evil.example", "cross-site", local, "", sale1, 403, "foreign_origin"},
		{"text/plain sale without Origin", "POST", "/v1/sales", "127.0.0.1:8080", "text/plain", "", "", local, "", sale1, 415, "unsupported_media_type"},
		{"form post", "POST", "/v1/sales", "127.0.0.1:8080", "application/x-www-form-urlencoded", "", "", local, "", sale1, 415, "unsupported_media_type"},
		{"JSON from a foreign Origin", "POST", "/v1/sales", "127.0.0.1:8080", "application/json", "http://evil.example", "", local, "", sale1, 403, "foreign_origin"},
		{"opaque origin", "POST", "/v1/sales", "127.0.0.1:8080", "application/json", "null", "", local, "", sale1, 403, "foreign_origin"},
		{"DNS rebinding read", "GET", "/v1/members/m1", "attacker.example:8080", "", "", "", local, "", "", 421, "unknown_host"},
		{"DNS rebinding write", "POST", "/v1/sales", "attacker.example", "application/json", "http://attacker.example", "", local, "", sale1, 421, "unknown_host"},
		{"metrics token reads metrics", "GET", "/metrics", "localhost:8080", "", "", "", "10.0.0.9:4000", "Bearer metrics-token-0123456789", "", 200, ""},
		{"metrics token reads nothing else", "GET", "/v1/members/m1", "localhost:8080", "", "", "", "10.0.0.9:4000", "Bearer metrics-token-0123456789", "", 401, "unauthorized"},
		{"metrics token writes nothing", "POST", "/v1/sales", "localhost:8080", "application/json", "", "", "10.0.0.9:4000", "Bearer metrics-token-0123456789", sale1, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.stats(t)
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Host, req.RemoteAddr = tc.host, tc.remote
			for k, v := range map[string]string{"Content-Type": tc.ctype, "Origin": tc.origin, "Sec-Fetch-Site": tc.site, "Authorization": tc.auth} {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.code) {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body.String(), tc.want, tc.code)
			}
			if after := e.stats(t); after.Sales != before.Sales {
				t.Fatalf("sales %d -> %d", before.Sales, after.Sales)
			}
		})
	}
	// What the POS and loyaltyctl send still works: JSON, our host, the
	// page's own origin.
	req := httptest.NewRequest("POST", "/v1/sales", strings.NewReader(sale1))
	req.Host, req.RemoteAddr = "127.0.0.1:8080", local
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Origin", "http://127.0.0.1:8080")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Fatalf("genuine sale: %d %s", rec.Code, rec.Body.String())
	}
}
