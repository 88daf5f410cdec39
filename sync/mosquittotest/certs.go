package mosquittotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs is a throw-away certificate authority for TLS tests: a CA, a
// server certificate for 127.0.0.1 and client certificates on demand.
type Certs struct {
	Dir        string
	CAFile     string
	ServerCert string
	ServerKey  string
	Pool       *x509.CertPool

	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	t     testing.TB
	n     int64
}

// NewCerts creates a CA and a server certificate in a temp directory.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	c := &Certs{Dir: t.TempDir(), t: t}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "loyalty test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c.ca, _ = x509.ParseCertificate(der)
	c.caKey = key
	c.CAFile = filepath.Join(c.Dir, "ca.crt")
	writePEM(t, c.CAFile, "CERTIFICATE", der)
	c.Pool = x509.NewCertPool()
	c.Pool.AddCert(c.ca)
	c.ServerCert, c.ServerKey, _ = c.issue("127.0.0.1", true)
	return c
}

// Client issues a client certificate with common name cn (the user name
// when the broker uses use_identity_as_username) and returns a TLS config
// trusting the CA and presenting it.
func (c *Certs) Client(cn string) *tls.Config {
	c.t.Helper()
	cfg, _ := c.ClientSerial(cn)
	return cfg
}

// ClientSerial is Client, and also returns the certificate's serial
// number (what a certificate revocation list names).
func (c *Certs) ClientSerial(cn string) (*tls.Config, *big.Int) {
	c.t.Helper()
	_, _, cert := c.issue(cn, false)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		c.t.Fatal(err)
	}
	return &tls.Config{RootCAs: c.Pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, leaf.SerialNumber
}

// WriteCRL writes, at path, a certificate revocation list signed by the
// CA that revokes the certificates with these serial numbers (mosquitto's
// crlfile). number is the list's CRL number: a new list needs a higher
// one.
func (c *Certs) WriteCRL(path string, number int64, revoked ...*big.Int) {
	t := c.t
	t.Helper()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: time.Now().Add(-time.Minute),
		NextUpdate: time.Now().Add(24 * time.Hour),
	}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, c.ca, c.caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "X509 CRL", der)
}

func (c *Certs) issue(cn string, server bool) (certFile, keyFile string, pair tls.Certificate) {
	t := c.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(c.n + 1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca, &key.PublicKey, c.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(c.Dir, cn+".crt")
	keyFile = filepath.Join(c.Dir, cn+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	pair, err = tls.X509KeyPair(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TLSOptions is the TLS listener config for these certificates with client
// certificates required and their CN used as the user name.
func (c *Certs) TLSOptions() *TLS {
	return &TLS{CAFile: c.CAFile, CertFile: c.ServerCert, KeyFile: c.ServerKey, RequireCertificate: true, IdentityAsUsername: true}
}
