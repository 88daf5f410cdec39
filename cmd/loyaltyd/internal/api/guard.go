package api

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// What keeps a web page from driving the API (docs/api.md, "Who may
// call"): a page in the kiosk browser, or any page a browser on the
// register opens, can send requests to 127.0.0.1 but cannot set the Host
// to one of ours after a DNS rebinding, cannot send a foreign Origin
// unnoticed, and cannot send application/json without a CORS preflight
// (which this API never answers).

// DefaultHosts are the Host names the API answers to when Options.Hosts
// is empty.
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// refusal is a request the guard turns away.
type refusal struct {
	status    int
	code, msg string
}

// guard checks Host, Origin and, for writes, Content-Type. Requests over
// the unix socket skip the Host and Origin checks (no browser reaches it).
func (s *Server) guard(r *http.Request) *refusal {
	_, unix := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr)
	if !unix {
		if !s.hostAllowed(r.Host) {
			return &refusal{http.StatusMisdirectedRequest, "unknown_host",
				"This register does not answer to that host name; call it by one of the names in api.hosts."}
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			return &refusal{http.StatusForbidden, "foreign_origin",
				"Requests from another web page are refused; nothing was changed."}
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			return &refusal{http.StatusForbidden, "foreign_origin",
				"Requests from another web page are refused; nothing was changed."}
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &refusal{http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Send the request with Content-Type: application/json; nothing was changed."}
	}
	return nil
}

// hostAllowed reports whether the Host header (with or without port) is
// one of the configured names.
func (s *Server) hostAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	for _, ok := range s.hosts {
		if h == ok {
			return true
		}
	}
	return false
}

// sameOrigin reports whether origin is http(s)://<host> of this request.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false // includes "null" (sandboxed pages, file://)
	}
	return strings.EqualFold(u.Host, host)
}

// metricsToken reports whether r is a GET /metrics with the read-only
// metrics token.
func (s *Server) metricsToken(r *http.Request) bool {
	if s.o.MetricsToken == "" || r.URL.Path != "/metrics" || r.Method != http.MethodGet {
		return false
	}
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(h), []byte(s.o.MetricsToken)) == 1
}
