package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Sentinel errors; every error from Open wraps exactly one of them.
var (
	// ErrUnsigned: the message is not a signed envelope (a bare document).
	ErrUnsigned = errors.New("signing: document is not signed")
	// ErrUnknownKey: signed by a key that is not pinned here.
	ErrUnknownKey = errors.New("signing: signed by an unknown key")
	// ErrBadSignature: the signature does not match the document, the key
	// and the topic.
	ErrBadSignature = errors.New("signing: bad signature")
	// ErrMalformed: an envelope that cannot be read (bad JSON, unknown
	// fields, wrong version, oversize).
	ErrMalformed = errors.New("signing: malformed envelope")
	// ErrKey: a key that cannot be parsed or used.
	ErrKey = errors.New("signing: invalid key")
)

// Version is the envelope's "v".
const Version = 1

// MaxKeys is the most public keys a Keyring pins: the key in use and the
// next one during a rotation.
const MaxKeys = 2

// Overhead is the most bytes an envelope adds to its document; receivers
// allow their document limit plus Overhead.
const Overhead = 256

const pubPrefix = "ed25519:"

// PublicKey is a head-office verification key.
type PublicKey struct{ k ed25519.PublicKey }

// ParsePublicKey reads the "ed25519:<base64>" form.
func ParsePublicKey(s string) (PublicKey, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, pubPrefix)
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: public key must start with %q", ErrKey, pubPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("%w: public key is not %d bytes of base64", ErrKey, ed25519.PublicKeySize)
	}
	return PublicKey{k: ed25519.PublicKey(b)}, nil
}

// String is the "ed25519:<base64>" form.
func (p PublicKey) String() string { return pubPrefix + base64.StdEncoding.EncodeToString(p.k) }

// ID is the key's id: the first 8 bytes of SHA-256 of the key, in hex.
func (p PublicKey) ID() string {
	h := sha256.Sum256(p.k)
	return hex.EncodeToString(h[:8])
}

// Signer signs documents with head office's private key.
type Signer struct {
	priv ed25519.PrivateKey
	pub  PublicKey
	id   string // pub.ID(), written into every envelope
}

// Generate makes a new key from r (crypto/rand when nil).
func Generate(r io.Reader) (*Signer, error) {
	if r == nil {
		r = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return newSigner(priv), nil
}

func newSigner(priv ed25519.PrivateKey) *Signer {
	pub := PublicKey{k: priv.Public().(ed25519.PublicKey)}
	return &Signer{priv: priv, pub: pub, id: pub.ID()}
}

// Public is the key registers pin.
func (s *Signer) Public() PublicKey { return s.pub }

// MarshalPEM is the private key as a PKCS#8 PEM block.
func (s *Signer) MarshalPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(s.priv)
	if err != nil { // cannot happen for an ed25519 key
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ParseSigner reads a PKCS#8 PEM Ed25519 private key.
func ParseSigner(data []byte) (*Signer, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: not a PEM \"PRIVATE KEY\" block", ErrKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an Ed25519 key", ErrKey)
	}
	return newSigner(priv), nil
}

// LoadSigner reads a private key file. A file that others than its owner
// may read is refused: the key is worth every register of the chain.
func LoadSigner(path string) (*Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is readable by others (mode %v); chmod 600 it", ErrKey, path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	s, err := ParseSigner(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// message is what is signed: a fixed prefix, the topic, the document.
func message(topic string, doc []byte) []byte {
	m := make([]byte, 0, len("loyalty signed document v1\n")+len(topic)+1+len(doc))
	m = append(m, "loyalty signed document v1\n"...)
	m = append(m, topic...)
	m = append(m, '\n')
	return append(m, doc...)
}

// Seal wraps doc (a JSON document) in a signed envelope for topic.
func (s *Signer) Seal(topic string, doc []byte) ([]byte, error) {
	if !json.Valid(doc) {
		return nil, fmt.Errorf("%w: document is not JSON", ErrMalformed)
	}
	sig := ed25519.Sign(s.priv, message(topic, doc))
	var b bytes.Buffer
	b.Grow(len(doc) + Overhead)
	b.WriteString(`{"v":` + strconv.Itoa(Version) + `,"key":"` + s.id + `","sig":"`)
	b.WriteString(base64.StdEncoding.EncodeToString(sig))
	b.WriteString(`","doc":`)
	b.Write(doc)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Keyring holds the pinned public keys of head office.
type Keyring struct {
	keys []PublicKey
	ids  []string // keys[i].ID(): looked up for every message received
}

// NewKeyring pins 1 to MaxKeys distinct keys.
func NewKeyring(keys ...PublicKey) (*Keyring, error) {
	if len(keys) == 0 || len(keys) > MaxKeys {
		return nil, fmt.Errorf("%w: %d keys; pin 1 or %d (during a rotation)", ErrKey, len(keys), MaxKeys)
	}
	for i, k := range keys {
		if len(k.k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: key %d is empty", ErrKey, i)
		}
		for _, o := range keys[:i] {
			if o.ID() == k.ID() {
				return nil, fmt.Errorf("%w: key %s pinned twice", ErrKey, k.ID())
			}
		}
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID()
	}
	return &Keyring{keys: append([]PublicKey(nil), keys...), ids: ids}, nil
}

// ParseKeyring pins keys given in the "ed25519:<base64>" form.
func ParseKeyring(keys []string) (*Keyring, error) {
	pks := make([]PublicKey, 0, len(keys))
	for _, s := range keys {
		k, err := ParsePublicKey(s)
		if err != nil {
			return nil, err
		}
		pks = append(pks, k)
	}
	return NewKeyring(pks...)
}

// IDs are the pinned keys' ids.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	return append([]string(nil), k.ids...)
}

type envelope struct {
	V   int             `json:"v"`
	Key string          `json:"key"`
	Sig string          `json:"sig"`
	Doc json.RawMessage `json:"doc"`
}

// Open verifies a signed envelope received on topic and returns the
// document's bytes. max bounds the envelope's size. A nil Keyring pins
// nothing and refuses every document (ErrUnknownKey).
func (k *Keyring) Open(topic string, msg []byte, max int) ([]byte, error) {
	doc, _, err := k.Verify(topic, msg, max)
	return doc, err
}

// Pinned reports whether id is the id of a pinned key. A nil Keyring pins
// nothing.
func (k *Keyring) Pinned(id string) bool {
	if k == nil || id == "" {
		return false
	}
	for i := range k.keys {
		if k.ids[i] == id {
			return true
		}
	}
	return false
}

// Verify is Open that also returns the id of the pinned key that signed
// the document (PublicKey.ID), so a register can remember which key
// signed the document in force (docs/security.md "Recovering from a
// leaked signing key").
func (k *Keyring) Verify(topic string, msg []byte, max int) ([]byte, string, error) {
	if len(msg) > max {
		return nil, "", fmt.Errorf("%w: too large: %d bytes", ErrMalformed, len(msg))
	}
	var e envelope
	if err := json.Unmarshal(msg, &e); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.Sig == "" && e.Key == "" {
		return nil, "", ErrUnsigned
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, "", fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	if e.V != Version {
		return nil, "", fmt.Errorf("%w: v=%d", ErrMalformed, e.V)
	}
	if len(e.Doc) == 0 {
		return nil, "", fmt.Errorf("%w: no doc", ErrMalformed)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, "", fmt.Errorf("%w: signature is not %d bytes of base64", ErrBadSignature, ed25519.SignatureSize)
	}
	var key *PublicKey
	var keyID string
	if k != nil {
		for i := range k.keys {
			if k.ids[i] == e.Key {
				key, keyID = &k.keys[i], k.ids[i]
			}
		}
	}
	if key == nil {
		return nil, "", fmt.Errorf("%w: key %s", ErrUnknownKey, printable(e.Key))
	}
	if !ed25519.Verify(key.k, message(topic, e.Doc), sig) {
		return nil, "", fmt.Errorf("%w: key %s, topic %s", ErrBadSignature, keyID, topic)
	}
	return e.Doc, keyID, nil
}

// Reason is a short word for an Open error, for metrics labels:
// "unsigned", "unknown_key", "bad_signature", "malformed" or "" (nil).
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrUnsigned):
		return "unsigned"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, ErrBadSignature):
		return "bad_signature"
	default:
		return "malformed"
	}
}

func printable(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return strconv.Quote(s)
}

// sealedPrefix, sealedSig and sealedDoc frame what Seal writes:
// {"v":1,"key":"<16 hex>","sig":"<88 base64>","doc":<document>}.
const (
	sealedPrefix = `{"v":1,"key":"`
	keyIDLen     = 16
	sealedSig    = `","sig":"`
	sigB64Len    = 88
	sealedDoc    = `","doc":`
	sealedHead   = len(sealedPrefix) + keyIDLen + len(sealedSig) + sigB64Len + len(sealedDoc)
)

// Unverified returns the document inside a signed envelope without
// checking the signature: for a receiver that reads a document before it
// decides whether to act on it, and then verifies the same bytes with
// Keyring.Open before it does (the register's acks, docs/security.md).
// The document is never to be trusted on its own. A bare document is
// ErrUnsigned; an envelope that cannot be read ErrMalformed. What Seal
// writes is read without encoding/json; whatever Unverified returns for
// an envelope Open accepts is the document Open returns.
func Unverified(msg []byte) ([]byte, error) {
	doc, _, err := UnverifiedKey(msg)
	return doc, err
}

// UnverifiedKey is Unverified that also returns the id of the key the
// envelope names (unchecked: Keyring.Pinned tells whether a Keyring.Open
// of it could succeed at all).
func UnverifiedKey(msg []byte) (doc []byte, keyID string, err error) {
	if len(msg) > sealedHead+1 && string(msg[:len(sealedPrefix)]) == sealedPrefix &&
		string(msg[len(sealedPrefix)+keyIDLen:][:len(sealedSig)]) == sealedSig &&
		string(msg[sealedHead-len(sealedDoc):sealedHead]) == sealedDoc && msg[len(msg)-1] == '}' &&
		plainField(msg[len(sealedPrefix):][:keyIDLen]) && plainField(msg[len(sealedPrefix)+keyIDLen+len(sealedSig):][:sigB64Len]) {
		return msg[sealedHead : len(msg)-1], string(msg[len(sealedPrefix):][:keyIDLen]), nil
	}
	var e envelope
	if err := json.Unmarshal(msg, &e); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.Sig == "" && e.Key == "" {
		return nil, "", ErrUnsigned
	}
	if e.V != Version || len(e.Doc) == 0 {
		return nil, "", fmt.Errorf("%w: v=%d, %d bytes of document", ErrMalformed, e.V, len(e.Doc))
	}
	return e.Doc, e.Key, nil
}

// plainField reports whether b holds no '"' or '\' (a key id or a
// signature as Seal writes them).
func plainField(b []byte) bool {
	for _, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return true
}
