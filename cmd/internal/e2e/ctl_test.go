package e2e_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/internal/apiclient"
)

// TestLoyaltyctlAgainstDaemon drives the real loyaltyctl against the real
// daemon with --json, as a script would.
func TestLoyaltyctlAgainstDaemon(t *testing.T) {
	r := newRegister(t)
	r.socket = filepath.Join(r.dir, "api.sock")
	r.start()
	api := "http://" + r.addr
	run := func(args ...string) map[string]any {
		t.Helper()
		out, err := ctl(t, append([]string{"-addr", api, "-json"}, args...)...)
		var m map[string]any
		if jerr := json.Unmarshal([]byte(out), &m); jerr != nil {
			t.Fatalf("loyaltyctl %v: not JSON (%v, %v): %s", args, err, jerr, out)
		}
		return m
	}
	if m := run("member", "enrol", "-id", "m7", "-name", "Ivan", "-alias", memberCard, "-phone", "+359888000007", "-lang", "bg"); m["balance"].(float64) != 0 {
		t.Fatalf("enrol: %v", m)
	}
	if m := run("member", "lookup", "+359888000007"); apiclient.Field(m, "member", "id") != "m7" {
		t.Fatalf("lookup by phone: %v", m)
	}
	m := run("sale", "-id", "pos-9", "-member", memberCard, "4006381333931:4:250", "9780201379624:1:4999")
	if m["balance"].(float64) != 59 || m["replayed"] != false {
		t.Fatalf("sale: %v", m)
	}
	if m := run("sale", "-id", "pos-9", "-member", memberCard, "4006381333931:4:250", "9780201379624:1:4999"); m["replayed"] != true || m["balance"].(float64) != 59 {
		t.Fatalf("sale again: %v", m)
	}
	if m := run("refund", "pos-9", "-id", "rf-9", "2:1"); m["balance"].(float64) != 10 {
		t.Fatalf("refund line 2: %v", m)
	}
	if m := run("refund", "pos-9", "-id", "rf-10", "2:1"); m["code"] != "refund_exceeds_sale" {
		t.Fatalf("second refund of line 2: %v", m)
	}
	if m := run("member", "consent", "m7", "-given"); apiclient.Field(m, "member", "consent", "given") != true {
		t.Fatalf("consent: %v", m)
	}
	if m := run("scan", "4006381333931"); m["code"] != "no_simulated_device" {
		t.Fatalf("scan without simulated scanner: %v", m)
	}
	out, err := ctl(t, "-addr", api, "-quiet", "export", "members", "-format", "csv", "-o", filepath.Join(t.TempDir(), "m.csv"))
	if err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	out, err = ctl(t, "-addr", api, "export", "sales", "-format", "json")
	if err != nil || strings.Count(out, `"id":"pos-9"`) != 1 {
		t.Fatalf("export sales json: %v %s", err, out)
	}
	// the unix socket is local: served without a token
	if out, err := ctl(t, "-socket", r.socket, "-json", "member", "lookup", memberCard); err != nil || !strings.Contains(out, `"id": "m7"`) {
		t.Fatalf("over the unix socket: %v %s", err, out)
	}
	// the member's statement explains the balance; refunds are exported and
	// shown with their sale
	st := run("member", "statement", memberCard)
	if lines, _ := st["lines"].([]any); len(lines) < 3 || st["balance"] != st["local"] || st["balance"].(float64) != 10 {
		t.Fatalf("statement: %v", st)
	}
	if out, err := ctl(t, "-addr", api, "member", "statement", memberCard); err != nil || !strings.Contains(out, "reverse") || !strings.Contains(out, "refund rf-9") {
		t.Fatalf("statement (text): %v %s", err, out)
	}
	if out, err := ctl(t, "-addr", api, "export", "refunds", "-format", "json"); err != nil || strings.Count(out, `"id":"rf-9"`) != 1 {
		t.Fatalf("export refunds: %v %s", err, out)
	}
	if out, err := ctl(t, "-addr", api, "export", "events"); err != nil || !strings.Contains(out, "event_id,") || !strings.Contains(out, ",reverse,") {
		t.Fatalf("export events: %v %s", err, out)
	}
	// flags after the arguments, and the refund prints what was refunded
	// (line 1: 4 x 2.50), not the sale's total
	if out, err := ctl(t, "-addr", api, "refund", "pos-9", "1:4", "-id", "rf-11"); err != nil || !strings.Contains(out, "refund rf-11 of sale pos-9: 1 line(s), amount 1000 (minor units)") {
		t.Fatalf("refund with flags last: %v %s", err, out)
	}
	// -h on a subcommand is help, exit 0, and does nothing
	if out, err := ctl(t, "-addr", api, "member", "lookup", "-h"); err != nil || !strings.Contains(out, "usage: loyaltyctl member lookup ALIAS") {
		t.Fatalf("member lookup -h: %v %s", err, out)
	}
	// a bad line is refused before anything is sent
	if out, err := ctl(t, "-addr", api, "sale", "-id", "x", "4006381333931:zero:250"); err == nil || !strings.Contains(out, "sku:quantity:unit_price") {
		t.Fatalf("bad line: %v %s", err, out)
	}
}
