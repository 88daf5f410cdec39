package daemon_test

import (
	"bytes"
	"crypto/tls"
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

	"github.com/loyalty-terminal/loyalty/cmd/internal/apiclient"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/daemon"
	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// TestAPIOverTLS: with api.tls_cert_file and tls_key_file the TCP
// listener speaks HTTPS only, with a certificate the test makes: a client
// trusting its CA gets answers (the API client loyaltyctl uses, with
// CAFile), a plain-HTTP request and a client that does not trust the
// certificate get none.
func TestAPIOverTLS(t *testing.T) {
	certs := mosquittotest.NewCerts(t) // a throw-away CA and a certificate for 127.0.0.1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	yml := fmt.Sprintf(`register: {id: t-r1, store_id: t-store}
ledger: {path: %s}
api: {listen: "%s", tls_cert_file: %s, tls_key_file: %s}
`, filepath.Join(t.TempDir(), "ledger.db"), addr, certs.ServerCert, certs.ServerKey)
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cfgFile := filepath.Join(t.TempDir(), "loyaltyd.yaml") // as loyaltyd -config gives it
	runDaemon(t, daemon.Options{Config: cfg, Out: out, ConfigPath: cfgFile})

	c := apiclient.New(apiclient.Options{Addr: "https://" + addr, CAFile: certs.CAFile, Timeout: 5 * time.Second})
	testkit.Eventually(t, 10*time.Second, "the API over HTTPS", func() bool {
		resp, err := c.Do("GET", "/v1/status", nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if resp, err := http.Get("http://" + addr + "/v1/status"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP answered 200: %s", b)
		}
	}
	// The start-up hints give the HTTPS address (they said http://, and
	// the loyaltyctl -addr they suggested got http_400), and the config
	// file loyaltyctl finds the certificate to trust in (its default
	// config may be another file).
	testkit.Eventually(t, 10*time.Second, "the start-up hints", func() bool { return strings.Contains(out.String(), "/v1/status") })
	if hints := out.String(); !strings.Contains(hints, "-config "+cfgFile+" -addr https://"+addr+" status") || !strings.Contains(hints, "API: https://"+addr+"/v1/status") || strings.Contains(hints, "http://") {
		t.Errorf("start-up hints of an HTTPS-only API:\n%s", hints)
	}
	untrusting := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	if resp, err := untrusting.Get("https://" + addr + "/v1/status"); err == nil {
		resp.Body.Close()
		t.Fatal("a client not trusting the certificate got an answer")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "not-pem")
	if err := os.WriteFile(bad, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := apiclient.New(apiclient.Options{Addr: "https://" + addr, CAFile: bad}).Do("GET", "/v1/status", nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without a certificate: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer the daemon writes and the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestHintsForASocketOnlyAPI: with api.listen off the start-up hints name
// the unix socket (their loyaltyctl went to 127.0.0.1:8080 and found no
// daemon).
func TestHintsForASocketOnlyAPI(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	yml := fmt.Sprintf(`register: {id: t-r1, store_id: t-store}
ledger: {path: %s}
api: {listen: "off", socket: %s}
devices:
  scanners: [{name: scanner1, simulate: true}]
`, filepath.Join(dir, "ledger.db"), sock)
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	runDaemon(t, daemon.Options{Config: cfg, Out: out})
	testkit.Eventually(t, 10*time.Second, "the start-up hints", func() bool { return strings.Contains(out.String(), "API: unix socket") })
	hints := out.String()
	if !strings.Contains(hints, "-socket "+sock+" scan 4006381333931") || !strings.Contains(hints, "-socket "+sock+" status   API: unix socket "+sock) || strings.Contains(hints, "http") {
		t.Errorf("start-up hints of a socket-only API:\n%s", hints)
	}
}
