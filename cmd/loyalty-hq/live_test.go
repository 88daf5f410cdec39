package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqserve"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

var (
	pgSrv *pgtest.Server
	pgErr error
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, pgtest.Options{}, func(s *pgtest.Server, err error) { pgSrv, pgErr = s, err }))
}

func salesEvents() []hqstore.Event {
	var evs []hqstore.Event
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 6; i++ {
		sale := ledger.Sale{ID: fmt.Sprintf("s%d", i), Register: "r1", MemberID: fmt.Sprintf("m%d", i%2), Total: 1000,
			WallTime: t0.AddDate(0, 0, 10*i), ClockTrusted: true}
		data, _ := json.Marshal(sale)
		evs = append(evs, hqstore.Event{Register: "r1", Store: "s1", OutboxRecord: ledger.OutboxRecord{
			Seq: uint64(i), ID: fmt.Sprintf("r1-%d", i), Type: ledger.OutSale, Data: data}})
	}
	return evs
}

func writeKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hq.key")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveOn runs serve with the config file at cfgPath, whose status_addr
// is anyStatusAddr: serve binds a port the kernel picks, and serveOn
// writes that address into the file for the commands the test runs
// against serve (a port chosen first and bound later could be taken by
// another process in between). stop ends serve and returns its error;
// it is also called at the end of the test.
func serveOn(t *testing.T, cfgPath string) (addr string, stop func() error) {
	t.Helper()
	cfg, err := hqserve.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- hqserve.Serve(ctx, cfg, slog.New(slog.DiscardHandler), func(a string) { ready <- a }) }()
	var once stdsync.Once
	var serveErr error
	stop = func() error {
		once.Do(func() { cancel(); serveErr = <-done })
		return serveErr
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("status_addr: "+anyStatusAddr+"\n")) {
		t.Fatalf("%s: status_addr is not %s", cfgPath, anyStatusAddr)
	}
	b = bytes.Replace(b, []byte("status_addr: "+anyStatusAddr+"\n"), []byte("status_addr: "+addr+"\n"), 1)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return addr, stop
}

// anyStatusAddr is the status_addr of a config for serveOn.
const anyStatusAddr = "127.0.0.1:0"

// A shop's staff run report while serve holds the bbolt file: report
// reads a snapshot of the live store from serve.
func TestReportWhileServeRuns(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "hq.db")
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(salesEvents()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfgPath := filepath.Join(dir, "hq.yaml")
	os.WriteFile(cfgPath, []byte("store: "+path+"\nbroker: {url: '"+b.URL()+"'}\nstatus_addr: "+anyStatusAddr+"\nsigning_key_file: "+writeKey(t)+"\n"), 0o600)
	serveOn(t, cfgPath)
	ctx := context.Background()
	// -store alone cannot read the held file and says how to.
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"report", "-store", path, "--as-of", "2026-03-01"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "-config") {
		t.Fatalf("report -store while serve runs: %v", err)
	}
	out.Reset()
	if err := run(ctx, []string{"report", "-config", cfgPath, "--as-of", "2026-03-01"}, &out, &errb); err != nil {
		t.Fatalf("report -config while serve runs: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "members") {
		t.Fatalf("report output:\n%s", out.String())
	}
}

// chainDB is a fresh PostgreSQL schema with a worker's store open on it
// (closed at the end of the test), and a serve config naming it.
func chainDB(t *testing.T) (st *pgstore.Store, cfgPath, dir string) {
	t.Helper()
	s := pgtest.Need(t, pgSrv, pgErr)
	_, dsn, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	st, err = pgstore.Open(dsn, nil) // a worker, open throughout
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir = t.TempDir()
	dsnFile := filepath.Join(dir, "hq.dsn")
	cfgPath = filepath.Join(dir, "hq.yaml")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte("postgres: {dsn_file: "+dsnFile+"}\nbroker: {url: 'tcp://127.0.0.1:1'}\nsigning_key_file: k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return st, cfgPath, dir
}

// A chain's staff run report against PostgreSQL while a worker writes.
func TestReportFromPostgres(t *testing.T) {
	st, cfgPath, dir := chainDB(t)
	if _, err := st.Apply(salesEvents()); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"report", "-config", cfgPath, "--as-of", "2026-03-01"}, &out, &errb); err != nil {
		t.Fatalf("report: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "members") {
		t.Fatalf("report output:\n%s", out.String())
	}
	// Contacts too.
	out.Reset()
	if err := run(context.Background(), []string{"contacts", "-config", cfgPath, "list", "--log", filepath.Join(dir, "contacts.db"), "--as-of", "2026-03-01"}, &out, &errb); err != nil {
		t.Fatalf("contacts list: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "member") {
		t.Fatalf("contacts output:\n%s", out.String())
	}
}
