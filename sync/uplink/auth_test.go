package uplink_test

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestTLSClientCertificate: the register reaches a TLS-only broker with its
// client certificate (CN = register id, used as user name by the ACL) and
// drains; with ACLs limiting it to its own topics.
func TestTLSClientCertificate(t *testing.T) {
	certs := mosquittotest.NewCerts(t)
	acl := "pattern write loyalty/v1/+/%u/events\npattern write loyalty/v1/+/%u/status\npattern read loyalty/v1/+/%u/ack\n" +
		"pattern read loyalty/v1/+/config\npattern read loyalty/v1/config\npattern read loyalty/v1/+/members\n" +
		"user hq\ntopic read loyalty/v1/+/+/events\ntopic write loyalty/v1/+/+/ack\n"
	b := mosquittotest.Start(t, &mosquittotest.Options{TLS: certs.TLSOptions(), ACL: acl})
	l := openLedger(t, "r1")
	record(t, l, "a", 100)
	n := lastSeq(t, l)
	hq := startAckHQTLS(t, b.URL(), certs.Client("hq"))
	u, _ := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, TLS: certs.Client("r1")})
	testkit.Eventually(t, wait, "drained over TLS", func() bool { w, _ := l.Confirmed(); return w == n })
	hq.checkExactlyOnce(t, "r1", 1, n)
	if !u.Status().Online {
		t.Fatal("not online")
	}
}

// TestUsernamePassword: right credentials drain; wrong ones never get
// online and the reason shows in the status.
func TestUsernamePassword(t *testing.T) {
	b := mosquittotest.Start(t, &mosquittotest.Options{Users: map[string]string{"r1": "s3cret", "hq": "hqpw"}})
	l := openLedger(t, "r1")
	record(t, l, "a", 20)
	n := lastSeq(t, l)
	hq := startAckHQAuth(t, b.URL(), "hq", "hqpw")
	bad, stopBad := startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, Username: "r1", Password: "wrong", ClientID: "bad"})
	testkit.Eventually(t, wait, "refusal reported", func() bool { return bad.Status().LastError != "" })
	if bad.Status().Online {
		t.Fatal("online with a wrong password")
	}
	stopBad()
	startUplink(t, l, uplink.Options{Brokers: []string{b.URL()}, Username: "r1", Password: "s3cret"})
	testkit.Eventually(t, wait, "drained with credentials", func() bool { w, _ := l.Confirmed(); return w == n })
	hq.checkExactlyOnce(t, "r1", 1, n)
}
