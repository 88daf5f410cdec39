package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// TestHeadOfficeConfigApplied publishes, as head office does, a new rule
// set (chain document) and a new catalogue (store document) retained on a
// real mosquitto: the real daemon applies both (a scanned article costs
// the new price and earns the new rate); after a restart the retained
// copies are recognised, not reported as rejected; a refused document is
// reported in status and the previous config stays in force.
func TestHeadOfficeConfigApplied(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	conn := hq.Conn{Broker: b.URL(), WaitTimeout: 5 * time.Second}
	publish := func(doc string) {
		t.Helper()
		cfg, err := hq.ParseConfig([]byte(doc), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := hq.PublishConfig(context.Background(), conn, hqKey, cfg); err != nil {
			t.Fatal(err)
		}
	}
	r := newRegister(t)
	r.extraCfg = syncCfg(b.URL())
	r.start()
	enrol(t, r)

	status := func() map[string]any {
		_, st := r.api("GET", "/v1/status", nil)
		sy, _ := st["sync"].(map[string]any)
		return sy
	}
	waitConfig := func(what string, cond func(sy map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			sy := status()
			if sy != nil && cond(sy) {
				return sy
			}
			if time.Now().After(deadline) {
				t.Fatalf("config never %s: %v\n%s", what, sy, r.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	versions := func(sy map[string]any) (chain, store float64) {
		c, _ := sy["config"].(map[string]any)
		ch, _ := c["chain"].(float64)
		s, _ := c["store"].(float64)
		return ch, s
	}
	// Before: the local config prices the pen at 2.50, 1 point per unit.
	sale := func(wantTotal, wantEarned float64) (receipt map[string]any) {
		t.Helper()
		r.scan("4006381333931")
		r.scan(memberCard)
		r.scan("*TOTAL*")
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, v := r.api("GET", "/v1/checkout", nil)
			if v["state"] == "receipt" && v["completed"] != nil {
				if v["total"] != wantTotal || v["earned"] != wantEarned {
					t.Fatalf("sale: total %v earned %v, want %v and %v", v["total"], v["earned"], wantTotal, wantEarned)
				}
				receipt = v
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sale never completed: %v\n%s", v, r.logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
		r.scan("*CANCEL*") // leave the receipt for the next sale
		deadline = time.Now().Add(10 * time.Second)
		for {
			if _, v := r.api("GET", "/v1/checkout", nil); v["state"] != "receipt" {
				return receipt
			}
			if time.Now().After(deadline) {
				t.Fatal("receipt never left")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	sale(250, 2)

	publish(`version: 2
rules:
  version: 2
  unit: 100
  earn:
    points_per_unit: 3
  rounding: floor
  round_per: line
  rewards:
    - id: coffee
      name: Free coffee
      points: 10
      discount: 300
`)
	publish(`scope: store
store: e2e-store
version: 7
catalogue:
  - sku: "4006381333931"
    name: Stabilo pen
    price: 400
    category: stationery
`)
	waitConfig("applied", func(sy map[string]any) bool { c, s := versions(sy); return c == 2 && s == 7 })
	sale(400, 12) // 4 units at 3 points

	// A refused document (a rule set older than the one in force): the
	// reason is in status, the previous config stays in force.
	publish(`version: 3
rules:
  version: 1
  unit: 100
  earn:
    points_per_unit: 9
  rounding: floor
  round_per: line
`)
	sy := waitConfig("refused", func(sy map[string]any) bool { e, _ := sy["config_error"].(string); return e != "" })
	if e := sy["config_error"].(string); !strings.Contains(e, "older") {
		t.Errorf("config_error %q does not say why", e)
	}
	if c, s := versions(sy); c != 2 || s != 7 {
		t.Errorf("versions after a refused document: chain %v store %v, want 2 and 7", c, s)
	}
	sale(400, 12)

	// A newer good chain document replaces the refused one.
	publish(`version: 4
rules:
  version: 3
  unit: 100
  earn:
    points_per_unit: 2
  rounding: floor
  round_per: line
  rewards:
    - id: cake
      name: Birthday cake
      points: 5000
      discount: 2500
`)
	sy = waitConfig("chain 4", func(sy map[string]any) bool { c, _ := versions(sy); return c == 4 })
	if e, _ := sy["config_error"].(string); e != "" {
		t.Errorf("config_error after a good document: %q", e)
	}
	// head office's rewards are the ones offered at the till
	if v := sale(400, 8); v["next_reward"] != "Birthday cake" {
		t.Errorf("next reward %v, want head office's Birthday cake", v["next_reward"])
	}
	if !strings.Contains(r.logs(), "config applied") {
		t.Fatalf("no config applied in the log: the check after the restart would prove nothing\n%s", r.logs())
	}

	// A restart: the retained documents (chain 4, store 7) are recognised
	// as in force, neither applied again nor reported as rejected.
	if _, err := r.term(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, r.logs())
	}
	r.start()
	sy = waitConfig("online after the restart", func(sy map[string]any) bool { return sy["online"] == true })
	if c, s := versions(sy); c != 4 || s != 7 {
		t.Errorf("versions after restart: chain %v store %v, want 4 and 7", c, s)
	}
	// also gives the retained copies time to arrive
	if v := sale(400, 8); v["next_reward"] != "Birthday cake" {
		t.Errorf("next reward after the restart %v, want head office's Birthday cake", v["next_reward"])
	}
	sy = status()
	if e, _ := sy["config_error"].(string); e != "" {
		t.Errorf("config_error after the restart: %q", e)
	}
	if strings.Contains(r.logs(), "config applied") || strings.Contains(r.logs(), "config rejected") {
		t.Errorf("retained documents handled again after the restart\n%s", r.logs())
	}
}

// TestCheckoutTimeoutsFromConfig: checkout.receipt_for from the config
// reaches the daemon (the default would hold the receipt for 30 s).
func TestCheckoutTimeoutsFromConfig(t *testing.T) {
	r := newRegister(t)
	r.extraCfg = "checkout:\n  receipt_for: 1s\n  abandon_after: 10s\n"
	r.start()
	r.scan("4006381333931")
	r.scan("*TOTAL*")
	t0 := time.Now()
	deadline := t0.Add(10 * time.Second)
	seen := false
	for {
		_, v := r.api("GET", "/v1/checkout", nil)
		if v["state"] == "receipt" {
			seen = true
		} else if seen && v["state"] == "idle" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receipt not left within 10 s with receipt_for 1s (seen %v): %v", seen, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
