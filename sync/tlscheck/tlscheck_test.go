package tlscheck_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/tlscheck"
)

var now = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

var serial int64

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newCA(t *testing.T, dir, name string, from, to time.Time) ca {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return ca{c, key, writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der)}
}

// issue makes a client certificate signed by c and returns its cert and
// key files.
func (c ca) issue(t *testing.T, dir, cn string, from, to time.Time, eku x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return writePEM(t, filepath.Join(dir, cn+".crt"), "CERTIFICATE", der), writePEM(t, filepath.Join(dir, cn+".key"), "EC PRIVATE KEY", kder)
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	year := 365 * 24 * time.Hour
	good := newCA(t, dir, "ca", now.Add(-year), now.Add(year))
	other := newCA(t, dir, "other-ca", now.Add(-year), now.Add(year))
	old := newCA(t, dir, "old-ca", now.Add(-2*year), now.Add(-time.Hour))
	cert, key := good.issue(t, dir, "store1-r1", now.Add(-time.Hour), now.Add(year), x509.ExtKeyUsageClientAuth)
	expired, expiredKey := good.issue(t, dir, "expired", now.Add(-year), now.Add(-24*time.Hour), x509.ExtKeyUsageClientAuth)
	future, futureKey := good.issue(t, dir, "future", now.Add(time.Hour), now.Add(year), x509.ExtKeyUsageClientAuth)
	_, otherKey := good.issue(t, dir, "store1-r2", now.Add(-time.Hour), now.Add(year), x509.ExtKeyUsageClientAuth)
	foreign, foreignKey := other.issue(t, dir, "foreign", now.Add(-time.Hour), now.Add(year), x509.ExtKeyUsageClientAuth)
	server, serverKey := good.issue(t, dir, "server", now.Add(-time.Hour), now.Add(year), x509.ExtKeyUsageServerAuth)
	notPEM := filepath.Join(dir, "garbage.crt")
	os.WriteFile(notPEM, []byte("hello"), 0o600)

	cases := []struct {
		name string
		f    tlscheck.Files
		want []string // substrings of the error; none = ok
	}{
		{"nothing configured", tlscheck.Files{}, nil},
		{"good", tlscheck.Files{CA: good.file, Cert: cert, Key: key}, nil},
		{"CA only", tlscheck.Files{CA: good.file}, nil},
		{"expired client certificate", tlscheck.Files{CA: good.file, Cert: expired, Key: expiredKey}, []string{`sync.cert_file`, `certificate "expired" expired on 2027-02-28`}},
		{"not yet valid", tlscheck.Files{CA: good.file, Cert: future, Key: futureKey}, []string{`certificate "future" is not valid before`}},
		{"key of another certificate", tlscheck.Files{CA: good.file, Cert: cert, Key: otherKey}, []string{`sync.key_file`, "does not belong to sync.cert_file", "private key does not match"}},
		{"signed by another CA", tlscheck.Files{CA: good.file, Cert: foreign, Key: foreignKey}, []string{`certificate "foreign" is not accepted by sync.ca_file`, "unknown authority"}},
		{"server certificate as client", tlscheck.Files{CA: good.file, Cert: server, Key: serverKey}, []string{`certificate "server" is not accepted`, "usage"}},
		{"expired CA", tlscheck.Files{CA: old.file}, []string{`sync.ca_file`, `CA certificate "old-ca" expired on`}},
		{"CA not PEM", tlscheck.Files{CA: notPEM}, []string{"no PEM certificate"}},
		{"missing CA", tlscheck.Files{CA: filepath.Join(dir, "nope.crt")}, []string{"no such file"}},
		{"missing key", tlscheck.Files{Cert: cert, Key: filepath.Join(dir, "nope.key")}, []string{"no such file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Prefix = "sync."
			err := tlscheck.Check(tc.f, now)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if !errors.Is(err, tlscheck.ErrCertificate) {
				t.Fatalf("err %v, want ErrCertificate", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
