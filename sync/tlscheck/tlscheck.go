package tlscheck

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrCertificate is wrapped by every problem Check reports.
var ErrCertificate = errors.New("certificate problem")

// Files are the configured paths; an empty path is not configured. Prefix
// is the config key prefix used in messages ("sync." for the register,
// "broker." for head office).
type Files struct {
	Prefix        string
	CA, Cert, Key string
}

// Check reports every problem with the files at time now, joined; nil when
// there is none (or nothing is configured).
func Check(f Files, now time.Time) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrCertificate}, args...)...))
	}
	var roots *x509.CertPool
	if f.CA != "" {
		certs, err := readCerts(f.CA)
		switch {
		case err != nil:
			bad("%sca_file %s: %v", f.Prefix, f.CA, err)
		case len(certs) == 0:
			bad("%sca_file %s: no PEM certificate in it", f.Prefix, f.CA)
		default:
			roots = x509.NewCertPool()
			for _, c := range certs {
				if msg := validity(c, now); msg != "" {
					bad("%sca_file %s: CA certificate %q %s", f.Prefix, f.CA, c.Subject.CommonName, msg)
				}
				roots.AddCert(c)
			}
		}
	}
	if f.Cert == "" {
		return errors.Join(errs...)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		if certs, cerr := readCerts(f.Cert); cerr == nil && len(certs) > 0 {
			if _, kerr := os.Stat(f.Key); kerr == nil {
				bad("%skey_file %s does not belong to %scert_file %s: %v", f.Prefix, f.Key, f.Prefix, f.Cert, err)
				return errors.Join(errs...)
			}
		}
		bad("%scert_file %s / key_file %s: %v", f.Prefix, f.Cert, f.Key, err)
		return errors.Join(errs...)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		bad("%scert_file %s: %v", f.Prefix, f.Cert, err)
		return errors.Join(errs...)
	}
	msg := validity(leaf, now)
	if msg != "" {
		bad("%scert_file %s: certificate %q %s", f.Prefix, f.Cert, leaf.Subject.CommonName, msg)
	}
	if roots != nil && msg == "" {
		inter := x509.NewCertPool()
		for _, der := range pair.Certificate[1:] {
			if c, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(c)
			}
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			bad("%scert_file %s: certificate %q is not accepted by %sca_file %s: %v", f.Prefix, f.Cert, leaf.Subject.CommonName, f.Prefix, f.CA, err)
		}
	}
	return errors.Join(errs...)
}

// validity says what is wrong with c's dates at now, "" when nothing.
func validity(c *x509.Certificate, now time.Time) string {
	switch {
	case now.After(c.NotAfter):
		return "expired on " + c.NotAfter.UTC().Format(time.DateOnly)
	case now.Before(c.NotBefore):
		return "is not valid before " + c.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// readCerts reads every CERTIFICATE block of a PEM file.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}
