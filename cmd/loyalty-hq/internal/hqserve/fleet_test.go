package hqserve_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqserve"
	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

const chromiumPath = "/usr/bin/chromium"

// TestChromiumFleetPage runs head office on a real broker with four
// registers as the broker sees them: r1 online, silent at first (so
// diagnosed), then streaming, behind head office by 6 events, with a
// double spend, and no longer diagnosed; r2 offline (its last will);
// r3 online with events pending that never arrive (the ACL drops them);
// r4 online and saying itself why nothing is acknowledged, with an error
// text carrying markup. Headless Chromium shows each register's state,
// lag, software, config versions, error and diagnosis, the chain totals
// and the double-spend list, and the register's markup as text.
func TestChromiumFleetPage(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.Missing(t, "chromium", chromiumPath+" not found; make testdeps installs it")
	}
	b := mosquittotest.Start(t, nil)
	cfg, err := hqserve.Parse("test.yaml", []byte("store: "+filepath.Join(t.TempDir(), "hq.db")+
		"\nbroker: {url: '"+b.URL()+"', wait_timeout: 2s}\nstatus_addr: 127.0.0.1:0\nfleet_silence: 3s\noffline_redeem_limit: 0\nsigning_key_file: "+keyFile(t)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- hqserve.Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addr <- a })
	}()
	t.Cleanup(func() { cancel(); <-done })
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve not ready")
	}

	testkit.Eventually(t, 10*time.Second, "head office subscribed", func() bool {
		resp, err := http.Get(base + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st hqserve.StatusDoc
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Service.Subscribed
	})
	o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("fleet-test").SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	pub := func(topic string, retained bool, payload []byte) {
		t.Helper()
		if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	status := func(s protocol.Status) {
		t.Helper()
		b, err := protocol.EncodeStatus(s)
		if err != nil {
			t.Fatal(err)
		}
		pub(protocol.StatusTopic(s.Store, s.Register), true, b)
	}
	// Every status first. r1 says it has 10 events pending and head office
	// has none of them: once the fleet silence has passed since head
	// office started, r1 is diagnosed like r3.
	status(protocol.Status{Store: "s1", Register: "r1", State: protocol.StateOnline, Pending: 10, Published: 10, Software: "1.2.3",
		Config: &protocol.StatusConfig{Chain: 3, Store: 7}, ClockTrusted: true})
	status(protocol.Status{Store: "s1", Register: "r2", State: protocol.StateOffline, Pending: 2, Watermark: 5, Software: "1.2.2",
		LastError: "connection lost: EOF"})
	status(protocol.Status{Store: "s2", Register: "r3", State: protocol.StateOnline, Pending: 6, Published: 6, Software: "1.2.3"})
	status(protocol.Status{Store: "s2", Register: "r4", State: protocol.StateOnline, Pending: 6, Published: 6, Software: "1.2.3",
		LastError: "<script>alert(1)</script>", Fault: "connected, 6 sent, no acknowledgement for 5m0s: check this register's certificate identity"})

	var doc hqserve.FleetDoc
	defer func() {
		if t.Failed() {
			b, _ := json.MarshalIndent(doc, "", " ")
			t.Logf("last fleet data: %s", b)
		}
	}()
	fleet := func() bool {
		resp, err := http.Get(base + "/fleet")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		doc = hqserve.FleetDoc{}
		return json.NewDecoder(resp.Body).Decode(&doc) == nil && len(doc.Registers) == 4
	}
	testkit.Eventually(t, 15*time.Second, "silent registers diagnosed", func() bool {
		return fleet() && doc.Registers[0].Diagnosis != "" && doc.Registers[2].Diagnosis != ""
	})
	if r1 := doc.Registers[0]; r1.Register != "r1" || r1.Watermark != 0 || !strings.Contains(r1.Diagnosis, "has not moved") {
		t.Fatalf("r1 before its events: %+v", r1)
	}

	// r1: 4 events at head office (m1 adjusted +10 three times, then -50
	// redeemed: a double spend of 20), 10 recorded at the register. r1's
	// silence is measured from the first read of the store that sees its
	// watermark move: this poll's own read, or head office's 5 s ticker
	// shortly before it. The watermark and the double spend are applied in
	// one transaction, so the poll that first sees both finds r1 streaming,
	// not diagnosed, whenever they arrive, unless the poll came 3 s (the
	// fleet silence) after that read: a test process stalled that long on a
	// loaded machine. The doc says both times (r1's last_seen is when its
	// watermark moved, after its status; at is the doc's), so r1's
	// diagnosis is checked against them instead of against the clock.
	var evs []protocol.Event
	for seq, pts := range []ledger.Points{10, 10, 10, -50} {
		s := uint64(seq + 1)
		kind := ledger.KindAdjust // within head office's policy caps
		if pts < 0 {
			kind = ledger.KindRedeem
		}
		data, _ := json.Marshal(ledger.PointEvent{ID: protocol.EventID("r1", s), Register: "r1", Seq: s, Kind: kind, MemberID: "m1", Points: pts})
		e := protocol.FromRecord("s1", "r1", ledger.OutboxRecord{Seq: s, Type: ledger.OutPoints, WallTime: time.Now(), ClockTrusted: true, Data: data})
		e.Incarnation = "0123456789abcdef0123456789abcdef"
		evs = append(evs, e)
	}
	batch, err := protocol.EncodeEvents(evs)
	if err != nil {
		t.Fatal(err)
	}
	pub(protocol.EventsTopic("s1", "r1"), false, batch)
	testkit.Eventually(t, 15*time.Second, "r1's events applied", func() bool {
		return fleet() && doc.Registers[0].Watermark == 4 && doc.Totals.DoubleSpends == 1
	})
	r1, r3 := doc.Registers[0], doc.Registers[2]
	if r1.Register != "r1" || r1.Lag != 6 || r1.State != "online" || r1.ConfigStore != 7 || r1.LastSeen.IsZero() {
		t.Fatalf("r1: %+v", r1)
	}
	diagnosed := 2 // r3 and r4
	if silent := doc.At.Sub(r1.LastSeen); silent < 3*time.Second {
		if r1.Diagnosis != "" {
			t.Fatalf("r1 diagnosed %v after its watermark moved: %+v", silent, r1)
		}
	} else {
		t.Logf("the poll came %v after r1's watermark moved (a stalled test process): r1 is diagnosed again", silent)
		if !strings.Contains(r1.Diagnosis, "has not moved") {
			t.Fatalf("r1 not diagnosed %v after its watermark moved: %+v", silent, r1)
		}
		diagnosed++
	}
	if r3.Register != "r3" || !strings.Contains(r3.Diagnosis, "certificate identity") || r3.Lag != 6 {
		t.Fatalf("r3: %+v", r3)
	}
	if tt := doc.Totals; tt.Registers != 4 || tt.Online != 3 || tt.Offline != 1 || tt.Pending != 24 || tt.Diagnosed != diagnosed {
		t.Fatalf("totals %+v", tt)
	}

	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	cmd := exec.CommandContext(cctx, chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=2000", "--dump-dom", base+"/")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{
		`data-registers="4"`, `data-connected-registers="3"`, `data-pending="24"`, `data-double-spends="1"`,
		`data-register="r1" data-state="online" data-lag="6"`, "1.2.3", "3 / 7",
		`data-register="r2" data-state="offline"`, "connection lost: EOF",
		`data-register="r3" data-state="online" data-lag="6"`, "head office's watermark has not moved",
		"the register says: connected, 6 sent", "&lt;script&gt;alert(1)&lt;/script&gt;",
		`data-member="m1" data-overdraft="20"`, "broker\nconnected",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script>alert") {
		t.Error("a register's text became markup")
	}
	if t.Failed() {
		t.Log(dom)
	}
}
