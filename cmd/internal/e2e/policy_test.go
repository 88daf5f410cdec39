package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// hqProc is a running loyalty-hq serve (the real binary).
type hqProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *lockedWriter
	status string // http://addr
	store  string
}

// startHQ writes a config (extra is appended) and starts loyalty-hq serve
// against the broker b with head office's client certificate.
func startHQ(t *testing.T, b *mosquittotest.Broker, certs *mosquittotest.Certs, extra string) *hqProc {
	t.Helper()
	dir := t.TempDir()
	certs.Client("loyalty-hq") // writes loyalty-hq.crt/.key into certs.Dir
	key := filepath.Join(dir, "hq-signing.key")
	if out, err := exec.Command(bins.hq, "keys", "generate", "-out", key).CombinedOutput(); err != nil {
		t.Fatalf("keys generate: %v\n%s", err, out)
	}
	addr := testkit.FreeAddr(t)
	h := &hqProc{t: t, log: &lockedWriter{w: &bytes.Buffer{}}, status: "http://" + addr, store: filepath.Join(dir, "hq.db")}
	cfg := fmt.Sprintf(`store: %s
broker:
  url: %s
  ca_file: %s
  cert_file: %s
  key_file: %s
  wait_timeout: 5s
status_addr: %s
signing_key_file: %s
summary_interval: 100ms
%s`, h.store, b.URL(), certs.CAFile, filepath.Join(certs.Dir, "loyalty-hq.crt"), filepath.Join(certs.Dir, "loyalty-hq.key"), addr, key, extra)
	path := filepath.Join(dir, "hq.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stop() })
	// A port another process took before loyalty-hq bound it is replaced
	// and loyalty-hq started again (testkit.FreeAddr).
	for try := 1; h.startOnce(path, try < testkit.PortTries); try++ {
		t.Logf("loyalty-hq: port %s taken by another process; trying another", addr)
		addr = testkit.MoveAddr(t, path, addr)
		h.status = "http://" + addr
	}
	return h
}

// startOnce runs loyalty-hq serve with the config at path and waits until
// it has subscribed, by its status page, and its log shows that page on
// h.status (so the answer is its own). It says whether loyalty-hq stopped
// because its port was taken (only when retry is set: else that fails the
// test).
func (h *hqProc) startOnce(path string, retry bool) (taken bool) {
	h.t.Helper()
	h.log = &lockedWriter{w: &bytes.Buffer{}}
	h.cmd = exec.Command(bins.hq, "serve", "-config", path)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	testkit.Eventually(h.t, 15*time.Second, "loyalty-hq status page", func() bool {
		if retry && testkit.PortTaken(h.logs()) {
			taken = true
			return true
		}
		var st map[string]any
		return h.get("/status", &st) == nil && st["service"].(map[string]any)["subscribed"] == true &&
			strings.Contains(h.logs(), h.status+"/status")
	})
	if taken {
		h.stop()
	}
	return taken
}

func (h *hqProc) get(path string, v any) error {
	resp, err := http.Get(h.status + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (h *hqProc) logs() string {
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	return h.log.w.String()
}

func (h *hqProc) stop() {
	if h.cmd.ProcessState != nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-done
	}
}

// forged is a register's credentials in an attacker's hands: it publishes
// outbox records as that register, with its client certificate.
type forged struct {
	t          *testing.T
	c          mqtt.Client
	store, reg string
	seq        uint64
	mu         sync.Mutex
	acks       []protocol.Ack
}

func newForged(t *testing.T, b *mosquittotest.Broker, certs *mosquittotest.Certs, store, reg string) *forged {
	t.Helper()
	f := &forged{t: t, store: store, reg: reg}
	o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(reg).SetTLSConfig(certs.Client(reg)).
		SetConnectTimeout(5 * time.Second)
	f.c = mqtt.NewClient(o)
	if tok := f.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as %s: %v", reg, tok.Error())
	}
	t.Cleanup(func() { f.c.Disconnect(100) })
	tok := f.c.Subscribe(protocol.AckTopic(store, reg), 1, func(_ mqtt.Client, m mqtt.Message) {
		if a, err := protocol.DecodeAck(m.Payload(), reg); err == nil {
			f.mu.Lock()
			f.acks = append(f.acks, a)
			f.mu.Unlock()
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe acks: %v", tok.Error())
	}
	// As a register of this release does: its status says which ack
	// notices it accepts, so head office sends it the policy notice.
	st, err := protocol.EncodeStatus(protocol.Status{Store: store, Register: reg, State: protocol.StateOnline, Notices: protocol.NoticeCodes})
	if err != nil {
		t.Fatal(err)
	}
	if tok := f.c.Publish(protocol.StatusTopic(store, reg), 1, true, st); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish status: %v", tok.Error())
	}
	return f
}

// send publishes data as the register's next outbox records.
func (f *forged) send(items ...any) {
	f.t.Helper()
	var evs []protocol.Event
	for _, it := range items {
		f.seq++
		var typ ledger.OutboxType
		switch v := it.(type) {
		case ledger.Member:
			typ = ledger.OutMember
		case ledger.Sale:
			typ = ledger.OutSale
			v.Register, v.Seq = f.reg, f.seq
			it = v
		case ledger.PointEvent:
			typ = ledger.OutPoints
			v.Register, v.Seq, v.ID = f.reg, f.seq, protocol.EventID(f.reg, f.seq)
			it = v
		default:
			f.t.Fatalf("send %T", it)
		}
		data, err := json.Marshal(it)
		if err != nil {
			f.t.Fatal(err)
		}
		rec := ledger.OutboxRecord{Seq: f.seq, ID: protocol.EventID(f.reg, f.seq), Type: typ, WallTime: time.Now().UTC(), ClockTrusted: true, Data: data}
		evs = append(evs, protocol.FromRecord(f.store, f.reg, rec))
	}
	b, err := protocol.EncodeEvents(evs)
	if err != nil {
		f.t.Fatal(err)
	}
	if tok := f.c.Publish(protocol.EventsTopic(f.store, f.reg), 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		f.t.Fatalf("publish: %v", tok.Error())
	}
}

func (f *forged) lastAck() (protocol.Ack, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.acks) == 0 {
		return protocol.Ack{}, false
	}
	return f.acks[len(f.acks)-1], true
}

type hqStatus struct {
	Service struct {
		PolicyHeld   uint64            `json:"policy_held"`
		PolicyHeldBy map[string]uint64 `json:"policy_held_by"`
	} `json:"service"`
	Registers []struct {
		Register   string `json:"register"`
		Watermark  uint64 `json:"watermark"`
		PolicyHeld uint64 `json:"policy_held"`
	} `json:"registers"`
}

type hqMember struct {
	Member  ledger.Member `json:"member"`
	Balance ledger.Points `json:"balance"`
}

// TestPolicyRefusesAStolenRegister: issue 10's "one register's credentials
// can mint points chain-wide", against the shipped ACL on a real mosquitto
// and the real loyalty-hq. As store1-r1 (its certificate) the attacker
// sends an adjust of +1,000,000,000 points, gives member m1's card to m2,
// reports 1,000,000 points earned on a 10.00 sale and "refunds" 5,000
// points m1 never redeemed; as store2-r1 it rewrites m1's profile, a
// member that never shopped in store2. Head office applies the
// registers' honest events, holds the five for review
// (GET /review and loyalty-hq review), counts them (GET /status), logs
// them, tells the register in its acks (notice "policy"), acknowledges
// the whole stream (nothing stalls) and changes no balance or card.
func TestPolicyRefusesAStolenRegister(t *testing.T) {
	acl, err := os.ReadFile("../../../configs/mosquitto.acl")
	if err != nil {
		t.Fatal(err)
	}
	certs := mosquittotest.NewCerts(t)
	b := mosquittotest.Start(t, &mosquittotest.Options{ACL: string(acl), TLS: certs.TLSOptions()})
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte("rules:\n  version: 1\n  earn: {points_per_unit: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHQ(t, b, certs, "policy:\n  rules_files: ["+rulesFile+"]\n")
	r := newForged(t, b, certs, "store1", "store1-r1")

	line := []ledger.Line{{No: 1, SKU: "4006381333931", Quantity: 1, UnitPrice: 1000}} // 10.00: 10 points at 1/unit
	// The register's honest life: two members, a sale earning 10, an
	// adjustment within the caps.
	r.send(
		ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"M00000001"}},
		ledger.Member{ID: "m2", Name: "Bob", Aliases: []string{"M00000002"}},
		ledger.Sale{ID: "s1", MemberID: "m1", Lines: line, Total: 1000, RuleVersion: 1},
		ledger.PointEvent{Kind: ledger.KindEarn, MemberID: "m1", Points: 10, SaleID: "s1", Line: 1, RuleVersion: 1},
		ledger.PointEvent{Kind: ledger.KindAdjust, MemberID: "m2", Points: 100, Reason: "goodwill", Operator: "ann"},
	)
	// The attacks.
	r.send(ledger.PointEvent{Kind: ledger.KindAdjust, MemberID: "m2", Points: 1_000_000_000, Reason: "x", Operator: "x"})
	r.send(ledger.Member{ID: "m2", Name: "Bob", Aliases: []string{"M00000002", "M00000001"}})
	r.send(
		ledger.Sale{ID: "s2", MemberID: "m2", Lines: line, Total: 1000, RuleVersion: 1},
		ledger.PointEvent{Kind: ledger.KindEarn, MemberID: "m2", Points: 1_000_000, SaleID: "s2", Line: 1, RuleVersion: 1},
	)
	r.send(ledger.PointEvent{Kind: ledger.KindReverse, MemberID: "m1", Points: 5000, SaleID: "s1", Reverses: "store1-r1-3", Reason: "refund f1"})
	r2 := newForged(t, b, certs, "store2", "store2-r1")
	r2.send(ledger.Member{ID: "m1", Name: "Mallory", Contact: ledger.Contact{Email: "mallory@example.com"}})

	var st hqStatus
	testkit.Eventually(t, 20*time.Second, "head office applies all 11 events and counts the 5 held", func() bool {
		if h.get("/status", &st) != nil || st.Service.PolicyHeld < 5 {
			return false
		}
		n := 0
		for _, rs := range st.Registers {
			if rs.Register == "store1-r1" && rs.Watermark == 10 || rs.Register == "store2-r1" && rs.Watermark == 1 {
				n++
			}
		}
		return n == 2
	})
	if by := st.Service.PolicyHeldBy; st.Service.PolicyHeld != 5 || by["adjust"] != 1 || by["alias"] != 1 || by["earn"] != 1 || by["reverse"] != 1 || by["profile"] != 1 {
		t.Errorf("status counters: %+v", st.Service)
	}
	for id, want := range map[string]ledger.Points{"m1": 10, "m2": 100} {
		var m hqMember
		if err := h.get("/members/"+id, &m); err != nil {
			t.Fatal(err)
		}
		if m.Balance != want {
			t.Errorf("%s balance at head office %d, want %d", id, m.Balance, want)
		}
		if id == "m2" && len(m.Member.Aliases) != 1 {
			t.Errorf("m2 got m1's card: aliases %v", m.Member.Aliases)
		}
		if id == "m1" && (m.Member.Name != "Ann" || m.Member.Contact.Email != "") {
			t.Errorf("store2 rewrote m1's profile: %+v", m.Member)
		}
	}
	var rv []struct {
		Register, Reason, Code, Text string
		Seq                          uint64
	}
	if err := h.get("/review", &rv); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range rv {
		if e.Reason != "policy" || e.Text == "" {
			t.Errorf("review entry %+v", e)
		}
		got[fmt.Sprintf("%s/%d", e.Register, e.Seq)] = e.Code
	}
	if want := map[string]string{"store1-r1/6": "adjust", "store1-r1/7": "alias", "store1-r1/9": "earn", "store1-r1/10": "reverse", "store2-r1/1": "profile"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("review %v, want %v", got, want)
	}
	testkit.Eventually(t, 10*time.Second, "an ack naming the held events", func() bool {
		a, ok := r.lastAck()
		return ok && a.Watermark == 10 && a.Notice != nil && a.Notice.Code == protocol.NoticePolicy && a.Notice.Held == 4
	})
	if logs := h.logs(); strings.Count(logs, "held for review by policy") != 5 {
		t.Errorf("head office's log should name each held event:\n%s", logs)
	}

	h.stop()
	out, err := exec.Command(bins.hq, "review", "-store", h.store).CombinedOutput()
	if err != nil {
		t.Fatalf("loyalty-hq review: %v\n%s", err, out)
	}
	for _, want := range []string{"policy:adjust", "policy:alias", "policy:earn", "policy:reverse", "policy:profile", "1000000000"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("loyalty-hq review lacks %q:\n%s", want, out)
		}
	}
	if out, err := exec.Command(bins.hq, "review", "dismiss", "-store", h.store, "store1-r1", "6").CombinedOutput(); err != nil {
		t.Fatalf("loyalty-hq review dismiss: %v\n%s", err, out)
	}
	if out, err := exec.Command(bins.hq, "review", "approve", "-store", h.store, "store1-r1", "6").CombinedOutput(); err == nil {
		t.Fatalf("approving a dismissed event succeeded:\n%s", out)
	}
	out, err = exec.Command(bins.hq, "review", "-json", "-store", h.store).CombinedOutput()
	if err != nil || strings.Contains(string(out), "1000000000") || strings.Count(string(out), `"reason": "policy"`) != 4 {
		t.Fatalf("review after dismissing the adjustment: %v\n%s", err, out)
	}

	// Everything head office holds about one member (GDPR art. 15/20).
	exp := filepath.Join(t.TempDir(), "out", "m2.json")
	if out, err := exec.Command(bins.hq, "members", "export", "-store", h.store, "-o", exp, "m2").CombinedOutput(); err != nil {
		t.Fatalf("members export: %v\n%s", err, out)
	}
	if fi, err := os.Stat(exp); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v, want mode 600", fi, err)
	}
	var doc struct {
		Member    ledger.Member
		Summary   struct{ Balance ledger.Points }
		Purchases []ledger.Purchase
		Held      []struct{ Code string } `json:"held_for_review"`
	}
	raw, _ := os.ReadFile(exp)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Member.Name != "Bob" || len(doc.Member.Aliases) != 1 || doc.Summary.Balance != 100 || len(doc.Purchases) != 1 || len(doc.Held) != 2 {
		t.Errorf("export of m2: %s", raw)
	}
	if out, err := exec.Command(bins.hq, "members", "export", "-store", h.store, "nobody").CombinedOutput(); err == nil {
		t.Errorf("export of an unknown member succeeded:\n%s", out)
	}
}

// TestPolicyPassesHonestRefundsAndProfiles: head office's reversal and
// profile checks against the real register's events, not forged ones. At
// r1 (store s1) m1 earns 200 points and redeems 150 of them; the redeeming
// sale is refunded in full (the 150 given back) and the earning sale
// voided; m1 gives consent at r1, then withdraws and gives it again at r2
// (store s2) after buying there. Head office holds none of it and ends at the register's
// balance.
func TestPolicyPassesHonestRefundsAndProfiles(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	h := startHQBinary(t, b)
	r1 := syncRegisterAt(t, b, "s1", "r1")
	r1.start()
	enrolAPI(t, r1, "m1", "")
	saleAPI(t, r1, "earn-1", "m1", 20000) // 200 points
	code, m := r1.api("POST", "/v1/sales", map[string]any{"id": "redeem-1", "member_id": "m1",
		"lines":       []map[string]any{{"no": 1, "sku": "X", "quantity": 1, "unit_price": 1000}},
		"redemptions": []map[string]any{{"reward_id": "voucher"}}})
	if code != 201 {
		t.Fatalf("redeem: %d %v", code, m)
	}
	if code, m := r1.api("POST", "/v1/sales/redeem-1/refund", map[string]any{"id": "refund-1"}); code != 201 && code != 200 {
		t.Fatalf("refund of the redeeming sale: %d %v", code, m)
	}
	if code, m := r1.api("POST", "/v1/sales/earn-1/void", map[string]any{"id": "void-1", "reason": "wrong member"}); code != 201 && code != 200 {
		t.Fatalf("void of the earning sale: %d %v", code, m)
	}
	if code, m := r1.api("PUT", "/v1/members/m1/consent", map[string]any{"given": true, "channel": "in-store"}); code != 200 && code != 201 {
		t.Fatalf("consent at r1: %d %v", code, m)
	}
	waitStatus(t, r1, "drained", drained)
	r2 := syncRegisterAt(t, b, "s2", "r2")
	r2.start()
	testkit.Eventually(t, 20*time.Second, "r2 learns m1 by its card", func() bool {
		code, _ := r2.api("GET", "/v1/members?alias=m1", nil)
		return code == 200
	})
	saleAPI(t, r2, "s2-1", "m1", 1000)
	if code, m := r2.api("PUT", "/v1/members/m1/consent", map[string]any{"given": false, "channel": "in-store"}); code != 200 && code != 201 {
		t.Fatalf("consent withdrawn at r2: %d %v", code, m)
	}
	if code, m := r2.api("PUT", "/v1/members/m1/consent", map[string]any{"given": true, "channel": "in-store", "note": "again"}); code != 200 && code != 201 {
		t.Fatalf("consent at r2: %d %v", code, m)
	}
	waitStatus(t, r2, "drained", drained)
	want := memberBalance(r2, "m1")
	testkit.Eventually(t, 20*time.Second, "head office at the register's balance", func() bool { return h.balance("m1") == want })
	if st := h.serviceStatus(); st["policy_held"].(float64) != 0 {
		t.Fatalf("head office held honest events: %v\n%s", st, h.stderr)
	}
	if want != 10 { // 200 - 150 + 150 - 200 + 10
		t.Errorf("m1's balance %v, want 10", want)
	}
}
