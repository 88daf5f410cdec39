package ledger

import (
	"crypto/rand"
	"encoding/hex"

	bolt "go.etcd.io/bbolt"
)

// NewIncarnation returns a fresh incarnation id: 16 random bytes in hex.
func NewIncarnation() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// Incarnation returns this ledger's incarnation id: a random id created
// with the ledger (or given to it by the schema 4 upgrade) and never
// changed. A ledger created afresh on a replaced card, or a second ledger
// running under the same register id, has another one, so head office can
// tell their sequence numbers apart (docs/protocol.md "Incarnations").
func (l *Ledger) Incarnation() (string, error) {
	var id string
	err := l.view(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bMeta).Get(kIncarnation))
		return nil
	})
	return id, err
}
