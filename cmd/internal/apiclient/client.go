package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrDaemonDown means no daemon answered, so a caller may fall back to
// reading the ledger file directly.
var ErrDaemonDown = errors.New("loyaltyd is not running or not reachable")

// Error is an error answer from the API: its HTTP status and the body's
// code and message (docs/api.md, "Errors").
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%s)", e.Message, e.Code) }

// Options configure a Client.
type Options struct {
	// Addr is the daemon's base URL (http://127.0.0.1:8080); ignored when
	// Socket is set.
	Addr string
	// Socket is the path of the daemon's unix socket, if any.
	Socket string
	// Token is sent as a bearer token when not empty.
	Token string
	// Timeout bounds each request; 0 means 30 s.
	Timeout time.Duration
	// CAFile, for an https:// Addr, is a PEM file of the certificates to
	// trust (the daemon's api.tls_cert_file, or the CA that signed it);
	// empty: the system's roots.
	CAFile string
}

// Client talks to one daemon.
type Client struct {
	base  string
	token string
	http  *http.Client
	caErr error // CAFile could not be read: every request fails with it
}

// New returns a client for the daemon o names.
func New(o Options) *Client {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	c := &Client{base: strings.TrimRight(o.Addr, "/"), token: o.Token, http: &http.Client{Timeout: o.Timeout}}
	if o.CAFile != "" && o.Socket == "" {
		pool := x509.NewCertPool()
		if pem, err := os.ReadFile(o.CAFile); err == nil && pool.AppendCertsFromPEM(pem) {
			c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		} else {
			c.caErr = fmt.Errorf("api tls: %s holds no PEM certificate to trust (%v)", o.CAFile, err)
		}
	}
	if o.Socket != "" {
		socket := o.Socket
		c.base = "http://unix"
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}
	}
	return c
}

// Do sends a request with body (marshalled as JSON when not nil) and returns
// the response of a 2xx answer, whose body the caller closes. Any other
// status is an *Error; no answer at all is ErrDaemonDown.
func (c *Client) Do(method, path string, body any) (*http.Response, error) {
	if c.caErr != nil {
		return nil, c.caErr
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil || (method != http.MethodGet && method != http.MethodHead) {
		req.Header.Set("Content-Type", "application/json") // the API refuses writes without it
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		var oe *net.OpError
		if errors.As(err, &oe) || errors.As(err, &ne) {
			return nil, fmt.Errorf("%w: %v", ErrDaemonDown, err)
		}
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		ae := &Error{Status: resp.StatusCode}
		var eb struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&eb); err == nil {
			ae.Code, ae.Message = eb.Code, eb.Message
		}
		if ae.Code == "" {
			ae.Code, ae.Message = "http_"+strconv.Itoa(resp.StatusCode), "unexpected answer from loyaltyd"
		}
		return nil, ae
	}
	return resp, nil
}

// Raw does a request and returns the whole body of a 2xx answer.
func (c *Client) Raw(method, path string, body any) ([]byte, error) {
	resp, err := c.Do(method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
