package uplink_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

func publisher(t *testing.T, url string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("office").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c mqtt.Client, topic string, retained bool, payload []byte) {
	t.Helper()
	if tp, err := protocol.ParseTopic(topic); err == nil && (tp.Kind == protocol.KindConfig || tp.Kind == protocol.KindMembers) {
		payload = sealed(topic, payload)
	}
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func storeConfig(v uint64, price ledger.Money) []byte {
	b, err := protocol.EncodeConfig(protocol.Config{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: v,
		Catalogue: []protocol.Product{{SKU: "4006381333931", Name: "pen", Price: price}}})
	if err != nil {
		panic(err)
	}
	return b
}

// TestConfigDownstream: over a real broker, only valid, newer configs reach
// the callback; everything else is reported and the one in force stays.
func TestConfigDownstream(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1")
	var mu sync.Mutex
	var applied []uint64
	failNext := false
	onConfig := func(ctx context.Context, c protocol.Config) error {
		mu.Lock()
		defer mu.Unlock()
		if c.Scope == protocol.ScopeChain {
			return nil // markers only, see below
		}
		if failNext {
			failNext = false
			return errors.New("catalogue refused")
		}
		applied = append(applied, c.ConfigVersion)
		items := make([]ledger.Item, len(c.Catalogue))
		for i, p := range c.Catalogue {
			items[i] = ledger.Item{SKU: p.SKU, Name: p.Name, Price: p.Price, Category: p.Category}
		}
		return l.PutCatalogue(ctx, int(c.ConfigVersion), items)
	}
	office := publisher(t, b.URL())
	// A retained config is waiting before the register connects.
	publish(t, office, protocol.StoreConfigTopic("s1"), true, storeConfig(2, 250))
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnConfig: onConfig})
	testkit.Eventually(t, wait, "retained config applied", func() bool { return u.Status().Config.Store == 2 })

	steps := []struct {
		name    string
		payload []byte
		want    uint64 // version in force after
		errHas  string // substring of Status().ConfigError, "" = no error
		fail    bool
		// replay: refused as older than the version in force, counted,
		// and not shown as an error (the config in force is fine)
		replay bool
	}{
		{"replay of the same version is ignored", storeConfig(2, 250), 2, "", false, false},
		{"older version is out of order", storeConfig(1, 100), 2, "", false, true},
		{"malformed json", []byte(`{"v":1,"scope":"store",`), 2, "malformed", false, false},
		{"unknown protocol version", []byte(`{"v":7,"scope":"store","store":"s1","config_version":9}`), 2, "unsupported version", false, false},
		{"oversize", []byte(`{"v":1,"x":"` + strings.Repeat("a", protocol.MaxConfigSize) + `"}`), 2, "too large", false, false},
		{"other store's document", []byte(`{"v":1,"scope":"store","store":"s9","config_version":9}`), 2, "does not match", false, false},
		{"callback refuses", storeConfig(3, 300), 2, "catalogue refused", true, false},
		{"newer valid config", storeConfig(4, 400), 4, "", false, false},
	}
	var marker uint64
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			mu.Lock()
			failNext = st.fail
			mu.Unlock()
			before := u.Status()
			publish(t, office, protocol.StoreConfigTopic("s1"), false, st.payload)
			if st.errHas == "" {
				if st.want == u.Status().Config.Store {
					// A no-op: messages are applied one at a time in order, so
					// once a later chain marker is in force this one was seen.
					marker++
					publish(t, office, protocol.ChainConfigTopic(), false, fmt.Appendf(nil, `{"v":1,"scope":"chain","config_version":%d}`, marker))
					testkit.Eventually(t, wait, "chain marker", func() bool { return u.Status().Config.Chain == marker })
				}
				testkit.Eventually(t, wait, "version in force", func() bool { return u.Status().Config.Store == st.want })
				s := u.Status()
				if s.ConfigError != "" {
					t.Fatalf("config error %q", s.ConfigError)
				}
				if st.replay && (s.Refused.Replayed != before.Refused.Replayed+1 || s.Rejected != before.Rejected+1) {
					t.Fatalf("replay counted %d -> %d, rejected %d -> %d; want one more each",
						before.Refused.Replayed, s.Refused.Replayed, before.Rejected, s.Rejected)
				}
				return
			}
			testkit.Eventually(t, wait, "rejection reported", func() bool { return u.Status().Rejected > before.Rejected })
			s := u.Status()
			if !strings.Contains(s.ConfigError, st.errHas) {
				t.Fatalf("ConfigError %q, want it to mention %q", s.ConfigError, st.errHas)
			}
			if s.Config.Store != st.want {
				t.Fatalf("version in force %d, want %d", s.Config.Store, st.want)
			}
			if st.name == "unknown protocol version" && s.Refused.Version != 1 {
				t.Fatalf("refused %+v, want version 1", s.Refused)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(applied) != "[2 4]" {
		t.Fatalf("callback saw versions %v, want [2 4]", applied)
	}
}

func TestMembersReachTheLedger(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1")
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, OnMembers: uplink.ApplyMembersTo(l, "r1")})
	testkit.Eventually(t, wait, "online", func() bool { return u.Status().Online })
	office := publisher(t, b.URL())
	msg := func(seq uint64, bal ledger.Points) []byte {
		var zero uint64 // each the stream from its start
		p, err := protocol.EncodeMembers(protocol.MemberSummaries{Store: "s1", From: &zero, Seq: seq, Members: []protocol.MemberSummary{{
			MemberID: "m9", Balance: bal, Included: map[string]uint64{"r7": 12},
			Member: &ledger.Member{ID: "m9", Name: "Enrolled elsewhere", Aliases: []string{"card-9"}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	publish(t, office, protocol.MembersTopic("s1"), false, msg(5, 300))
	testkit.Eventually(t, wait, "summary applied", func() bool { return u.Status().MembersSeq == 5 })
	m, err := l.LookupAlias("card-9")
	if err != nil || m.ID != "m9" {
		t.Fatalf("member from another store not known here: %v %v", m, err)
	}
	if bal, err := l.Balance("m9"); err != nil || bal != 300 {
		t.Fatalf("balance %d %v, want 300", bal, err)
	}
	// An older part of the stream (reordered delivery, or a catch-up that
	// overlaps) brings nothing new: it changes nothing and is no error.
	publish(t, office, protocol.MembersTopic("s1"), false, msg(4, 999))
	// A later part applies; once it is in, the older one was handled
	// (messages on one topic are applied one at a time).
	publish(t, office, protocol.MembersTopic("s1"), false, msg(6, 310))
	testkit.Eventually(t, wait, "later summary applied", func() bool { return u.Status().MembersSeq == 6 })
	if bal, _ := l.Balance("m9"); bal != 310 {
		t.Fatalf("balance %d after the later summary, want 310", bal)
	}
	if s := u.Status(); s.MembersError != "" || s.Rejected != 0 {
		t.Fatalf("status %+v", s)
	}
	testkit.Eventually(t, wait, "position 6 in the ledger", func() bool { p, err := l.MembersPosition(); return err == nil && p == 6 })
}

// TestOfflineThenOnline: with the broker gone the register keeps recording;
// status says offline with the pending count and the oldest event; when the
// broker is back everything drains.
func TestOfflineThenOnline(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1")
	hq := startAckHQ(t, b.URL())
	// AckTimeout short: head office (clean session) may resubscribe after the
	// register resent, and those events are then lost and resent again.
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, KeepAlive: time.Second, AckTimeout: time.Second})
	record(t, l, "a", 50)
	n := lastSeq(t, l)
	testkit.Eventually(t, wait, "first drain", func() bool { w, _ := l.Confirmed(); return w == n })
	b.Kill()
	testkit.Eventually(t, wait, "offline", func() bool { return !u.Status().Online })
	start := time.Now()
	record(t, l, "b", 200)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("recording while offline took %v", d)
	}
	s := u.Status()
	if s.Online || s.Pending != 200 || s.Oldest.IsZero() || !strings.HasPrefix(s.String(), "offline, 200 pending, oldest ") {
		t.Fatalf("offline status %q", s.String())
	}
	b.Restart()
	n = lastSeq(t, l)
	testkit.Eventually(t, wait, "drained after restart", func() bool { w, _ := l.Confirmed(); return w == n })
	hq.checkExactlyOnce(t, "r1", 1, n)
	if s := u.Status(); !s.Online || s.Pending != 0 || s.Sessions < 2 {
		t.Fatalf("status after restart %v (sessions %d)", s, s.Sessions)
	}
}

// TestAckSilenceResends: head office loses messages without asking for a
// resend (it was down); the uplink resends from the watermark after
// AckTimeout.
func TestAckSilenceResends(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1")
	record(t, l, "a", 100)
	n := lastSeq(t, l)
	hq := startAckHQ(t, b.URL())
	// Head office loses the first delivery of every message, silently (no
	// gap request: it never sees anything beyond the gap).
	seen := map[uint64]bool{}
	hq.mu.Lock()
	hq.drop = func(first uint64) bool {
		if seen[first] {
			return false
		}
		seen[first] = true
		return true
	}
	hq.mu.Unlock()
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, BatchEvents: 10, AckTimeout: 300 * time.Millisecond})
	testkit.Eventually(t, wait, "resent and confirmed", func() bool { w, _ := l.Confirmed(); return w == n })
	hq.checkExactlyOnce(t, "r1", 1, n)
	if u.Status().Resends == 0 {
		t.Fatal("no resend counted")
	}
}

// TestStatusTopic: retained online status while running, offline after a
// clean stop.
func TestStatusTopic(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	l := openLedger(t, "r1")
	_, stop := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}})
	got := make(chan protocol.Status, 16)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("watcher").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(protocol.StatusTopic("s1", "r1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if s, err := protocol.DecodeStatus(m.Payload(), "s1", "r1"); err == nil {
			got <- s
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	next := func(state string) {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case s := <-got:
				if s.State == state {
					return
				}
			case <-deadline:
				t.Fatalf("no %s status", state)
			}
		}
	}
	next(protocol.StateOnline)
	stop()
	next(protocol.StateOffline)
}
