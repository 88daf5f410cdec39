package hqserve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFleetPageTokenForBrowsers: from another machine the fleet page needs
// the token; a browser gets it once through /login?token=, which sets an
// HttpOnly, SameSite=Strict cookie and sends it to the page. A wrong token
// sets nothing.
func TestFleetPageTokenForBrowsers(t *testing.T) {
	const token = "status-token-0123456789"
	h := statusGuard(token, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("fleet")) }))
	do := func(path string, cookie *http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "10.0.0.7:5000"
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("/", nil); rec.Code != 401 || strings.Contains(rec.Body.String(), "fleet") || !strings.Contains(rec.Body.String(), "/login?token=") {
		t.Fatalf("page without token: %d %q", rec.Code, rec.Body.String())
	}
	if rec := do("/login?token=wrong", nil); rec.Code != 401 || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("login with a wrong token: %d, cookies %v", rec.Code, rec.Result().Cookies())
	}
	if rec := do("/", &http.Cookie{Name: tokenCookie, Value: "wrong"}); rec.Code != 401 {
		t.Fatalf("page with a wrong cookie: %d", rec.Code)
	}
	rec := do("/login?token="+token, nil)
	cs := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" || len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d %v %+v", rec.Code, rec.Header(), cs)
	}
	if rec := do("/", cs[0]); rec.Code != 200 || rec.Body.String() != "fleet" {
		t.Fatalf("page with the cookie: %d %q", rec.Code, rec.Body.String())
	}
}
