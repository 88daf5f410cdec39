package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
)

// KindErase is the last level of a store's erase topic: head office ->
// the store's registers, QoS 1, retained, signed (docs/protocol.md
// "Member erasure").
const KindErase = "erase"

// MaxEraseSize bounds an erase document.
const MaxEraseSize = 256 << 10

// EraseTopic carries the retained erase document for one store.
func EraseTopic(store string) string { return Root + "/" + store + "/" + KindErase }

// Erasure is one member erasure: head office's number for it and the
// member's id.
type Erasure struct {
	N      uint64 `json:"n"`
	Member string `json:"member"`
}

// EraseDoc lists the erasures of members seen at one store; each register
// of the store carries out those it has not yet and confirms each with a
// member.erased event. It holds no personal data: member ids only.
type EraseDoc struct {
	V        int       `json:"v"`
	Store    string    `json:"store"`
	Erasures []Erasure `json:"erasures"`
}

// EncodeErase validates and encodes an erase document.
func EncodeErase(d EraseDoc) ([]byte, error) {
	d.V = Version
	if err := d.validate(d.Store); err != nil {
		return nil, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode erase: %w", err)
	}
	if len(b) > MaxEraseSize {
		return nil, fmt.Errorf("erase: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// DecodeErase decodes and validates an erase document for store.
func DecodeErase(b []byte, store string) (EraseDoc, error) {
	var d EraseDoc
	if len(b) > MaxEraseSize {
		return d, fmt.Errorf("erase: %w: %d bytes", ErrTooLarge, len(b))
	}
	if err := strictUnmarshal(b, &d); err != nil {
		return EraseDoc{}, fmt.Errorf("erase: %w", err)
	}
	if err := d.validate(store); err != nil {
		return EraseDoc{}, err
	}
	return d, nil
}

func (d EraseDoc) validate(store string) error {
	if d.V != Version {
		return fmt.Errorf("erase: %w: v=%d", ErrVersion, d.V)
	}
	if d.Store != store {
		return fmt.Errorf("erase: %w: store %q", ErrMismatch, d.Store)
	}
	seen := map[string]bool{}
	for _, e := range d.Erasures {
		if e.N == 0 || e.N > MaxMembersSeq {
			return fmt.Errorf("erase: %w: erasure number %d", ErrMalformed, e.N)
		}
		if e.Member == "" || len(e.Member) > 128 || strings.ContainsRune(e.Member, 0) {
			return fmt.Errorf("erase: %w: member id %q", ErrMalformed, e.Member)
		}
		if seen[e.Member] {
			return fmt.Errorf("erase: %w: member %q listed twice", ErrMalformed, e.Member)
		}
		seen[e.Member] = true
	}
	return nil
}
