package hq_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

type syncBuf struct {
	mu stdsync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestHeadOfficeNamesWhyItCannotConnect: a broker whose certificate is
// for another host name (here 127.0.0.1, reached as localhost). Head
// office logs the TLS reason and keeps it in Status.LastError, instead of
// only "connected=false".
func TestHeadOfficeNamesWhyItCannotConnect(t *testing.T) {
	certs := mosquittotest.NewCerts(t)
	b := mosquittotest.Start(t, &mosquittotest.Options{TLS: certs.TLSOptions()})
	st, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs syncBuf
	tc := certs.Client("loyalty-hq")
	svc, err := hq.New(st, hq.Options{Signer: hqKey, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Conn: hq.Conn{Broker: "ssl://localhost:" + strconv.Itoa(b.Port()), TLS: &tls.Config{RootCAs: tc.RootCAs, Certificates: tc.Certificates}, WaitTimeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, wait, "the reason in status", func() bool { return svc.Status().LastError != "" })
	why := svc.Status().LastError
	if !strings.Contains(why, "certificate") || !strings.Contains(why, "localhost") || svc.Status().Connected {
		t.Fatalf("last_error %q, want the certificate's host-name mismatch", why)
	}
	testkit.Eventually(t, wait, "the reason logged", func() bool { return strings.Contains(logs.String(), "cannot connect to the broker") })
	if l := logs.String(); !strings.Contains(l, "localhost") {
		t.Fatalf("log does not name the reason:\n%s", l)
	}
}
