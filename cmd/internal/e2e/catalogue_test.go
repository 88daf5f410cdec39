package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// ean13 is the n-th test article code: "40" + 10 digits + a GS1 check
// digit, so the scanner takes it as an item.
func ean13(n int) string {
	s := fmt.Sprintf("40%010d", n)
	sum := 0
	for i := 0; i < 12; i++ {
		d := int(s[i] - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return s + string(rune('0'+(10-sum%10)%10))
}

// bigCatalogue is n articles priced base + i%1000.
func bigCatalogue(n int, base ledger.Money) []protocol.Product {
	items := make([]protocol.Product, n)
	for i := range items {
		items[i] = protocol.Product{SKU: ean13(i), Name: fmt.Sprintf("Article %d", i), Category: "grocery", Price: base + ledger.Money(i%1000)}
	}
	return items
}

// TestCatalogueInPieces: head office delivers a 100,000-item store
// catalogue in signed pieces over a real mosquitto; the real daemon
// stages them in its ledger and sells from the new catalogue once every
// piece is there. Then a version with a missing piece, a forged piece, an
// unsigned piece, a piece of another version and a restart in the middle
// of the delivery: each changes nothing in force; the missing piece
// completes it.
func TestCatalogueInPieces(t *testing.T) {
	const store = "e2e-store"
	b := mosquittotest.Start(t, nil)
	conn := hq.Conn{Broker: b.URL(), WaitTimeout: 20 * time.Second}
	r := newRegister(t)
	r.extraCfg = syncCfg(b.URL())
	r.start()
	enrol(t, r)

	sync := func() map[string]any {
		_, st := r.api("GET", "/v1/status", nil)
		sy, _ := st["sync"].(map[string]any)
		return sy
	}
	storeVersion := func() float64 {
		c, _ := sync()["config"].(map[string]any)
		v, _ := c["store"].(float64)
		return v
	}
	waitSync := func(what string, cond func(sy map[string]any) bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			sy := sync()
			if sy != nil && cond(sy) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %s: %v\n%s", what, sy, r.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	pieces := func(sy map[string]any) (have, want, other float64) {
		p, _ := sy["catalogue_pieces"].(map[string]any)
		have, _ = p["have"].(float64)
		want, _ = p["want"].(float64)
		other, _ = p["other_version"].(float64)
		return
	}
	price := func(code string) float64 {
		t.Helper()
		r.scan(code)
		r.scan(memberCard)
		r.scan("*TOTAL*")
		var total float64
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, v := r.api("GET", "/v1/checkout", nil)
			if v["state"] == "receipt" && v["completed"] != nil {
				total, _ = v["total"].(float64)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sale of %s never completed: %v\n%s", code, v, r.logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
		r.scan("*CANCEL*")
		deadline = time.Now().Add(10 * time.Second)
		for {
			if _, v := r.api("GET", "/v1/checkout", nil); v["state"] != "receipt" {
				return total
			}
			if time.Now().After(deadline) {
				t.Fatal("receipt never left")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Version 10: 100,000 articles, sent in pieces by head office.
	const n = 100_000
	pub, err := hq.Publish(context.Background(), conn, hqKey,
		protocol.Config{Scope: protocol.ScopeStore, Store: store, ConfigVersion: 10, Catalogue: bigCatalogue(n, 100)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Pieces < 2 {
		t.Fatalf("100,000 items went in %d pieces", pub.Pieces)
	}
	waitSync("version 10 in force", func(sy map[string]any) bool { return storeVersion() == 10 })
	if got := price(ean13(77_777)); got != 100+777 {
		t.Fatalf("article 77777 costs %v, want %v", got, 100+777)
	}

	// Version 11 (every price +5000) with piece 1 held back.
	docs, m, err := protocol.SplitCatalogue(store, 11, bigCatalogue(n, 5100), 0)
	if err != nil {
		t.Fatal(err)
	}
	raw := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("hq-test").SetAutoReconnect(false))
	if tok := raw.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer raw.Disconnect(100)
	send := func(topic string, payload []byte) {
		t.Helper()
		if tok := raw.Publish(topic, 1, true, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	seal := func(k *signing.Signer, topic string, doc []byte) []byte {
		t.Helper()
		b, err := k.Seal(topic, doc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i, d := range docs {
		if i != 1 {
			send(protocol.CataloguePieceTopic(store, i), seal(hqKey, protocol.CataloguePieceTopic(store, i), d))
		}
	}
	manifest, err := protocol.EncodeConfig(protocol.Config{Scope: protocol.ScopeStore, Store: store, ConfigVersion: 11, CataloguePieces: m})
	if err != nil {
		t.Fatal(err)
	}
	send(protocol.StoreConfigTopic(store), seal(hqKey, protocol.StoreConfigTopic(store), manifest))
	want := float64(len(docs))
	waitSync("staging all but piece 1", func(sy map[string]any) bool { h, w, _ := pieces(sy); return w == want && h == want-1 })
	if v := storeVersion(); v != 10 {
		t.Fatalf("store version %v while a piece is missing, want 10", v)
	}
	if got := price(ean13(77_777)); got != 877 {
		t.Fatalf("missing piece: article 77777 costs %v, want 877 (version 10)", got)
	}

	// Piece 1 forged (another key), unsigned, and of another version.
	other, _ := signing.Generate(nil)
	p1 := protocol.CataloguePieceTopic(store, 1)
	send(p1, seal(other, p1, docs[1]))
	waitSync("refusing the forged piece", func(sy map[string]any) bool {
		ref, _ := sy["refused"].(map[string]any)
		return ref["unknown_key"].(float64) >= 1
	})
	send(p1, docs[1])
	waitSync("refusing the unsigned piece", func(sy map[string]any) bool {
		ref, _ := sy["refused"].(map[string]any)
		return ref["unsigned"].(float64) >= 1
	})
	docs12, _, err := protocol.SplitCatalogue(store, 12, bigCatalogue(n, 9100), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, othersBefore := pieces(sync())
	send(p1, seal(hqKey, p1, docs12[1]))
	waitSync("ignoring the piece of version 12", func(sy map[string]any) bool { _, _, o := pieces(sy); return o > othersBefore })
	if h, _, _ := pieces(sync()); h != want-1 || storeVersion() != 10 {
		t.Fatalf("after bad pieces: have %v, store version %v; want %v and 10", h, storeVersion(), want-1)
	}
	if got := price(ean13(12_345)); got != 100+345 {
		t.Fatalf("after bad pieces: article 12345 costs %v, want %v (version 10)", got, 100+345)
	}

	// Restart in the middle of the delivery: what was staged is kept.
	if _, err := r.term(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	r.start()
	waitSync("resuming after the restart", func(sy map[string]any) bool { h, w, _ := pieces(sy); return w == want && h == want-1 })
	if v := storeVersion(); v != 10 {
		t.Fatalf("store version %v after the restart, want 10", v)
	}
	if got := price(ean13(77_777)); got != 877 {
		t.Fatalf("after the restart: article 77777 costs %v, want 877", got)
	}

	// The missing piece arrives: version 11 in force, all at once.
	send(p1, seal(hqKey, p1, docs[1]))
	waitSync("version 11 in force", func(sy map[string]any) bool { return storeVersion() == 11 })
	if _, ok := sync()["catalogue_pieces"]; ok {
		t.Errorf("a delivery still shown after version 11 is in force: %v", sync())
	}
	if got := price(ean13(77_777)); got != 5100+777 {
		t.Fatalf("version 11: article 77777 costs %v, want %v", got, 5100+777)
	}
	if got := price(ean13(99_999)); got != 5100+999 {
		t.Fatalf("version 11: article 99999 costs %v, want %v", got, 5100+999)
	}
}

// withLocalCatalogue rewrites the register's config with n more articles
// in its local catalogue (YAML, one flow mapping per line).
func (r *register) withLocalCatalogue(tb testing.TB, n int) int {
	r.writeConfig()
	b, err := os.ReadFile(r.cfgPath)
	if err != nil {
		tb.Fatal(err)
	}
	var items strings.Builder
	for i := range n {
		fmt.Fprintf(&items, "    - {sku: \"%s\", name: \"Article number %d\", price: %d, category: grocery}\n", ean13(i), i, 100+i%1000)
	}
	block := `catalogue:
  version: 1
  items:
    - sku: "4006381333931"
      name: Stabilo pen
      price: 250
      category: stationery
    - sku: "9780201379624"
      name: Design Patterns
      price: 4999
      category: books
`
	items.WriteString("    - {sku: \"4006381333931\", name: Stabilo pen, price: 250, category: stationery}\n")
	items.WriteString("    - {sku: \"9780201379624\", name: Design Patterns, price: 4999, category: books}\n")
	if !strings.Contains(string(b), block) {
		tb.Fatal("the harness's catalogue changed; update withLocalCatalogue")
	}
	cfg := strings.Replace(string(b), block, "catalogue:\n  version: 1\n  items:\n"+items.String(), 1)
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	return len(cfg)
}

// BenchmarkLocalCatalogue100kStart: the real daemon with a 100,000-item
// catalogue in its YAML config, from exec to ready (/healthz), on the
// first start (the catalogue goes into a new ledger) and on a restart
// (REPORT catalogue_100k_yaml_start_s, goal 2 s), with its peak RSS.
func BenchmarkLocalCatalogue100kStart(b *testing.B) {
	r := newRegister(b)
	size := r.withLocalCatalogue(b, 100_000)
	var first, again, firstCPU, againCPU []time.Duration
	var hwm int64
	for b.Loop() {
		os.Remove(filepath.Join(r.dir, "ledger.db"))
		first = append(first, r.start())
		firstCPU = append(firstCPU, procCPU(b, r.cmd.Process.Pid))
		if code, _ := r.api("GET", "/v1/status", nil); code != 200 {
			b.Fatalf("status %d", code)
		}
		if _, err := r.term(); err != nil {
			b.Fatal(err)
		}
		again = append(again, r.start())
		againCPU = append(againCPU, procCPU(b, r.cmd.Process.Pid))
		hwm = max(hwm, procHWM(b, r.cmd.Process.Pid))
		if _, err := r.term(); err != nil {
			b.Fatal(err)
		}
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(med(first).Seconds(), "first-start-s")
	b.ReportMetric(med(again).Seconds(), "restart-s")
	fmt.Printf("REPORT catalogue_100k_yaml_start_s %.2f s first start, %.2f s restart (CPU %.2f s and %.2f s; %d-byte config; peak RSS of the restart %d MB)\n",
		med(first).Seconds(), med(again).Seconds(), med(firstCPU).Seconds(), med(againCPU).Seconds(), size, hwm>>20)
}

// procCPU is the CPU time (user + system) a process used so far.
func procCPU(tb testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// procHWM is a process's peak resident memory in bytes.
func procHWM(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
