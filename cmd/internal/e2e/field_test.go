package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// fieldHQ is head office's sync service on a real mosquitto, in process.
type fieldHQ struct {
	t    *testing.T
	b    *mosquittotest.Broker
	st   *hqstore.Store
	svc  *hq.Service
	stop func()
}

func startFieldHQ(t *testing.T) *fieldHQ {
	t.Helper()
	h := &fieldHQ{t: t, b: mosquittotest.Start(t, nil)}
	st, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: h.b.URL(), WaitTimeout: 5 * time.Second}, GapRetry: 200 * time.Millisecond, Signer: hqKey})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	h.stop = func() { cancel(); <-done }
	t.Cleanup(func() {
		h.stop()
		if err := h.st.Check(); err != nil {
			t.Errorf("head office Check: %v", err)
		}
		h.st.Close()
	})
	return h
}

// sales counts the sales head office applied and those it holds for review.
func (h *fieldHQ) sales() (applied map[string]bool, held map[string]string) {
	h.t.Helper()
	applied, held = map[string]bool{}, map[string]string{}
	if err := h.st.EachPurchase(func(_ string, p ledger.Purchase) error {
		applied[p.SaleID] = true
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	rev, err := h.st.Review()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range rev {
		if e.Type == ledger.OutSale {
			var sale struct{ ID string }
			if err := json.Unmarshal(e.Data, &sale); err != nil {
				h.t.Fatal(err)
			}
			held[sale.ID] = e.Reason
		}
	}
	return applied, held
}

func waitStatus(t *testing.T, r *register, what string, cond func(sync map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, st := r.api("GET", "/v1/status", nil)
		sy, _ := st["sync"].(map[string]any)
		if sy != nil && cond(sy) {
			return sy
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync never %s: %v\n%s", what, sy, r.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func drained(s map[string]any) bool { return s["online"] == true && s["pending"].(float64) == 0 }

func heldFor(reason string) func(map[string]any) bool {
	return func(s map[string]any) bool {
		h, _ := s["held"].(map[string]any)
		return h != nil && h["reason"] == reason && s["pending"].(float64) > 0
	}
}

// sell records n member sales named prefix1..prefixN and returns their ids.
func sell(t *testing.T, r *register, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		saleAPI(t, r, id, "m1", 1000)
		ids = append(ids, id)
	}
	return ids
}

// account checks that every acknowledged sale is at head office exactly
// once or held for review, and returns the counts for the report.
func account(t *testing.T, h *fieldHQ, acked []string) (found, held, lost int) {
	t.Helper()
	// Events still on their way: wait until each sale is placed.
	deadline := time.Now().Add(20 * time.Second)
	applied, hold := h.sales()
	for time.Now().Before(deadline) {
		n := 0
		for _, id := range acked {
			if applied[id] || hold[id] != "" {
				n++
			}
		}
		if n == len(acked) {
			break
		}
		time.Sleep(100 * time.Millisecond)
		applied, hold = h.sales()
	}
	for _, id := range acked {
		switch {
		case applied[id]:
			found++
		case hold[id] != "":
			held++
		default:
			lost++
			t.Errorf("sale %s acknowledged by a register is neither at head office nor held", id)
		}
	}
	t.Logf("acknowledged %d, at head office %d, held %d, lost %d", len(acked), found, held, lost)
	return found, held, lost
}

func syncRegister(t *testing.T, h *fieldHQ) *register {
	r := newRegister(t)
	r.extraCfg = syncCfg(h.b.URL())
	return r
}

// TestFieldReplacedCard: a register whose card died starts on a fresh
// ledger with the same config. Before its first event it learns head
// office's watermark from the last ack to its id and continues the stream
// after it (new incarnation, no number reused). Head office holds the new
// ledger's sales for review (never applied over the old ones, never
// kept-the-first in silence) and tells the register, whose status says so;
// the register keeps them. The operator adopts the new ledger (the real
// loyalty-hq register adopt): every acknowledged sale is then at head
// office exactly once.
func TestFieldReplacedCard(t *testing.T) {
	h := startFieldHQ(t)
	r := syncRegister(t, h)
	r.start()
	enrolAPI(t, r, "m1", "")
	acked := sell(t, r, "a", 5)
	waitStatus(t, r, "drained", drained)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(r.dir, "ledger.db")); err != nil {
		t.Fatal(err)
	}
	r.start()
	sy := waitStatus(t, r, "continuing the old ledger's stream", func(s map[string]any) bool { return s["replaced"] != nil })
	t.Logf("register status: %v", sy["replaced"])
	// The fresh ledger learns the store's members from head office (the
	// summary stream from position 0); enrolling m1 again would race it.
	testkit.Eventually(t, 20*time.Second, "m1 known again from head office", func() bool { return memberBalance(r, "m1") >= 0 })
	acked = append(acked, sell(t, r, "b", 3)...)
	sy = waitStatus(t, r, "held for another incarnation", heldFor("incarnation"))
	if !strings.Contains(sy["held"].(map[string]any)["text"].(string), "register.id") {
		t.Errorf("held text does not say what to do: %v", sy["held"])
	}
	found, held, _ := account(t, h, acked)
	if found != 5 || held != 3 {
		t.Fatalf("found %d held %d", found, held)
	}
	if _, body := r.get("/metrics"); !strings.Contains(body, `loyalty_sync_held{reason="incarnation"} 1`) || strings.Contains(body, "loyalty_sync_held_events 0") {
		t.Errorf("metrics do not count the held events:\n%s", body)
	}
	out, err := ctl(t, "-addr", "http://"+r.addr, "status")
	if err != nil || !strings.Contains(out, "HELD") {
		t.Errorf("loyaltyctl status does not show the held events: %v\n%s", err, out)
	} else {
		t.Logf("loyaltyctl status:\n%s", out)
	}
	inc := sy["incarnation"].(string)
	var adopt []byte
	h.restart(func(path string) {
		var err error
		adopt, err = exec.Command(bins.hq, "register", "adopt", "-store", path, "e2e-r1", inc).CombinedOutput()
		if err != nil {
			t.Fatalf("loyalty-hq register adopt: %v\n%s", err, adopt)
		}
	})
	t.Logf("loyalty-hq: %s", adopt)
	acked = append(acked, sell(t, r, "c", 1)...)
	waitStatus(t, r, "drained after the adoption", func(s map[string]any) bool { return drained(s) && s["held"] == nil })
	found, held, lost := account(t, h, acked)
	h.once()
	if found != 9 || held != 0 || lost != 0 {
		t.Fatalf("after the adoption: found %d held %d lost %d", found, held, lost)
	}
	stopAndOpen(t, r)
}

// TestFieldClonedConfig: two registers with the same register id (a copied
// config) on separate ledgers. Head office applies the first ledger's
// events and holds the second's; neither prunes what head office does not
// hold for it.
func TestFieldClonedConfig(t *testing.T) {
	h := startFieldHQ(t)
	r1 := syncRegister(t, h)
	r1.start()
	enrolAPI(t, r1, "m1", "")
	acked := sell(t, r1, "a", 3)
	waitStatus(t, r1, "drained", drained)
	r2 := syncRegister(t, h) // same config: register.id e2e-r1
	r2.start()
	enrolAPI(t, r2, "m1", "")
	acked = append(acked, sell(t, r2, "b", 3)...)
	waitStatus(t, r2, "held for another incarnation", heldFor("incarnation"))
	acked = append(acked, sell(t, r1, "c", 2)...)
	waitStatus(t, r1, "drained", drained)
	found, held, _ := account(t, h, acked)
	if found != 5 || held != 3 {
		t.Fatalf("found %d held %d", found, held)
	}
	// One client id: the broker hands the session back and forth. Both
	// registers say so, in status and on the idle display.
	for _, r := range []*register{r1, r2} {
		sy := waitStatus(t, r, "reporting the session takeover", func(s map[string]any) bool { return s["takeover"] != nil })
		t.Logf("status: %v", sy["takeover"])
		r.waitDisplay("the takeover notice", func(b []byte) bool {
			l := upperLines(b)
			return len(l) > 0 && l[len(l)-1] == "Register id in use"
		})
	}
	// Head office sees it too: the two ledgers' statuses alternate on the
	// register's status topic (fleet page, GET /fleet).
	testkit.Eventually(t, 20*time.Second, "head office names the two registers on one id", func() bool {
		tk := h.svc.Takeovers()
		return len(tk) == 1 && tk[0].Register == "e2e-r1" && strings.Contains(tk[0].Takeover, "two registers use register id e2e-r1")
	})
	r1.kill()
	// Alone again, the clone's session lasts; its sales stay held.
	waitStatus(t, r2, "takeover over, still held", func(s map[string]any) bool { return s["takeover"] == nil && s["held"] != nil })
	r2.waitDisplay("the held notice", func(b []byte) bool {
		l := upperLines(b)
		return len(l) > 0 && l[len(l)-1] == "Sales held at HQ"
	})
	l := stopAndOpen(t, r2)
	if n, _, _ := l.OutboxStats(); n < 4 { // enrolment + 3 sales' events
		t.Fatalf("the clone pruned events head office does not hold: %d pending", n)
	}
}

// soldThenRestored is a register (stopped) whose ledger was backed up
// after enrolling m1 and 3 sales (a1..a3), which then sold and synced 3
// more (b1..b3), and whose ledger file was then replaced by the backup
// copy. acked are the 6 sales' ids; head office has them all.
func soldThenRestored(t *testing.T) (*fieldHQ, *register, []string) {
	t.Helper()
	h := startFieldHQ(t)
	r := syncRegister(t, h)
	r.start()
	enrolAPI(t, r, "m1", "")
	acked := sell(t, r, "a", 3)
	waitStatus(t, r, "drained", drained)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(r.dir, "ledger.db")
	backup, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	r.start()
	acked = append(acked, sell(t, r, "b", 3)...)
	waitStatus(t, r, "drained", drained)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	return h, r, acked
}

// TestFieldRestoredBackup: a register restored from its own backup after
// head office had later events. The restored ledger's new events reuse
// numbers head office holds other content for: they are held ("reused"),
// and the ack the register gets stops below them, so it prunes nothing
// head office does not hold.
func TestFieldRestoredBackup(t *testing.T) {
	h, r, acked := soldThenRestored(t)
	// Restored by copying the file back: the register learns from head
	// office's retained ack that head office holds more of its stream
	// than it has, and goes on under a new incarnation after it.
	r.start()
	sy := waitStatus(t, r, "renumbered after head office's watermark", func(s map[string]any) bool { return s["renumbered"] != nil })
	t.Logf("register status: %v", sy["renumbered"])
	acked = append(acked, sell(t, r, "c", 2)...)
	waitStatus(t, r, "drained", func(s map[string]any) bool { return drained(s) && s["held"] == nil })
	found, held, lost := account(t, h, acked)
	if found != 8 || held != 0 || lost != 0 {
		t.Fatalf("found %d held %d lost %d", found, held, lost)
	}
	out, err := ctl(t, "-addr", "http://"+r.addr, "status")
	if err != nil || !strings.Contains(out, "RESTORED") {
		t.Errorf("loyaltyctl status does not say the ledger was restored: %v\n%s", err, out)
	}
	rs, err := h.st.Registers()
	if err != nil || len(rs) != 1 || rs[0].Successions != 1 || rs[0].Incarnation != sy["incarnation"] {
		t.Fatalf("head office follows %+v (%v), want the register's new incarnation %v", rs, err, sy["incarnation"])
	}
	stopAndOpen(t, r)
}

// TestFieldRestoredSoldOfflinePastWatermark: a register restored from its
// own backup that sells offline before it reaches head office (no
// loyaltyctl register restore) numbers its sales over numbers head
// office applied from the lost ledger, and past them. Head office holds
// the ones under its numbers as reused and applies the rest; every ack
// stays below the first reused number, so the register keeps the held
// sales (and says so) even after later sales were acknowledged
// (docs/operations.md "Sales recorded before the register noticed").
func TestFieldRestoredSoldOfflinePastWatermark(t *testing.T) {
	h, r, acked := soldThenRestored(t)
	r.extraCfg = syncCfg("tcp://127.0.0.1:1") // offline
	r.writeConfig()
	r.start()
	acked = append(acked, sell(t, r, "c", 5)...)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	r.extraCfg = syncCfg(h.b.URL())
	r.writeConfig()
	r.start()
	waitStatus(t, r, "held as reused", heldFor("reused"))
	found, held, lost := account(t, h, acked)
	if lost != 0 || held == 0 || found+held != len(acked) {
		t.Fatalf("found %d held %d lost %d of %d acknowledged sales", found, held, lost, len(acked))
	}
	// A later sale is applied and answered; the answer still stops below
	// the held ones.
	before := h.svc.Status().AcksSent
	acked = append(acked, sell(t, r, "d", 1)...)
	testkit.Eventually(t, 20*time.Second, "d1 applied and answered", func() bool {
		applied, _ := h.sales()
		return applied["d1"] && h.svc.Status().AcksSent > before
	})
	sy := waitStatus(t, r, "still held as reused", heldFor("reused"))
	t.Logf("register sync status: held=%v pending=%v", sy["held"], sy["pending"])
	out, err := ctl(t, "-addr", "http://"+r.addr, "status")
	if err != nil || !strings.Contains(out, "HELD") || !strings.Contains(out, "restored from an older backup") {
		t.Errorf("loyaltyctl status does not show the reused hold: %v\n%s", err, out)
	}
	rev, err := h.st.Review()
	if err != nil {
		t.Fatal(err)
	}
	var first uint64 // the first number head office holds as reused
	for _, e := range rev {
		if e.Reason == "reused" && (first == 0 || e.Seq < first) {
			first = e.Seq
		}
	}
	l := stopAndOpen(t, r)
	if c, err := l.Confirmed(); err != nil || first == 0 || c >= first {
		t.Fatalf("the register confirmed %d (%v), head office holds its events from %d as reused: it must keep them", c, err, first)
	}
	if found, held, lost = account(t, h, acked); lost != 0 || found+held != len(acked) {
		t.Fatalf("found %d held %d lost %d of %d acknowledged sales", found, held, lost, len(acked))
	}
}

// TestFieldReplacedSoldOffline: a replacement register (fresh ledger,
// same config) records sales before it first reaches head office, so its
// own numbers start at 1 again. At its first contact it learns head
// office's watermark and sends them, under a new incarnation, after it;
// head office holds them until the operator adopts the new incarnation,
// then every acknowledged sale is there exactly once.
func TestFieldReplacedSoldOffline(t *testing.T) {
	h := startFieldHQ(t)
	r := syncRegister(t, h)
	r.start()
	enrolAPI(t, r, "m1", "")
	acked := sell(t, r, "a", 5)
	waitStatus(t, r, "drained", drained)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(r.dir, "ledger.db")); err != nil {
		t.Fatal(err)
	}
	r.extraCfg = syncCfg("tcp://127.0.0.1:1") // no broker there: offline
	r.writeConfig()
	r.start()
	enrolAPI(t, r, "m1", "")
	acked = append(acked, sell(t, r, "b", 3)...)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	r.extraCfg = syncCfg(h.b.URL())
	r.writeConfig()
	r.start()
	sy := waitStatus(t, r, "held for another incarnation", func(s map[string]any) bool { return s["replaced"] != nil && heldFor("incarnation")(s) })
	t.Logf("register status: %v", sy["replaced"])
	found, held, _ := account(t, h, acked)
	if found != 5 || held != 3 {
		t.Fatalf("before adopting: found %d held %d", found, held)
	}
	inc := sy["incarnation"].(string)
	h.restart(func(path string) {
		out, err := exec.Command(bins.hq, "register", "adopt", "-store", path, "e2e-r1", inc).CombinedOutput()
		if err != nil {
			t.Fatalf("loyalty-hq register adopt: %v\n%s", err, out)
		}
		t.Logf("loyalty-hq: %s", out)
	})
	acked = append(acked, sell(t, r, "c", 1)...)
	waitStatus(t, r, "drained after the adoption", func(s map[string]any) bool { return drained(s) && s["held"] == nil })
	found, held, lost := account(t, h, acked)
	if found != 9 || held != 0 || lost != 0 {
		t.Fatalf("after the adoption: found %d held %d lost %d", found, held, lost)
	}
	rev, err := h.st.Review()
	if err != nil || len(rev) != 0 {
		t.Errorf("still held for review: %d %v", len(rev), err)
	}
	stopAndOpen(t, r)
}

// TestFieldMovedStore: a register whose store_id changed without a
// confirmed move. Head office holds its events ("store") and tells it.
func TestFieldMovedStore(t *testing.T) {
	h := startFieldHQ(t)
	r := syncRegister(t, h)
	r.start()
	enrolAPI(t, r, "m1", "")
	acked := sell(t, r, "a", 2)
	waitStatus(t, r, "drained", drained)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(r.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.cfgPath, []byte(strings.Replace(string(cfg), "store_id: e2e-store", "store_id: e2e-store2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	acked = append(acked, sell(t, r, "b", 2)...)
	sy := waitStatus(t, r, "held as moved", heldFor("store"))
	if !strings.Contains(sy["held"].(map[string]any)["text"].(string), "move") {
		t.Errorf("held text: %v", sy["held"])
	}
	found, held, _ := account(t, h, acked)
	if found != 2 || held != 2 {
		t.Fatalf("found %d held %d", found, held)
	}
	// The move confirmed at head office (loyalty-hq register move): the
	// held events are released, the register resends them, nothing waits.
	if n, err := h.st.MoveRegister("e2e-r1", "e2e-store2", false); err != nil || n < 2 {
		t.Fatalf("move: %d %v", n, err)
	}
	acked = append(acked, sell(t, r, "c", 1)...)
	waitStatus(t, r, "drained after the move", func(s map[string]any) bool { return drained(s) && s["held"] == nil })
	found, held, _ = account(t, h, acked)
	if found != 5 || held != 0 {
		t.Fatalf("after the move: found %d held %d", found, held)
	}
	stopAndOpen(t, r)
}

// restart stops head office's service and its store, runs between on the
// closed store file, and starts both again.
func (h *fieldHQ) restart(between func(path string)) {
	h.t.Helper()
	h.stop()
	path := h.st.Path()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	between(path)
	st, err := hqstore.Open(path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: h.b.URL(), WaitTimeout: 5 * time.Second}, GapRetry: 200 * time.Millisecond, Signer: hqKey})
	if err != nil {
		h.t.Fatal(err)
	}
	h.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	h.stop = func() { cancel(); <-done }
}

// restoreHQ runs case 5 of issue 17 up to the restore: 5 sales that head
// office has when its backup is taken, 5 more it confirms after the
// backup, the store replaced by the backup, then 2 more sales. It returns
// the acknowledged sales.
func restoreHQ(t *testing.T, h *fieldHQ, r *register) []string {
	t.Helper()
	enrolAPI(t, r, "m1", "")
	acked := sell(t, r, "a", 5)
	waitStatus(t, r, "drained", drained)
	var snap []byte
	h.restart(func(path string) {
		var err error
		if snap, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	})
	acked = append(acked, sell(t, r, "b", 5)...)
	waitStatus(t, r, "drained", drained)
	h.restart(func(path string) {
		if err := os.WriteFile(path, snap, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	return append(acked, sell(t, r, "c", 2)...)
}

// once checks that head office recorded no sale twice.
func (h *fieldHQ) once() {
	h.t.Helper()
	n := map[string]int{}
	if err := h.st.EachPurchase(func(_ string, p ledger.Purchase) error {
		n[p.SaleID]++
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	for id, c := range n {
		if c != 1 {
			h.t.Errorf("sale %s recorded %d times at head office", id, c)
		}
	}
}

// TestFieldHeadOfficeRestored: head office's store is replaced by an older
// copy after the register had its later events confirmed. The register
// keeps confirmed events for a window (ledger.keep_confirmed_days), so it
// answers head office's request from below its watermark: every
// acknowledged sale reaches head office exactly once, nothing is held,
// both sides' Check passes.
func TestFieldHeadOfficeRestored(t *testing.T) {
	h := startFieldHQ(t)
	r := syncRegister(t, h)
	r.start()
	acked := restoreHQ(t, h, r)
	found, held, lost := account(t, h, acked)
	h.once()
	if found != 12 || held != 0 || lost != 0 {
		t.Fatalf("found %d held %d lost %d, want all 12 at head office", found, held, lost)
	}
	sy := waitStatus(t, r, "drained after head office caught up", func(s map[string]any) bool { return drained(s) && s["held"] == nil })
	t.Logf("register status: %v", sy["summary"])
	l := stopAndOpen(t, r)
	st, _ := l.Stats()
	if st.Confirmed != st.LastSeq || st.KeptFrom != 1 {
		t.Fatalf("ledger after: %+v", st)
	}
	t.Logf("kept %d confirmed events (%d sales), %d bytes", st.Confirmed, st.Sales, st.KeptBytes)
}

// TestFieldHeadOfficeRestoredGap: the same, but the register keeps no
// confirmed events (keep_confirmed_days: 0), so the sales head office
// confirmed after its backup are gone from every copy. Both sides name the
// same sequence numbers (the register's status, head office's register
// state); the operator acknowledges the gap with loyalty-hq register gap
// (the real binary, serve stopped); then the sales held behind it are
// applied and the stream goes on. The lost sales are exactly those.
func TestFieldHeadOfficeRestoredGap(t *testing.T) {
	h := startFieldHQ(t)
	r := syncRegister(t, h)
	r.ledgerCfg = "  keep_confirmed_days: 0\n"
	r.start()
	acked := restoreHQ(t, h, r)
	sy := waitStatus(t, r, "reporting the lost events", heldFor("lost"))
	lostHeld := sy["held"].(map[string]any)
	from, to := uint64(lostHeld["from"].(float64)), uint64(lostHeld["to"].(float64))
	t.Logf("register status: %v", lostHeld["text"])
	// Head office waits for the same numbers, holding what came after.
	testkit.Eventually(t, 20*time.Second, "head office names the same gap", func() bool {
		regs, _ := h.st.Registers()
		return len(regs) == 1 && regs[0].WaitFrom == from && regs[0].WaitTo == to && regs[0].Held > 0
	})
	applied, _ := h.sales()
	if n := countIn(applied, acked); n != 5 {
		t.Fatalf("before the gap is acknowledged: %d at head office, want 5 (2 wait behind the gap)", n)
	}
	var out []byte
	h.restart(func(path string) {
		var err error
		out, err = exec.Command(bins.hq, "register", "gap", "-store", path, "-note", "restored from backup", "e2e-r1",
			fmt.Sprint(from), fmt.Sprint(to)).CombinedOutput()
		if err != nil {
			t.Fatalf("loyalty-hq register gap: %v\n%s", err, out)
		}
	})
	t.Logf("loyalty-hq: %s", out)
	acked = append(acked, sell(t, r, "d", 1)...)
	waitStatus(t, r, "drained after the gap", func(s map[string]any) bool { return drained(s) && s["held"] == nil })
	gaps, err := h.st.Gaps()
	if err != nil || len(gaps) != 1 || gaps[0].From != from || gaps[0].To != to {
		t.Fatalf("gaps %+v %v", gaps, err)
	}
	applied, _ = h.sales()
	h.once()
	var lostIDs []string
	for _, id := range acked {
		if !applied[id] {
			lostIDs = append(lostIDs, id)
		}
	}
	t.Logf("acknowledged %d, at head office %d, held 0, lost %d (acknowledged gap %d..%d): %v", len(acked), len(acked)-len(lostIDs), len(lostIDs), from, to, lostIDs)
	if strings.Join(lostIDs, ",") != "b1,b2,b3,b4,b5" {
		t.Fatalf("lost %v, want exactly the 5 sales confirmed after head office's backup", lostIDs)
	}
	stopAndOpen(t, r)
}

func countIn(set map[string]bool, ids []string) int {
	n := 0
	for _, id := range ids {
		if set[id] {
			n++
		}
	}
	return n
}

// TestFieldSecondCopy: a register with a second copy (ledger.replica_dir)
// records sales while head office is unreachable; its card dies (SIGKILL,
// the ledger file gone). loyaltyctl ledger restore-replica rebuilds the
// ledger from the copy; started again and online, the register sends every
// sale: each acknowledged sale reaches head office exactly once. Status
// showed the bound (replica behind 0) before the card died.
func TestFieldSecondCopy(t *testing.T) {
	h := startFieldHQ(t)
	r := syncRegister(t, h)
	copyDir := t.TempDir()
	r.ledgerCfg = "  replica_dir: " + copyDir + "\n"
	r.start()
	enrolAPI(t, r, "m1", "")
	acked := sell(t, r, "a", 3)
	waitStatus(t, r, "drained", drained)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	// Offline: head office unreachable (nothing listens on port 1).
	r.extraCfg = syncCfg("tcp://127.0.0.1:1")
	r.writeConfig()
	r.start()
	acked = append(acked, sell(t, r, "b", 5)...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, st := r.api("GET", "/v1/status", nil)
		rp, _ := st["replica"].(map[string]any)
		if rp != nil && rp["ok"] == true && rp["behind"] == 0.0 && rp["copied"].(float64) >= 11 {
			t.Logf("before the card died: replica %v, sync %v", rp, st["sync"].(map[string]any)["summary"])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second copy never caught up: %v\n%s", rp, r.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := ctl(t, "-addr", "http://"+r.addr, "status")
	if err != nil || !strings.Contains(out, "replica    ok") || !strings.Contains(out, "0 behind") {
		t.Fatalf("loyaltyctl status: %v\n%s", err, out)
	}
	r.kill() // the card dies
	ledgerPath := filepath.Join(r.dir, "ledger.db")
	if err := os.Rename(ledgerPath, ledgerPath+".dead"); err != nil {
		t.Fatal(err)
	}
	out, err = ctl(t, "ledger", "restore-replica", "-from", copyDir, "-register", "e2e-r1", "-ledger", ledgerPath)
	if err != nil {
		t.Fatalf("restore-replica: %v\n%s", err, out)
	}
	t.Logf("loyaltyctl: %s", out)
	r.extraCfg = syncCfg(h.b.URL())
	r.writeConfig()
	r.start()
	waitStatus(t, r, "drained after the restore", func(s map[string]any) bool { return drained(s) && s["held"] == nil })
	found, held, lost := account(t, h, acked)
	h.once()
	if found != 8 || held != 0 || lost != 0 {
		t.Fatalf("found %d held %d lost %d", found, held, lost)
	}
	stopAndOpen(t, r)
}

// waitMember waits until the register knows member id (from head office's
// summaries) and returns its record.
func waitMember(t *testing.T, r *register, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, m := r.api("GET", "/v1/members/"+id, nil)
		if code == 200 {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the register never learnt member %s: %d %v\n%s", id, code, m, r.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFieldRegisterRestore: loyaltyctl register restore on the real
// binaries. Offline, on a ledger restored from a backup: it says so, the
// register sells, and what it sold never collides with what head office
// holds (its new incarnation waits for head office's numbers). Online, on
// a fresh ledger: it reports the new incarnation continuing head office's
// stream, the store's members and the config in force; head office
// follows it without an adoption.
func TestFieldRegisterRestore(t *testing.T) {
	// Restored from the backup, started offline.
	h, r, acked := soldThenRestored(t)
	r.extraCfg = syncCfg("tcp://127.0.0.1:1")
	r.writeConfig()
	r.start()
	out, err := ctl(t, "-addr", "http://"+r.addr, "register", "restore", "-wait", "2s")
	t.Logf("loyaltyctl register restore (offline):\n%s", out)
	if err != nil || !strings.Contains(out, "OFFLINE") || !strings.Contains(out, "new incarnation") {
		t.Fatalf("offline restore: %v\n%s", err, out)
	}
	acked = append(acked, sell(t, r, "c", 2)...)
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}
	r.extraCfg = syncCfg(h.b.URL())
	r.writeConfig()
	r.start()
	sy := waitStatus(t, r, "drained", func(s map[string]any) bool { return drained(s) && s["held"] == nil && s["renumbered"] != nil })
	t.Logf("register status: %v", sy["renumbered"])
	found, held, lost := account(t, h, acked)
	if found != 8 || held != 0 || lost != 0 {
		t.Fatalf("restored offline: found %d held %d lost %d", found, held, lost)
	}
	if _, err := r.term(); err != nil {
		t.Fatal(err)
	}

	// A fresh ledger (a new card), online.
	if err := os.Remove(filepath.Join(r.dir, "ledger.db")); err != nil {
		t.Fatal(err)
	}
	r.start()
	out, err = ctl(t, "-addr", "http://"+r.addr, "register", "restore", "-wait", "20s")
	t.Logf("loyaltyctl register restore (fresh ledger, online):\n%s", out)
	if err != nil || !strings.Contains(out, "continues ledger") || !strings.Contains(out, "members: 1 known") || !strings.Contains(out, "config in force") {
		t.Fatalf("online restore: %v\n%s", err, out)
	}
	waitMember(t, r, "m1")
	acked = append(acked, sell(t, r, "d", 2)...)
	waitStatus(t, r, "drained", func(s map[string]any) bool { return drained(s) && s["held"] == nil })
	found, held, lost = account(t, h, acked)
	if found != 10 || held != 0 || lost != 0 {
		t.Fatalf("fresh ledger restored: found %d held %d lost %d", found, held, lost)
	}
	rev, err := h.st.Review()
	if err != nil || len(rev) != 0 {
		t.Errorf("held for review: %d %v", len(rev), err)
	}
	rs, err := h.st.Registers()
	if err != nil || len(rs) != 1 || rs[0].Successions != 2 {
		t.Errorf("head office: %+v %v, want two successions", rs, err)
	}
	stopAndOpen(t, r)
}
