package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// testCards are the card schemes' published test numbers (Visa,
// Mastercard incl. 2-series, Amex, Discover, Diners, JCB, UnionPay).
var testCards = []string{
	"4111111111111111", "4012888888881881", "4242424242424242",
	"5555555555554444", "5105105105105100", "2223003122003222",
	"378282246310005", "371449635398431", "6011111111111117",
	"3056930009020004", "3566002020360505", "6200000000000005",
}

func spacedCard(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); i++ {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(c[i])
	}
	return b.String()
}

// TestNoCardNumberPastAnyDoor sends the standard test card numbers through
// every entry point of the real daemon (API: member ids, aliases, names,
// contact, consent notes, look-ups, sale ids, SKUs, member fields,
// refunds, voids, the checkout's item, keyed-in item and member; the
// scanner; loyaltyctl), synced to head office over a real mosquitto. Every
// one is refused without the number in the answer; afterwards the daemon's
// log, loyaltyctl's output, the ledger file's bytes, the exports, the
// outbox and head office's store file hold none of the digits.
func TestNoCardNumberPastAnyDoor(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	hqPath := filepath.Join(t.TempDir(), "hq.db")
	st, err := hqstore.Open(hqPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: b.URL(), WaitTimeout: 5 * time.Second}, GapRetry: 200 * time.Millisecond, Signer: hqKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	stopHQ := func() { cancel(); <-done; st.Close() }
	defer func() {
		select {
		case <-done:
		default:
			stopHQ()
		}
	}()

	r := newRegister(t)
	r.extraCfg = syncCfg(b.URL())
	r.start()
	enrol(t, r)
	raw := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, "http://"+r.addr+path, rd)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	// A sale to refund and void, and a basket for the checkout doors.
	if code, out := raw("POST", "/v1/sales", map[string]any{"id": "pos-ok", "member": memberCard,
		"lines": []map[string]any{{"no": 1, "sku": "4006381333931", "quantity": 2, "unit_price": 250}}}); code != 201 {
		t.Fatalf("sale: %d %s", code, out)
	}
	line := func(sku string) []map[string]any {
		return []map[string]any{{"no": 1, "sku": sku, "quantity": 1, "unit_price": 250}}
	}
	var ctlOut strings.Builder
	for i, c := range testCards {
		for _, form := range []string{c, spacedCard(c)} {
			doors := []struct {
				method, path string
				body         any
			}{
				{"POST", "/v1/members", map[string]any{"id": form, "name": "x"}},
				{"POST", "/v1/members", map[string]any{"id": fmt.Sprintf("mx%d", i), "aliases": []string{form}}},
				{"POST", "/v1/members", map[string]any{"id": fmt.Sprintf("my%d", i), "name": "Card " + form}},
				{"POST", "/v1/members", map[string]any{"id": fmt.Sprintf("mz%d", i), "contact": map[string]any{"phone": form}}},
				{"PUT", "/v1/members/m1/consent", map[string]any{"given": true, "channel": "in-store", "note": "card " + form}},
				{"GET", "/v1/members?alias=" + strings.ReplaceAll(form, " ", "+"), nil},
				{"GET", "/v1/members/" + c, nil},
				{"GET", "/v1/sales/" + c, nil},
				{"POST", "/v1/sales", map[string]any{"id": form, "lines": line("4006381333931")}},
				{"POST", "/v1/sales", map[string]any{"id": fmt.Sprintf("pos-a%d", i), "member": form, "lines": line("4006381333931")}},
				{"POST", "/v1/sales", map[string]any{"id": fmt.Sprintf("pos-b%d", i), "member_id": form, "lines": line("4006381333931")}},
				{"POST", "/v1/sales", map[string]any{"id": fmt.Sprintf("pos-c%d", i), "lines": line(form)}},
				{"POST", "/v1/sales/pos-ok/refund", map[string]any{"id": form}},
				{"POST", "/v1/sales/pos-ok/void", map[string]any{"id": fmt.Sprintf("void-%d", i), "reason": "card " + form}},
				{"POST", "/v1/checkout/item", map[string]any{"sku": form, "quantity": 1}},
				{"POST", "/v1/checkout/item", map[string]any{"sku": form, "quantity": 1, "price": 100, "name": "x"}},
				{"POST", "/v1/checkout/item", map[string]any{"sku": "999", "quantity": 1, "price": 100, "name": form}},
				{"POST", "/v1/checkout/member", map[string]any{"alias": form}},
			}
			for _, d := range doors {
				code, out := raw(d.method, d.path, d.body)
				if code < 400 {
					t.Errorf("%s %s with a card number: %d %s", d.method, d.path, code, out)
				}
				if bytes.Contains(out, []byte(c)) || bytes.Contains(out, []byte(spacedCard(c))) {
					t.Errorf("%s %s echoes the card number: %s", d.method, d.path, out)
				}
			}
		}
		r.scan(c)
		for _, args := range [][]string{{"member", "lookup", c}, {"member", "enrol", "-id", c, "-name", "x"}, {"void", "pos-ok", "-id", c}} {
			out, err := ctl(t, append([]string{"-addr", r.addr}, args...)...)
			if err == nil {
				t.Errorf("loyaltyctl %v with a card number succeeded: %s", args, out)
			}
			ctlOut.WriteString(out)
		}
	}
	raw("POST", "/v1/checkout/cancel", nil)
	exports := ""
	for _, p := range []string{"/v1/export/sales?format=csv", "/v1/export/sales?format=json", "/v1/export/members?format=csv", "/v1/export/members?format=json"} {
		code, out := raw("GET", p, nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", p, code, out)
		}
		exports += string(out)
	}
	// Everything recorded reached head office (the outbox is empty).
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, st := r.api("GET", "/v1/status", nil)
		if sy, _ := st["sync"].(map[string]any); sy != nil && sy["online"] == true && sy["pending"] == 0.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never drained: %v", st["sync"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := r.term(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	stopHQ()
	ledgerBytes, err := os.ReadFile(filepath.Join(r.dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	hqBytes, err := os.ReadFile(hqPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ledgerBytes, []byte("pos-ok")) || !bytes.Contains(hqBytes, []byte("pos-ok")) || !strings.Contains(exports, "pos-ok") {
		t.Fatal("the genuine sale is missing from the ledger, head office or the exports: the search below would prove nothing")
	}
	places := map[string][]byte{"daemon log": r.stderr.Bytes(), "loyaltyctl output": []byte(ctlOut.String()),
		"ledger file (and its outbox)": ledgerBytes, "exports": []byte(exports), "head office's store": hqBytes}
	for _, c := range testCards {
		for where, data := range places {
			if bytes.Contains(data, []byte(c)) || bytes.Contains(data, []byte(spacedCard(c))) {
				t.Errorf("%s holds test card %s", where, c[:4]+"...")
			}
		}
	}
}
