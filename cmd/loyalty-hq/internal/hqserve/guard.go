package hqserve

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// loopbackAddr reports whether a host:port listens on this machine only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackURL reports whether a broker URL names this machine.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	return loopbackAddr(net.JoinHostPort(u.Hostname(), "1"))
}

// statusToken reads status_token_file ("" when not set).
func (c Config) statusToken() (string, error) {
	if c.StatusTokenFile == "" {
		return "", nil
	}
	fi, err := os.Stat(c.StatusTokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: status_token_file: %v", ErrConfig, err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("%w: status_token_file %s may be read by anyone; chmod 600 it", ErrConfig, c.StatusTokenFile)
	}
	b, err := os.ReadFile(c.StatusTokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: status_token_file: %v", ErrConfig, err)
	}
	tok := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if len(tok) < 16 {
		return "", fmt.Errorf("%w: status_token_file: the token is shorter than 16 characters", ErrConfig)
	}
	return tok, nil
}

// tokenCookie carries the status token for a browser (GET /login?token=).
const tokenCookie = "loyalty_hq_token"

// statusGuard lets callers on this machine in, and others only with
// "Authorization: Bearer <token>" or, for a browser, the cookie that
// GET /login?token=<token> sets (never without a token).
func statusGuard(token string, h http.Handler) http.Handler {
	valid := func(got string) bool {
		return token != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" && r.Method == http.MethodGet {
			if !valid(r.URL.Query().Get("token")) {
				http.Error(w, "wrong or missing token (status_token_file)", http.StatusUnauthorized)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 12 * 3600})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if !fromLoopback(r) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				if c, err := r.Cookie(tokenCookie); err == nil {
					got = c.Value
				}
			}
			if !valid(got) {
				http.Error(w, "head office's status page needs its token (status_token_file) from other machines: "+
					"send Authorization: Bearer <token>, or open /login?token=<token> once in a browser", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
