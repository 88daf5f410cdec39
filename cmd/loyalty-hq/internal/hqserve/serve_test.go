package hqserve_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqserve"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// TestServeStatusAndShutdown runs head office against a real broker: the
// status page answers (lists and errors as JSON), and cancelling (what SIGTERM does) stops it within
// its bound.
func TestServeStatusAndShutdown(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	cfg, err := hqserve.Parse("test.yaml", []byte("store: "+filepath.Join(t.TempDir(), "hq.db")+
		"\nbroker: {url: '"+b.URL()+"', wait_timeout: 2s}\nstatus_addr: 127.0.0.1:0\nsigning_key_file: "+keyFile(t)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- hqserve.Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addr <- a })
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a + "/status"
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve not ready")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		var st hqserve.StatusDoc
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("status page: %v", err)
		}
		if st.Service.Subscribed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never subscribed: %+v", st.Service)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a deadline-bounded wait
	}
	checkListsAndErrors(t, strings.TrimSuffix(url, "/status"))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s of cancel")
	}
}

func TestServeRefusesLockedStore(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	path := filepath.Join(t.TempDir(), "hq.db")
	cfg, err := hqserve.Parse("test.yaml", []byte("store: "+path+"\nbroker: {url: '"+b.URL()+"'}\nstatus_addr: 'off'\nsigning_key_file: "+keyFile(t)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- hqserve.Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) { close(ready) })
	}()
	<-ready
	err = hqserve.Serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if !errors.Is(err, hqstore.ErrLocked) {
		t.Fatalf("a second serve on the same store: %v, want ErrLocked", err)
	}
	cancel()
	<-done
}

// keyFile writes a fresh signing key (mode 0600) and returns its path.
func keyFile(t *testing.T) string {
	t.Helper()
	k, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hq-signing.key")
	if err := os.WriteFile(p, k.MarshalPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkListsAndErrors: the status listener's lists are JSON arrays, [] when
// empty, and its errors JSON {"code", "message"} (docs/hq.md).
// /doublespends and /conflicts answered null on an empty store, and GET
// /members/nope plain text.
func checkListsAndErrors(t *testing.T, base string) {
	t.Helper()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), strings.TrimSpace(string(b))
	}
	for _, path := range []string{"/configs", "/doublespends", "/conflicts", "/review", "/gaps"} {
		if code, ct, body := get(path); code != 200 || ct != "application/json" || body != "[]" {
			t.Errorf("GET %s on an empty store: %d %s %q, want 200 application/json []", path, code, ct, body)
		}
	}
	code, ct, body := get("/members/nope")
	var e struct{ Code, Message string }
	if code != 404 || ct != "application/json" || json.Unmarshal([]byte(body), &e) != nil || e.Code != "unknown_member" || e.Message == "" {
		t.Errorf("GET /members/nope: %d %s %q, want 404 JSON unknown_member", code, ct, body)
	}
}
