package signing_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/signing"
)

func mustSigner(t testing.TB) *signing.Signer {
	t.Helper()
	s, err := signing.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpen(t *testing.T) {
	hq, next, other := mustSigner(t), mustSigner(t), mustSigner(t)
	ring, err := signing.NewKeyring(hq.Public(), next.Public())
	if err != nil {
		t.Fatal(err)
	}
	const topic = "loyalty/v1/s1/members"
	doc := []byte(`{"v":1,"store":"s1","seq":5,"members":[]}`)
	seal := func(s *signing.Signer, topic string) []byte {
		b, err := s.Seal(topic, doc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := seal(hq, topic)
	tampered := bytes.Replace(good, []byte(`"seq":5`), []byte(`"seq":6`), 1)
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"signed by the key in use", good, nil},
		{"signed by the next key (rotation)", seal(next, topic), nil},
		{"unsigned document", doc, signing.ErrUnsigned},
		{"unknown key", seal(other, topic), signing.ErrUnknownKey},
		{"document changed after signing", tampered, signing.ErrBadSignature},
		{"signed for another store's topic", seal(hq, "loyalty/v1/s2/members"), signing.ErrBadSignature},
		{"signature cut", bytes.Replace(good, []byte(`","doc"`), []byte(`AA","doc"`), 1), signing.ErrBadSignature},
		{"unknown field", bytes.Replace(good, []byte(`{"v":1,`), []byte(`{"v":1,"x":1,`), 1), signing.ErrMalformed},
		{"wrong version", bytes.Replace(good, []byte(`{"v":1,`), []byte(`{"v":2,`), 1), signing.ErrMalformed},
		{"not JSON", []byte("{"), signing.ErrMalformed},
		{"too large", append(good, bytes.Repeat([]byte(" "), 1<<10)...), signing.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ring.Open(topic, tc.msg, len(good)+100)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if err == nil && !bytes.Equal(got, doc) {
				t.Fatalf("doc = %s", got)
			}
			if err != nil && got != nil {
				t.Fatal("a refused envelope returned a document")
			}
		})
	}
	var none *signing.Keyring
	if _, err := none.Open(topic, good, 1<<20); !errors.Is(err, signing.ErrUnknownKey) {
		t.Fatalf("nil keyring: %v", err)
	}
}

func TestKeyring(t *testing.T) {
	a, b, c := mustSigner(t), mustSigner(t), mustSigner(t)
	if _, err := signing.NewKeyring(); !errors.Is(err, signing.ErrKey) {
		t.Error("empty keyring accepted")
	}
	if _, err := signing.NewKeyring(a.Public(), b.Public(), c.Public()); !errors.Is(err, signing.ErrKey) {
		t.Error("three keys accepted")
	}
	if _, err := signing.NewKeyring(a.Public(), a.Public()); !errors.Is(err, signing.ErrKey) {
		t.Error("same key twice accepted")
	}
	for _, bad := range []string{"", "ed25519:", "ed25519:AAAA", "rsa:" + strings.TrimPrefix(a.Public().String(), "ed25519:")} {
		if _, err := signing.ParsePublicKey(bad); !errors.Is(err, signing.ErrKey) {
			t.Errorf("ParsePublicKey(%q) = %v", bad, err)
		}
	}
	p, err := signing.ParsePublicKey(a.Public().String())
	if err != nil || p.ID() != a.Public().ID() {
		t.Fatalf("round trip: %v", err)
	}
}

func TestLoadSigner(t *testing.T) {
	s := mustSigner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "hq.key")
	if err := os.WriteFile(path, s.MarshalPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := signing.LoadSigner(path)
	if err != nil || got.Public().ID() != s.Public().ID() {
		t.Fatalf("LoadSigner: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := signing.LoadSigner(path); !errors.Is(err, signing.ErrKey) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	if _, err := signing.ParseSigner([]byte("-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n")); !errors.Is(err, signing.ErrKey) {
		t.Fatalf("public key as private: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	s, _ := signing.Generate(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	ring, _ := signing.NewKeyring(s.Public())
	good, _ := s.Seal("t", []byte(`{"a":1}`))
	f.Add(good)
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`{"v":1,"key":"","sig":"x","doc":1}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		doc, err := ring.Open("t", msg, 1<<16)
		if err == nil && !bytes.Equal(doc, []byte(`{"a":1}`)) {
			t.Fatalf("accepted a document that was never signed: %s", doc)
		}
		if err != nil && signing.Reason(err) == "" {
			t.Fatal("error without a reason")
		}
	})
}

// TestUnverified: Unverified reads the document Open would return from
// every envelope Open accepts (what Seal writes, and the same envelope
// spaced or reordered), refuses a bare document as unsigned and what is
// not an envelope as malformed. It checks no signature: a tampered
// envelope reads as its tampered document, and Open refuses it.
func TestUnverified(t *testing.T) {
	hq := mustSigner(t)
	ring, err := signing.NewKeyring(hq.Public())
	if err != nil {
		t.Fatal(err)
	}
	const topic = "loyalty/v1/s1/r1/ack"
	doc := []byte(`{"v":1,"register":"r1","watermark":21}`)
	good, err := hq.Seal(topic, doc)
	if err != nil {
		t.Fatal(err)
	}
	spaced := bytes.Replace(bytes.Replace(good, []byte(`,"doc":`), []byte(`, "doc" : `), 1), []byte(`{"v":1,`), []byte(`{ "v":1,`), 1)
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"as Seal writes it", good, nil},
		{"spaced", spaced, nil},
		{"unsigned document", doc, signing.ErrUnsigned},
		{"not JSON", []byte("{"), signing.ErrMalformed},
		{"no document", []byte(`{"v":1,"key":"k","sig":"s"}`), signing.ErrMalformed},
		{"wrong version", bytes.Replace(good, []byte(`{"v":1,`), []byte(`{"v":2,`), 1), signing.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := signing.Unverified(tc.msg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unverified = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			opened, err := ring.Open(topic, tc.msg, 1<<10)
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			if !bytes.Equal(got, opened) {
				t.Fatalf("Unverified = %s, Open = %s", got, opened)
			}
		})
	}
	tampered := bytes.Replace(good, []byte(`"watermark":21`), []byte(`"watermark":99`), 1)
	if got, err := signing.Unverified(tampered); err != nil || !bytes.Contains(got, []byte(`"watermark":99`)) {
		t.Fatalf("Unverified(tampered) = %s, %v", got, err)
	}
	if _, err := ring.Open(topic, tampered, 1<<10); !errors.Is(err, signing.ErrBadSignature) {
		t.Fatalf("Open(tampered) = %v, want a bad signature", err)
	}
}
