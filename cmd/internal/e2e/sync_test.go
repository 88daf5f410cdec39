package e2e_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// TestSyncToHeadOffice runs the real daemon against a real mosquitto and
// head office's sync service: a sale scanned at the register reaches head
// office and is acknowledged (nothing pending); when the broker dies the
// register shows offline and keeps selling; when it is back, the backlog
// drains.
func TestSyncToHeadOffice(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	st, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: b.URL(), WaitTimeout: 5 * time.Second}, GapRetry: 200 * time.Millisecond, Signer: hqKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r := newRegister(t)
	// A short ack timeout: the drain after the broker restart below waits
	// for it.
	r.extraCfg = syncCfg(b.URL()) + "  ack_timeout: 2s\n"
	r.start()
	enrol(t, r)
	waitSyncFor := func(d time.Duration, what string, cond func(map[string]any) bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			_, st := r.api("GET", "/v1/status", nil)
			sy, _ := st["sync"].(map[string]any)
			if sy != nil && cond(sy) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sync never %s: %v\n%s", what, sy, r.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSync := func(what string, cond func(map[string]any) bool) {
		t.Helper()
		waitSyncFor(20*time.Second, what, cond)
	}
	r.scan("4006381333931")
	r.scan(memberCard)
	r.scan("*TOTAL*")
	r.waitDisplay("the balance", func(b []byte) bool { return hasLine(lowerLines(b), "Balance 2") })
	waitSync("online and drained", func(s map[string]any) bool { return s["online"] == true && s["pending"].(float64) == 0 })
	waitView := func(what string, cond func(map[string]any) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, v := r.api("GET", "/v1/checkout", nil)
			if cond(v) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkout view never %s: %v", what, v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitView("online", func(v map[string]any) bool { return v["offline"] == false })

	b.Kill()
	waitSync("offline", func(s map[string]any) bool { return s["online"] == false })
	r.scan("4006381333931")
	r.scan("*TOTAL*")
	waitSync("pending while offline", func(s map[string]any) bool { return s["pending"].(float64) > 0 })
	waitView("offline with the sale recorded", func(v map[string]any) bool { return v["offline"] == true && v["state"] == "receipt" })
	b.Restart()
	restarted := time.Now()
	// The sale the register sends when it reconnects is usually lost:
	// head office's session is not persistent and has not subscribed
	// again yet. The register sends it again only when head office has
	// been silent for its ack timeout (sync.ack_timeout, 2 s here, the
	// default 10 s, doubling while unanswered), so the drain takes about
	// that long. The wait allows for more probes (2 + 4 + 8 + 16 s) and
	// both sides' reconnects (reconnect_max 5 s) on a loaded machine.
	waitSyncFor(60*time.Second, "drained after the broker came back", func(s map[string]any) bool { return s["online"] == true && s["pending"].(float64) == 0 })
	t.Logf("drained %v after the broker restart", time.Since(restarted).Round(10*time.Millisecond))
}
