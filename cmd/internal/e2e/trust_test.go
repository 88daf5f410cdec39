package e2e_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// TestForgedHeadOfficeDocumentsRefused replays issue 10's hijack against
// the real daemon on a real mosquitto. Someone who can publish on head
// office's topics sends a member summary with sequence 2^64-1 that moves
// the member's card to another member with 2^40 points (unsigned, and
// signed with a key of their own) and a retained chain config with
// version 2^64-1. The register refuses all of them: the card stays with
// its member, nobody has points, the config in force does not move,
// status says why and /metrics counts them. Head office's next genuine
// document still applies (the forged retained config does not make it
// "stale").
func TestForgedHeadOfficeDocumentsRefused(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	r := newRegister(t)
	r.extraCfg = syncCfg(b.URL())
	r.start()
	enrol(t, r)
	if code, out := r.api("POST", "/v1/members", map[string]any{"id": "m2", "name": "Mallory", "aliases": []string{"+359888000002"}}); code != 201 {
		t.Fatalf("enrol m2: %d %v", code, out)
	}
	sync := func() map[string]any {
		_, st := r.api("GET", "/v1/status", nil)
		sy, _ := st["sync"].(map[string]any)
		return sy
	}
	waitSync := func(what string, cond func(map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if sy := sync(); sy != nil && cond(sy) {
				return sy
			}
			if time.Now().After(deadline) {
				t.Fatalf("sync never %s: %v\n%s", what, sync(), r.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSync("online", func(sy map[string]any) bool { return sy["online"] == true })

	attacker := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("mallory").SetAutoReconnect(false))
	if tok := attacker.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer attacker.Disconnect(100)
	send := func(topic string, retained bool, payload []byte) {
		t.Helper()
		if tok := attacker.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	members := protocol.MembersTopic("e2e-store")
	hijack := []byte(`{"v":1,"store":"e2e-store","seq":18446744073709551615,"members":[{"member_id":"m2","balance":1099511627776,` +
		`"spend_12m":0,"visits_12m":0,"member":{"id":"m2","name":"Mallory","aliases":["` + memberCard + `","+359888000002"]}}]}`)
	mallory, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	selfSigned, err := mallory.Seal(members, hijack)
	if err != nil {
		t.Fatal(err)
	}
	send(members, false, hijack)
	send(members, false, selfSigned)
	send(protocol.ChainConfigTopic(), true, []byte(`{"v":1,"scope":"chain","config_version":18446744073709551615,"rules":{"version":99,"unit":100,"earn":{"points_per_unit":1000},"rounding":"floor","round_per":"line"}}`))

	count := func(sy map[string]any, reason string) float64 {
		rf, _ := sy["refused"].(map[string]any)
		n, _ := rf[reason].(float64)
		return n
	}
	sy := waitSync("refused the forgeries", func(sy map[string]any) bool {
		return count(sy, "unsigned") >= 2 && count(sy, "unknown_key") >= 1
	})
	if e, _ := sy["members_error"].(string); !strings.Contains(e, "unknown key") && !strings.Contains(e, "not signed") {
		t.Errorf("members_error %q does not say why", e)
	}
	if e, _ := sy["config_error"].(string); !strings.Contains(e, "not signed") {
		t.Errorf("config_error %q does not say why", e)
	}
	if c, _ := sy["config"].(map[string]any); c["chain"] != 0.0 {
		t.Errorf("config in force moved: %v", c)
	}
	// Nothing changed: the card is Dana's, Mallory has no points.
	if code, out := r.api("GET", "/v1/members?alias="+memberCard, nil); code != 200 || out["member"].(map[string]any)["id"] != "m1" {
		t.Fatalf("card lookup: %d %v", code, out)
	}
	if code, out := r.api("GET", "/v1/members/m2", nil); code != 200 || out["balance"] != 0.0 {
		t.Fatalf("m2: %d %v", code, out)
	}
	if code, out := r.api("POST", "/v1/sales", map[string]any{"id": "pos-1", "member_id": "m2",
		"lines":       []map[string]any{{"no": 1, "sku": "4006381333931", "quantity": 20, "unit_price": 250}},
		"redemptions": []map[string]any{{"reward_id": "coffee"}}}); code != 409 || out["code"] != "insufficient_points" {
		t.Fatalf("redemption with forged points: %d %v", code, out)
	}
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`loyalty_sync_documents_refused_total{reason="unsigned"} 2`, `loyalty_sync_documents_refused_total{reason="unknown_key"} 1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Head office's genuine document still goes out over the forged
	// retained one and applies.
	cfg, err := hq.ParseConfig([]byte("version: 2\nrules:\n  version: 2\n  unit: 100\n  earn: {points_per_unit: 1}\n  rounding: floor\n  round_per: line\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := hq.PublishConfig(context.Background(), hq.Conn{Broker: b.URL(), WaitTimeout: 5 * time.Second}, hqKey, cfg); err != nil {
		t.Fatal(err)
	}
	waitSync("applied the genuine config", func(sy map[string]any) bool {
		c, _ := sy["config"].(map[string]any)
		return c["chain"] == 2.0
	})
}
