package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeCheckValidatesCertificates: loyalty-hq serve -check refuses an
// expired client certificate and a key that is not the certificate's,
// naming the broker.* file and the reason; good files pass.
func TestServeCheckValidatesCertificates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: now.Add(-48 * time.Hour),
		NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	caFile := write("ca.crt", "CERTIFICATE", caDER)
	issue := func(name string, n int64, from, to time.Time) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: name}, NotBefore: from, NotAfter: to,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kder)
	}
	good, goodKey := issue("loyalty-hq", 2, now.Add(-time.Hour), now.Add(24*time.Hour))
	old, oldKey := issue("old", 3, now.Add(-48*time.Hour), now.Add(-time.Hour))
	_, stray := issue("stray", 4, now.Add(-time.Hour), now.Add(24*time.Hour))
	signing := signingKey(t, dir)
	for _, tc := range []struct{ name, cert, key, want string }{
		{"good", good, goodKey, ""},
		{"expired", old, oldKey, `broker.cert_file ` + old + `: certificate "old" expired on`},
		{"key of another certificate", good, stray, "broker.key_file " + stray + " does not belong to broker.cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "store: " + filepath.Join(dir, "hq.db") + "\nbroker:\n  url: ssl://127.0.0.1:8883\n  ca_file: " + caFile +
				"\n  cert_file: " + tc.cert + "\n  key_file: " + tc.key + "\nsigning_key_file: " + signing + "\n"
			var want []string
			if tc.want != "" {
				want = append(want, tc.want)
			}
			serveCheck(t, filepath.Join(dir, tc.name+".yaml"), doc, want...)
		})
	}
}

// TestServeCheckRefusesAnUnusableSigningKey: serve -check said "ok" for a
// signing key that serve itself refuses at start (missing, or readable by
// others); now it refuses it too, naming signing_key_file.
func TestServeCheckRefusesAnUnusableSigningKey(t *testing.T) {
	dir := t.TempDir()
	key := signingKey(t, dir)
	open := filepath.Join(dir, "open.key")
	data, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(open, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, key, want string }{
		{"good", key, ""},
		{"readable by others", open, "readable by others"},
		{"missing", filepath.Join(dir, "none.key"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "store: " + filepath.Join(dir, "hq.db") + "\nbroker: {url: 'tcp://127.0.0.1:1883'}\nsigning_key_file: " + tc.key + "\n"
			var want []string
			if tc.want != "" {
				want = []string{"signing_key_file", tc.want}
			}
			serveCheck(t, filepath.Join(dir, "hq.yaml"), doc, want...)
		})
	}
}

// TestServeCheckReadsThePasswordAndDSNFiles: serve -check refuses a
// missing broker.password_file or postgres.dsn_file (serve stops at start
// without them), naming the key, and never prints what they hold.
func TestServeCheckReadsThePasswordAndDSNFiles(t *testing.T) {
	dir := t.TempDir()
	key := signingKey(t, dir)
	pw, dsn, empty := filepath.Join(dir, "broker.pw"), filepath.Join(dir, "pg.dsn"), filepath.Join(dir, "empty.dsn")
	for f, b := range map[string]string{pw: "s3cret-pw\n", dsn: "postgres://hq:s3cret-db@127.0.0.1:5432/hq\n", empty: "\n"} {
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "none")
	bbolt := "store: " + filepath.Join(dir, "hq.db") + "\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"password file", bbolt + "broker: {url: 'tcp://127.0.0.1:1883', username: hq, password_file: " + pw + "}\n", ""},
		{"missing password file", bbolt + "broker: {url: 'tcp://127.0.0.1:1883', username: hq, password_file: " + missing + "}\n", "broker.password_file"},
		{"dsn file", "postgres: {dsn_file: " + dsn + "}\nbroker: {url: 'tcp://127.0.0.1:1883'}\n", ""},
		{"missing dsn file", "postgres: {dsn_file: " + missing + "}\nbroker: {url: 'tcp://127.0.0.1:1883'}\n", "postgres.dsn_file"},
		{"empty dsn file", "postgres: {dsn_file: " + empty + "}\nbroker: {url: 'tcp://127.0.0.1:1883'}\n", "postgres.dsn_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			if tc.want != "" {
				want = append(want, tc.want)
			}
			if all := serveCheck(t, filepath.Join(dir, "hq.yaml"), tc.doc+"signing_key_file: "+key+"\n", want...); strings.Contains(all, "s3cret") {
				t.Fatalf("serve -check printed a secret: %s", all)
			}
		})
	}
}

// signingKey generates a signing key in dir for the configs under test.
func signingKey(t *testing.T, dir string) string {
	t.Helper()
	key := filepath.Join(dir, "hq-signing.key")
	var sink bytes.Buffer
	if err := run(context.Background(), []string{"keys", "generate", "-out", key}, &sink, &sink); err != nil {
		t.Fatal(err)
	}
	return key
}

// serveCheck writes doc to cfg and runs serve -check on it: with want
// empty it must say ok, else fail with an error holding each of want. It
// returns everything serve -check printed and the error's text.
func serveCheck(t *testing.T, cfg, doc string, want ...string) string {
	t.Helper()
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "-config", cfg, "-check"}, &out, &out)
	if len(want) == 0 {
		if err != nil || !strings.Contains(out.String(), ": ok") {
			t.Fatalf("serve -check: %v %s", err, out.String())
		}
		return out.String()
	}
	if err == nil {
		t.Fatalf("serve -check passed, want an error naming %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("serve -check: %v, want an error naming %q", err, want)
		}
	}
	return out.String() + err.Error()
}
