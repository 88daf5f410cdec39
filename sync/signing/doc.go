// Package signing signs and verifies the documents head office sends down
// to registers (config documents and member summaries) with Ed25519.
//
// A signed document travels as an envelope
//
//	{"v":1,"key":"<key id>","sig":"<base64 signature>","doc":<the document>}
//
// where the signature covers a fixed prefix, the MQTT topic and the exact
// bytes of "doc", so a document signed for one topic (one store's members)
// is refused on another. A register pins one or two public keys (two
// during a key rotation) in a Keyring; Keyring.Open returns the document's
// bytes only when it is signed by one of them, and otherwise an error
// wrapping exactly one of ErrUnsigned, ErrUnknownKey, ErrBadSignature or
// ErrMalformed (Reason names it for metrics).
//
// Keys: a private key is a PKCS#8 PEM file (what `loyalty-hq keys
// generate` writes, mode 0600); a public key is written
// "ed25519:<base64>", one line in a register's config. A key's id is the
// first 8 bytes of the SHA-256 of the public key, in hex. Replays are
// not this package's business: the receiver refuses a document whose
// version or sequence is not newer than the one in force.
package signing
