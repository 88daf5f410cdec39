package hq_test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// tlsClient connects with a client certificate for cn issued by certs' CA.
func tlsClient(t *testing.T, certs *mosquittotest.Certs, url, cn string) mqtt.Client {
	t.Helper()
	cfg := certs.Client(cn)
	return connect(t, url, cn, true, func(o *mqtt.ClientOptions) { o.SetTLSConfig(cfg) })
}

// recorder collects what a client receives.
type recorder struct {
	mu   stdsync.Mutex
	msgs map[string][]string // topic -> payloads
}

func (r *recorder) handler(_ mqtt.Client, m mqtt.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs == nil {
		r.msgs = map[string][]string{}
	}
	r.msgs[m.Topic()] = append(r.msgs[m.Topic()], string(m.Payload()))
}

func (r *recorder) got(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs[topic]...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.msgs {
		n += len(v)
	}
	return n
}

// TestShippedACLIsGenerated: configs/mosquitto.acl is exactly what
// `loyalty-hq acl` generates for the sample chain, and the generator
// refuses a register id used twice.
func TestShippedACLIsGenerated(t *testing.T) {
	shipped, err := os.ReadFile("../../configs/mosquitto.acl")
	if err != nil {
		t.Fatal(err)
	}
	regs, _ := hq.ParseRegisterIDs([]string{"store1/store1-r1", "store1/store1-r2", "store2/store2-r1"})
	gen, err := hq.BrokerACL(regs)
	if err != nil {
		t.Fatal(err)
	}
	if gen != string(shipped) {
		t.Fatalf("configs/mosquitto.acl differs from loyalty-hq acl store1/store1-r1 store1/store1-r2 store2/store2-r1:\n%s", gen)
	}
	for _, bad := range [][]string{{"s1/r1", "s2/r1"}, {"s1/loyalty-hq"}, {"s+/r1"}} {
		regs, err := hq.ParseRegisterIDs(bad)
		if err == nil {
			_, err = hq.BrokerACL(regs)
		}
		if err == nil {
			t.Errorf("BrokerACL(%v) accepted", bad)
		}
	}
}

// TestBrokerACL runs configs/mosquitto.acl on a real mosquitto with mutual
// TLS (usernames from certificate CNs): a register cannot publish as another
// register, nor under its own id into another store's topics, nor as head
// office (summaries, config); it cannot read another register's or store's
// traffic, and a client without a certificate cannot connect.
func TestBrokerACL(t *testing.T) {
	acl, err := os.ReadFile("../../configs/mosquitto.acl")
	if err != nil {
		t.Fatal(err)
	}
	certs := mosquittotest.NewCerts(t)
	b := mosquittotest.Start(t, &mosquittotest.Options{ACL: string(acl), TLS: certs.TLSOptions()})
	url := b.URL()

	hq := tlsClient(t, certs, url, "loyalty-hq")
	var hqGot recorder
	for _, f := range []string{protocol.AllEventsFilter, protocol.AllCatchUpFilter, protocol.AllLookupFilter} {
		if tok := hq.Subscribe(f, 1, hqGot.handler); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("hq subscribe: %v", tok.Error())
		}
	}
	r1 := tlsClient(t, certs, url, "store1-r1")
	r2 := tlsClient(t, certs, url, "store2-r1")
	var r1Got, r2Got recorder
	for _, topic := range []string{
		protocol.AckTopic("store1", "store1-r1"), protocol.MembersTopic("store1"), // its own
		protocol.RegisterMembersTopic("store1", "store1-r1"), protocol.FoundTopic("store1", "store1-r1"),
		protocol.AckTopic("store2", "store2-r1"), protocol.MembersTopic("store2"), // another store's
		protocol.RegisterMembersTopic("store2", "store2-r1"), protocol.FoundTopic("store2", "store2-r1"),
		protocol.AllEventsFilter, "loyalty/v1/#", // everything
	} {
		r1.Subscribe(topic, 1, r1Got.handler).WaitTimeout(wait)
	}
	r2.Subscribe(protocol.AckTopic("store2", "store2-r1"), 1, r2Got.handler).WaitTimeout(wait)

	pub := func(c mqtt.Client, topic, payload string) {
		t.Helper()
		tok := c.Publish(topic, 1, false, payload)
		if !tok.WaitTimeout(wait) {
			t.Fatalf("publish %s timed out", topic)
		}
	}
	// store1-r1 tries to publish as store2-r1, then as itself. Messages
	// from one client reach a subscriber in order, so once its own event
	// has arrived, the forged one would have arrived first if allowed.
	pub(r1, protocol.CatchUpTopic("store1", "store1-r1"), "own catch-up")
	pub(r1, protocol.LookupTopic("store1", "store1-r1"), "own lookup")
	pub(r1, protocol.CatchUpTopic("store2", "store2-r1"), "catch-up as another register")
	pub(r1, protocol.LookupTopic("store2", "store2-r1"), "lookup as another register")
	pub(r1, protocol.FoundTopic("store1", "store1-r1"), "forged lookup answer")
	pub(r1, protocol.RegisterMembersTopic("store1", "store1-r1"), "forged catch-up answer")
	pub(r1, protocol.EventsTopic("store2", "store2-r1"), "forged")
	pub(r1, protocol.EventsTopic("store1", "store2-r1"), "forged-in-own-store")
	pub(r1, protocol.EventsTopic("store2", "store1-r1"), "own id, another store")
	pub(r1, protocol.StatusTopic("store2", "store1-r1"), "status in another store")
	pub(r1, protocol.MembersTopic("store1"), "forged summaries for its own store")
	pub(r1, protocol.ChainConfigTopic(), "forged chain config")
	pub(r1, protocol.EventsTopic("store1", "store1-r1"), "own")
	testkit.Eventually(t, wait, "hq receives store1-r1's own event", func() bool {
		return len(hqGot.got(protocol.EventsTopic("store1", "store1-r1"))) == 1
	})
	if n := hqGot.count(); n != 3 || len(hqGot.got(protocol.CatchUpTopic("store1", "store1-r1"))) != 1 || len(hqGot.got(protocol.LookupTopic("store1", "store1-r1"))) != 1 {
		t.Fatalf("hq received %d messages, want only store1-r1's own event, catch-up and lookup: %v", n, hqGot.msgs)
	}

	// Traffic addressed to store2 and its register, then to store1-r1.
	pub(r2, protocol.EventsTopic("store2", "store2-r1"), "r2 event")
	pub(hq, protocol.AckTopic("store2", "store2-r1"), "ack for r2")
	pub(hq, protocol.MembersTopic("store2"), "members for store2")
	pub(hq, protocol.AckTopic("store1", "store1-r1"), "ack for r1")
	pub(hq, protocol.MembersTopic("store1"), "members for store1")
	pub(hq, protocol.FoundTopic("store2", "store2-r1"), "answer for r2")
	pub(hq, protocol.RegisterMembersTopic("store2", "store2-r1"), "catch-up for r2")
	pub(hq, protocol.FoundTopic("store1", "store1-r1"), "answer for r1")
	pub(hq, protocol.RegisterMembersTopic("store1", "store1-r1"), "catch-up for r1")
	testkit.Eventually(t, wait, "store1-r1 receives its own ack and store summaries", func() bool {
		return len(r1Got.got(protocol.MembersTopic("store1"))) >= 1 && len(r1Got.got(protocol.AckTopic("store1", "store1-r1"))) >= 1 &&
			len(r1Got.got(protocol.RegisterMembersTopic("store1", "store1-r1"))) >= 1
	})
	testkit.Eventually(t, wait, "store1-r1 receives its lookup answer", func() bool {
		return len(r1Got.got(protocol.FoundTopic("store1", "store1-r1"))) >= 1
	})
	testkit.Eventually(t, wait, "store2-r1 receives its ack", func() bool {
		return len(r2Got.got(protocol.AckTopic("store2", "store2-r1"))) == 1
	})
	for topic, forged := range map[string]string{protocol.MembersTopic("store1"): "forged summaries for its own store", protocol.ChainConfigTopic(): "forged chain config",
		protocol.FoundTopic("store1", "store1-r1"): "forged lookup answer", protocol.RegisterMembersTopic("store1", "store1-r1"): "forged catch-up answer"} {
		for _, p := range r1Got.got(topic) {
			if p == forged {
				t.Errorf("store1-r1 published %q on %s", forged, topic)
			}
		}
	}
	for _, topic := range []string{protocol.AckTopic("store2", "store2-r1"), protocol.MembersTopic("store2"),
		protocol.FoundTopic("store2", "store2-r1"), protocol.RegisterMembersTopic("store2", "store2-r1"), protocol.CatchUpTopic("store1", "store1-r1"), protocol.EventsTopic("store2", "store2-r1"), protocol.EventsTopic("store1", "store1-r1"), protocol.StatusTopic("store2", "store1-r1")} {
		if got := r1Got.got(topic); len(got) != 0 {
			t.Errorf("store1-r1 read %s: %v", topic, got)
		}
	}

	// No certificate, no connection.
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("anon").SetConnectTimeout(wait).
		SetTLSConfig(&tls.Config{RootCAs: certs.Pool, MinVersion: tls.VersionTLS12})
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if tok.WaitTimeout(wait) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("a client without a certificate connected")
	}
}

// TestShippedACLCoversEveryShippedUser: every broker user the shipped
// configuration names (head office's certificate CN in the example
// config, the administrator of configs/mosquitto.conf's password file)
// has a block in the shipped ACL, and on a real mosquitto the
// administrator reads every topic and writes none.
func TestShippedACLCoversEveryShippedUser(t *testing.T) {
	acl, err := os.ReadFile("../../configs/mosquitto.acl")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("../../configs/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"loyalty-hq"}
	for _, line := range strings.Split(string(conf), "\n") {
		if _, rest, ok := strings.Cut(line, "mosquitto_passwd -c "); ok {
			f := strings.Fields(rest)
			users = append(users, f[len(f)-1])
		}
	}
	if len(users) < 2 {
		t.Fatalf("no password-file user found in configs/mosquitto.conf")
	}
	for _, u := range users {
		if !strings.Contains(string(acl), "\nuser "+u+"\n") {
			t.Errorf("configs/mosquitto.acl has no block for shipped user %q", u)
		}
	}

	b := mosquittotest.Start(t, &mosquittotest.Options{ACL: string(acl), Users: map[string]string{"admin": "a-pass", "loyalty-hq": "h-pass"}})
	admin := connect(t, b.URL(), "admin-cli", true, func(o *mqtt.ClientOptions) { o.SetUsername("admin").SetPassword("a-pass") })
	office := connect(t, b.URL(), "hq-cli", true, func(o *mqtt.ClientOptions) { o.SetUsername("loyalty-hq").SetPassword("h-pass") })
	var adminGot, officeGot recorder
	if tok := admin.Subscribe("#", 1, adminGot.handler); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("admin subscribe: %v", tok.Error())
	}
	if tok := office.Subscribe("loyalty/v1/#", 1, officeGot.handler); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("hq subscribe: %v", tok.Error())
	}
	admin.Publish(protocol.ChainConfigTopic(), 1, false, "forged by admin").WaitTimeout(wait)
	office.Publish(protocol.AckTopic("store1", "store1-r1"), 1, false, "ack").WaitTimeout(wait)
	testkit.Eventually(t, wait, "admin reads head office's ack", func() bool {
		return len(adminGot.got(protocol.AckTopic("store1", "store1-r1"))) == 1
	})
	testkit.Eventually(t, wait, "head office reads its own ack", func() bool {
		return len(officeGot.got(protocol.AckTopic("store1", "store1-r1"))) == 1
	})
	if got := officeGot.got(protocol.ChainConfigTopic()); len(got) != 0 {
		t.Fatalf("the administrator published on %s: %v", protocol.ChainConfigTopic(), got)
	}
}

// TestRevokedRegisterCertificateRefused: a stolen register's certificate
// (or a leaked key of it) is revoked at the broker with the CA's
// certificate revocation list (crlfile in configs/mosquitto.conf), and the
// replacement gets a new certificate under the same register id: after a
// reload (SIGHUP) the broker refuses the revoked one and accepts the new
// one, with the register's ACL unchanged (docs/operations.md "A register
// stolen or its credential leaked").
func TestRevokedRegisterCertificateRefused(t *testing.T) {
	acl, err := os.ReadFile("../../configs/mosquitto.acl")
	if err != nil {
		t.Fatal(err)
	}
	certs := mosquittotest.NewCerts(t)
	crl := filepath.Join(certs.Dir, "crl.pem")
	certs.WriteCRL(crl, 1) // nothing revoked yet
	b := mosquittotest.Start(t, &mosquittotest.Options{ACL: string(acl), TLS: certs.TLSOptions(), Extra: []string{"crlfile " + crl}})
	try := func(cfg *tls.Config, id string) error {
		o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetCleanSession(true).
			SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait).SetTLSConfig(cfg)
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(wait) {
			return errors.New("connect timed out")
		}
		if tok.Error() == nil {
			c.Disconnect(100)
		}
		return tok.Error()
	}
	stolen, serial := certs.ClientSerial("store1-r1")
	if err := try(stolen, "store1-r1-a"); err != nil {
		t.Fatalf("the register's certificate before revocation: %v", err)
	}
	other := certs.Client("store1-r2")
	certs.WriteCRL(crl, 2, serial)
	b.Reload()
	testkit.Eventually(t, wait, "the revoked certificate refused", func() bool { return try(stolen, "store1-r1-b") != nil })
	if err := try(certs.Client("store1-r1"), "store1-r1-c"); err != nil {
		t.Fatalf("the replacement's new certificate for the same register id: %v", err)
	}
	if err := try(other, "store1-r2"); err != nil {
		t.Fatalf("another register after the revocation: %v", err)
	}
	// The replacement keeps the register's ACL: it reads its own acks.
	c := tlsClient(t, certs, b.URL(), "store1-r1")
	if tok := c.Subscribe(protocol.AckTopic("store1", "store1-r1"), 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
}
