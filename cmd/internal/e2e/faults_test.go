package e2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
)

// testCA is a certificate authority the test makes (crypto/x509).
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
	n    int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCA{t: t, dir: t.TempDir(), key: key}
	c.cert, _ = x509.ParseCertificate(der)
	c.file = c.write("ca.crt", "CERTIFICATE", der)
	return c
}

func (c *testCA) write(name, typ string, der []byte) string {
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// client issues a client certificate valid from..to; it returns the
// certificate and key files.
func (c *testCA) client(cn string, from, to time.Time) (string, string) {
	c.n++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(c.n + 1), Subject: pkix.Name{CommonName: cn}, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return c.write(cn+".crt", "CERTIFICATE", der), c.write(cn+".key", "EC PRIVATE KEY", kder)
}

// TestCheckValidatesCertificates: loyaltyd -check refuses an expired
// client certificate, a key that is not the certificate's and a
// certificate another CA signed, naming the file and the reason; it
// accepts good ones.
func TestCheckValidatesCertificates(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	now := time.Now()
	good, goodKey := ca.client("e2e-r1", now.Add(-time.Hour), now.Add(24*time.Hour))
	expired, expiredKey := ca.client("old", now.Add(-48*time.Hour), now.Add(-time.Hour))
	_, strayKey := ca.client("e2e-r2", now.Add(-time.Hour), now.Add(24*time.Hour))
	foreign, foreignKey := other.client("foreign", now.Add(-time.Hour), now.Add(24*time.Hour))
	cases := []struct {
		name, cert, key string
		want            string // "" = ok
	}{
		{"good", good, goodKey, ""},
		{"expired", expired, expiredKey, `certificate "old" expired on`},
		{"key of another certificate", good, strayKey, "does not belong to sync.cert_file"},
		{"another CA", foreign, foreignKey, `certificate "foreign" is not accepted by sync.ca_file`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegister(t)
			r.extraCfg = syncCfg("ssl://127.0.0.1:8883") + "  ca_file: " + ca.file + "\n  cert_file: " + tc.cert + "\n  key_file: " + tc.key + "\n"
			r.writeConfig()
			out, err := exec.Command(bins.loyaltyd, "-config", r.cfgPath, "-check").CombinedOutput()
			if tc.want == "" {
				if err != nil || !strings.Contains(string(out), ": ok") {
					t.Fatalf("-check: %v\n%s", err, out)
				}
				return
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("-check: %v, want exit 2 saying %q\n%s", err, tc.want, out)
			}
		})
	}
}

// TestAnotherRegistersCertificate: a register connects with the
// certificate of another register (CN e2e-r2 for register e2e-r1). The
// broker's ACL drops its events and status without a word, so nothing is
// ever acknowledged; after sync.no_ack_fault_after the register says so
// and why that may be, in its status, in plain loyaltyctl status and on
// the idle display, while its sales stay pending and nothing reaches
// head office.
func TestAnotherRegistersCertificate(t *testing.T) {
	certs := mosquittotest.NewCerts(t)
	regs, _ := hq.ParseRegisterIDs([]string{"e2e-store/e2e-r1", "e2e-store/e2e-r2"})
	acl, err := hq.BrokerACL(regs)
	if err != nil {
		t.Fatal(err)
	}
	b := mosquittotest.Start(t, &mosquittotest.Options{ACL: acl, TLS: certs.TLSOptions()})
	st, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := hq.New(st, hq.Options{Conn: hq.Conn{Broker: b.URL(), TLS: certs.Client("loyalty-hq"), WaitTimeout: 5 * time.Second}, Signer: hqKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	certs.Client("e2e-r2") // writes e2e-r2.crt and .key beside the CA
	r := newRegister(t)
	r.extraCfg = syncCfg(b.URL()) + "  ca_file: " + certs.CAFile + "\n  cert_file: " + filepath.Join(certs.Dir, "e2e-r2.crt") +
		"\n  key_file: " + filepath.Join(certs.Dir, "e2e-r2.key") + "\n  no_ack_fault_after: 10s\n"
	r.start()
	enrolAPI(t, r, "m1", "")
	sell(t, r, "acl", 3)
	sy := waitStatus(t, r, "reports the fault", func(s map[string]any) bool { f, _ := s["fault"].(string); return f != "" })
	f := sy["fault"].(string)
	sent := fmt.Sprintf("connected, %.0f sent", sy["pending"].(float64))
	if !strings.Contains(f, sent+", no acknowledgement for 1") || !strings.Contains(f, "certificate identity") || sy["pending"].(float64) < 4 {
		t.Fatalf("sync status %v", sy)
	}
	r.waitDisplay("the link fault", func(b []byte) bool {
		l := upperLines(b)
		return len(l) > 0 && strings.Contains(strings.Join(l[max(0, len(l)-2):], "|"), "No ack from HQ")
	})
	out, err := ctl(t, "-addr", "http://"+r.addr, "status")
	if err != nil || !strings.Contains(out, "FAULT      "+sent) || !strings.Contains(out, "members    head office's summaries applied up to seq 0") {
		t.Fatalf("loyaltyctl status: %v\n%s", err, out)
	}
	regsAt, _ := st.Registers()
	if len(regsAt) != 0 {
		t.Fatalf("head office has %v from a register its ACL drops", regsAt)
	}
	t.Logf("fault: %s", f)
}
