package mosquittotest_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

func connect(t *testing.T, url, id, user, pass string) (mqtt.Client, error) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(3 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func TestKillRestartSamePort(t *testing.T) {
	b := mosquittotest.Start(t, nil)
	port := b.Port()
	if _, err := connect(t, b.URL(), "a", "", ""); err != nil {
		t.Fatal(err)
	}
	b.Kill()
	if b.Running() {
		t.Fatal("still running after Kill")
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("port still accepts after Kill")
	}
	b.Restart()
	if b.Port() != port {
		t.Fatalf("port changed %d -> %d", port, b.Port())
	}
	if _, err := connect(t, b.URL(), "b", "", ""); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	b.Stop()
	b.Stop() // idempotent
}

func TestPersistenceKeepsQueuedMessages(t *testing.T) {
	b := mosquittotest.Start(t, &mosquittotest.Options{Persistence: true})
	o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("sub").SetCleanSession(false).SetAutoReconnect(false)
	sub := mqtt.NewClient(o)
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := sub.Subscribe("q/t", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)
	pub, err := connect(t, b.URL(), "pub", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if tok := pub.Publish("q/t", 1, false, "kept"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	pub.Disconnect(100)
	b.Stop() // clean stop writes the persistence file
	b.Restart()
	got := make(chan string, 1)
	o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) })
	sub = mqtt.NewClient(o)
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("reconnect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	select {
	case m := <-got:
		if m != "kept" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued message lost across restart with persistence")
	}
}

func TestPasswordsAndACL(t *testing.T) {
	b := mosquittotest.Start(t, &mosquittotest.Options{
		Users: map[string]string{"r1": "pw1"},
		ACL:   "pattern write loyalty/v1/+/%u/events\n",
	})
	if _, err := connect(t, b.URL(), "x", "r1", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := connect(t, b.URL(), "x", "", ""); err == nil {
		t.Fatal("anonymous accepted")
	}
	if _, err := connect(t, b.URL(), "x", "r1", "pw1"); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
}

func TestTLSWithClientCertificates(t *testing.T) {
	certs := mosquittotest.NewCerts(t)
	b := mosquittotest.Start(t, &mosquittotest.Options{TLS: certs.TLSOptions()})
	connectTLS := func(cfg *tls.Config) error {
		o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("tls").SetTLSConfig(cfg).
			SetAutoReconnect(false).SetConnectTimeout(3 * time.Second)
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(5 * time.Second) {
			return fmt.Errorf("connect timed out")
		}
		if tok.Error() == nil {
			c.Disconnect(100)
		}
		return tok.Error()
	}
	if err := connectTLS(certs.Client("r1")); err != nil {
		t.Fatalf("client certificate refused: %v", err)
	}
	if err := connectTLS(&tls.Config{RootCAs: certs.Pool}); err == nil {
		t.Fatal("connected without a client certificate")
	}
	other := mosquittotest.NewCerts(t) // a certificate from another CA
	if err := connectTLS(&tls.Config{RootCAs: certs.Pool, Certificates: other.Client("r1").Certificates}); err == nil {
		t.Fatal("connected with a certificate from an unknown CA")
	}
}

// fatalTB stops its goroutine at Fatalf and says why on fatal.
type fatalTB struct {
	testing.TB
	fatal chan string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestRestartNotFooledByAStranger: another process takes the port while
// the broker is down. Restart must not take it for mosquitto (it answers
// TCP too) but fail, saying so.
func TestRestartNotFooledByAStranger(t *testing.T) {
	f := &fatalTB{TB: t, fatal: make(chan string, 1)}
	b := mosquittotest.Start(f, &mosquittotest.Options{StartTimeout: time.Second})
	b.Kill()
	ln, err := net.Listen("tcp", b.Addr())
	if err != nil {
		t.Skipf("the port was taken before the stranger could take it: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	restarted := make(chan struct{})
	go func() { b.Restart(); close(restarted) }()
	select {
	case <-restarted:
		t.Fatal("Restart took the stranger on the port for mosquitto")
	case msg := <-f.fatal:
		t.Logf("Restart failed as it should: %.200s", msg)
	}
}
