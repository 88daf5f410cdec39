package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// TestMemberErasure is GDPR article 17 on the real binaries and a real
// mosquitto: a member enrolled at a register with phone, e-mail, birthday
// and a card buys; head office erases the member (`loyalty-hq members
// erase`); serve sends its signed erase document; the register erases the
// member and confirms. Afterwards the register's ledger file bytes, its
// /v1/export/members, head office's store file and `members export` hold
// none of the personal data; the sales and both balances are intact; both
// sides' Check pass; a forged erase document (another key) naming another
// member is refused and changes nothing.
func TestMemberErasure(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	h := startHQBinary(t, b)
	r := syncRegisterAt(t, b, "s1", "r1")
	r.start()
	pii := []string{"Greta Erasable", "+4915100000077", "greta@example.org", "1981-03-14", "CARD-GRETA-7"}
	enrol := func(id, name, card, phone, email, birthday string) {
		t.Helper()
		body := map[string]any{"id": id, "name": name, "aliases": []string{card}, "birthday": birthday,
			"contact": map[string]any{"phone": phone, "email": email}}
		if code, m := r.api("POST", "/v1/members", body); code != 201 && code != 200 {
			t.Fatalf("enrol %s: %d %v", id, code, m)
		}
	}
	enrol("m-erase", pii[0], pii[4], pii[1], pii[2], pii[3])
	enrol("m-keep", "Karl Kept", "CARD-KARL-1", "+4915100000011", "karl@example.org", "1970-01-02")
	if code, m := r.api("PUT", "/v1/members/m-erase/consent", map[string]any{"given": true, "channel": "in-store"}); code != 200 {
		t.Fatalf("consent: %d %v", code, m)
	}
	saleAPI(t, r, "erase-sale-1", "m-erase", 1000)
	saleAPI(t, r, "erase-sale-2", "m-erase", 2500)
	saleAPI(t, r, "keep-sale-1", "m-keep", 1000)
	waitStatus(t, r, "drained", drained)
	before := memberBalance(r, "m-erase")
	testkit.Eventually(t, 10*time.Second, "head office's balance", func() bool { return h.balance("m-erase") == before })
	if before <= 0 {
		t.Fatalf("balance %v: the test needs points", before)
	}

	// A forged erase document (another key) naming m-keep: refused, and
	// nothing changes.
	mallory, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := protocol.EncodeErase(protocol.EraseDoc{Store: "s1", Erasures: []protocol.Erasure{{N: 1, Member: "m-keep"}}})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := mallory.Seal(protocol.EraseTopic("s1"), doc)
	if err != nil {
		t.Fatal(err)
	}
	attacker := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("mallory").SetAutoReconnect(false))
	if tok := attacker.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer attacker.Disconnect(100)
	for _, msg := range [][]byte{forged, doc} { // signed by another key; unsigned
		if tok := attacker.Publish(protocol.EraseTopic("s1"), 1, false, msg); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	waitStatus(t, r, "refusing the forged erase documents", func(sy map[string]any) bool {
		ref, _ := sy["refused"].(map[string]any)
		return ref != nil && ref["unknown_key"].(float64) >= 1 && ref["unsigned"].(float64) >= 1
	})
	if code, m := r.api("GET", "/v1/members/m-keep", nil); code != 200 || m["member"].(map[string]any)["name"] != "Karl Kept" {
		t.Fatalf("the forged document changed m-keep: %d %v", code, m)
	}

	// The erasure at head office (bbolt: serve stopped), then serve again.
	h.term()
	out, err := exec.Command(bins.hq, "members", "erase", "-config", h.cfgPath, "-by", "dpo", "m-erase").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "waiting for 1 register(s) to confirm: r1") {
		t.Fatalf("members erase: %v\n%s", err, out)
	}
	h.start()
	testkit.Eventually(t, 20*time.Second, "the register's confirmation at head office", func() bool {
		st := h.serviceStatus()
		return st["erasures"] == float64(1) && st["erasures_pending"] == nil
	})
	var fleet struct {
		Erasures []any `json:"erasures_pending"`
	}
	if h.get("/fleet", &fleet); len(fleet.Erasures) != 0 {
		t.Errorf("fleet page still lists erasures waiting: %v", fleet.Erasures)
	}
	waitStatus(t, r, "drained after the erasure", drained)

	// The register: member bare, export clean, balance and sales intact.
	code, m := r.api("GET", "/v1/members/m-erase", nil)
	if code != 200 || m["balance"] != before || m["member"].(map[string]any)["name"] != "" {
		t.Fatalf("register's member after erasure: %d %v (balance before %v)", code, m, before)
	}
	if code, _ := r.api("GET", "/v1/members/"+pii[4], nil); code == 200 {
		t.Errorf("the erased member's card still finds a member")
	}
	resp, err := http.Get("http://" + r.addr + "/v1/export/members?format=json")
	if err != nil {
		t.Fatal(err)
	}
	export, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp, err = http.Get("http://" + r.addr + "/v1/export/sales?format=json")
	if err != nil {
		t.Fatal(err)
	}
	sales, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range []string{"erase-sale-1", "erase-sale-2", "keep-sale-1"} {
		if !bytes.Contains(sales, []byte(s)) {
			t.Errorf("sale %s missing from the register's export after the erasure", s)
		}
	}
	if !bytes.Contains(export, []byte("Karl Kept")) {
		t.Fatalf("the members export does not hold the kept member: the scan proves nothing\n%s", export)
	}
	hqBefore := h.balance("m-erase")
	if hqBefore != before {
		t.Errorf("head office's balance %v after erasure, want %v", hqBefore, before)
	}
	h.term()
	l := stopAndOpen(t, r) // Check passes
	if got, err := l.Balance("m-erase"); err != nil || float64(got) != before {
		t.Errorf("ledger balance %v %v, want %v", got, err, before)
	}
	l.Close()
	raw, err := os.ReadFile(filepath.Join(r.dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}

	// Head office: store file, Check, export.
	hqFile := filepath.Join(h.dir, "hq.db")
	hqRaw, err := os.ReadFile(hqFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := hqstore.Open(hqFile, &hqstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(); err != nil {
		t.Errorf("head office Check: %v", err)
	}
	e, err := st.ErasureOf("m-erase")
	if err != nil || len(e.Pending()) != 0 || e.Confirmed["r1"] == 0 {
		t.Errorf("erasure record %+v %v", e, err)
	}
	if ps, err := st.Purchases("m-erase"); err != nil || len(ps) != 2 {
		t.Errorf("head office's purchases of the erased member: %d %v", len(ps), err)
	}
	st.Close()
	hqExport, err := exec.Command(bins.hq, "members", "export", "-store", hqFile, "m-erase").CombinedOutput()
	if err != nil || !strings.Contains(string(hqExport), `"erased"`) {
		t.Fatalf("members export: %v\n%s", err, hqExport)
	}
	var ex struct {
		Summary struct {
			Balance float64 `json:"balance"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(hqExport, &ex); err != nil || ex.Summary.Balance != before {
		t.Errorf("export balance %v (%v), want %v", ex.Summary.Balance, err, before)
	}
	for name, b := range map[string][]byte{"register's ledger file": raw, "register's /v1/export/members": export,
		"head office's store file": hqRaw, "head office's members export": hqExport} {
		for _, p := range pii {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s still holds %q", name, p)
			}
		}
	}
	if !bytes.Contains(raw, []byte("Karl Kept")) || !bytes.Contains(hqRaw, []byte("Karl Kept")) {
		t.Fatal("the file scans saw nothing (the kept member's name should be in both files)")
	}
}
