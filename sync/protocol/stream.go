package protocol

import (
	"encoding/json"
	"fmt"
)

// Size limits of the register's requests about member summaries.
const (
	MaxCatchUpSize = 1 << 10
	MaxLookupSize  = 1 << 10
	MaxFoundSize   = 64 << 10
	// MaxLookupID bounds a lookup's correlation id.
	MaxLookupID = 64
	// MaxAlias bounds a looked-up card number or alias (as head office's
	// store bounds aliases).
	MaxAlias = 128
)

// RegisterMembersTopic carries head office's answer to one register's
// CatchUp: the store's member-summary stream from the register's position.
func RegisterMembersTopic(store, register string) string {
	return Root + "/" + store + "/" + register + "/" + KindMembers
}

// CatchUpTopic is where a register asks for its store's member-summary
// stream from its position.
func CatchUpTopic(store, register string) string {
	return Root + "/" + store + "/" + register + "/" + KindCatchUp
}

// LookupTopic is where a register asks head office about a card or alias
// it does not know.
func LookupTopic(store, register string) string {
	return Root + "/" + store + "/" + register + "/" + KindLookup
}

// FoundTopic is where head office answers one register's lookups.
func FoundTopic(store, register string) string {
	return Root + "/" + store + "/" + register + "/" + KindFound
}

// CatchUp asks head office to send the store's member-summary stream after
// position From to this register (on RegisterMembersTopic), as members
// messages that chain from From up to the stream's head. A register sends
// it when it connects and when a gap in the stream stays open.
type CatchUp struct {
	V        int    `json:"v"`
	Register string `json:"register"`
	From     uint64 `json:"from"`
}

// EncodeCatchUp validates and encodes a catch-up request, setting V.
func EncodeCatchUp(c CatchUp) ([]byte, error) {
	c.V = Version
	if err := c.validate(c.Register); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// DecodeCatchUp decodes and validates a catch-up request from register.
func DecodeCatchUp(b []byte, register string) (CatchUp, error) {
	var c CatchUp
	if len(b) > MaxCatchUpSize {
		return c, fmt.Errorf("catchup: %w: %d bytes", ErrTooLarge, len(b))
	}
	if err := strictUnmarshal(b, &c); err != nil {
		return CatchUp{}, fmt.Errorf("catchup: %w", err)
	}
	if err := c.validate(register); err != nil {
		return CatchUp{}, err
	}
	return c, nil
}

func (c CatchUp) validate(register string) error {
	switch {
	case c.V != Version:
		return fmt.Errorf("catchup: %w: v=%d", ErrVersion, c.V)
	case c.Register != register:
		return fmt.Errorf("catchup: %w: register %q", ErrMismatch, c.Register)
	case c.From > MaxMembersSeq:
		return fmt.Errorf("catchup: %w: from %d above %d", ErrMalformed, c.From, MaxMembersSeq)
	}
	return nil
}

// Lookup asks head office for the member a card number or alias belongs
// to. ID correlates the answer (Found.ID); a register drops answers to ids
// it is not waiting for, so a late answer changes nothing at the till.
type Lookup struct {
	V        int    `json:"v"`
	Register string `json:"register"`
	ID       string `json:"id"`
	Alias    string `json:"alias"`
}

// EncodeLookup validates and encodes a lookup, setting V.
func EncodeLookup(l Lookup) ([]byte, error) {
	l.V = Version
	if err := l.validate(l.Register); err != nil {
		return nil, err
	}
	return json.Marshal(l)
}

// DecodeLookup decodes and validates a lookup from register.
func DecodeLookup(b []byte, register string) (Lookup, error) {
	var l Lookup
	if len(b) > MaxLookupSize {
		return l, fmt.Errorf("lookup: %w: %d bytes", ErrTooLarge, len(b))
	}
	if err := strictUnmarshal(b, &l); err != nil {
		return Lookup{}, fmt.Errorf("lookup: %w", err)
	}
	if err := l.validate(register); err != nil {
		return Lookup{}, err
	}
	return l, nil
}

func (l Lookup) validate(register string) error {
	switch {
	case l.V != Version:
		return fmt.Errorf("lookup: %w: v=%d", ErrVersion, l.V)
	case l.Register != register:
		return fmt.Errorf("lookup: %w: register %q", ErrMismatch, l.Register)
	case l.ID == "" || len(l.ID) > MaxLookupID:
		return fmt.Errorf("lookup: %w: id must be 1-%d bytes", ErrMalformed, MaxLookupID)
	case l.Alias == "" || len(l.Alias) > MaxAlias:
		return fmt.Errorf("lookup: %w: alias must be 1-%d bytes", ErrMalformed, MaxAlias)
	}
	return nil
}

// Found is head office's answer to a Lookup, signed like a members
// message. Member is nil when head office knows no member by that alias.
// Seq is the summary's version, as a members message's Seq: head office's
// summary stream position when it read the summary.
type Found struct {
	V        int            `json:"v"`
	Store    string         `json:"store"`
	Register string         `json:"register"`
	ID       string         `json:"id"`
	Seq      uint64         `json:"seq,omitempty"`
	Member   *MemberSummary `json:"member,omitempty"`
}

// EncodeFound validates and encodes an answer, setting V.
func EncodeFound(f Found) ([]byte, error) {
	f.V = Version
	if err := f.validate(f.Store, f.Register); err != nil {
		return nil, err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode found: %w", err)
	}
	if len(b) > MaxFoundSize {
		return nil, fmt.Errorf("found: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// DecodeFound decodes and validates an answer for store and register.
func DecodeFound(b []byte, store, register string) (Found, error) {
	var f Found
	if len(b) > MaxFoundSize {
		return f, fmt.Errorf("found: %w: %d bytes", ErrTooLarge, len(b))
	}
	if err := strictUnmarshal(b, &f); err != nil {
		return Found{}, fmt.Errorf("found: %w", err)
	}
	if err := f.validate(store, register); err != nil {
		return Found{}, err
	}
	return f, nil
}

func (f Found) validate(store, register string) error {
	switch {
	case f.V != Version:
		return fmt.Errorf("found: %w: v=%d", ErrVersion, f.V)
	case f.Store != store || f.Register != register:
		return fmt.Errorf("found: %w: store %q register %q", ErrMismatch, f.Store, f.Register)
	case f.ID == "" || len(f.ID) > MaxLookupID:
		return fmt.Errorf("found: %w: id must be 1-%d bytes", ErrMalformed, MaxLookupID)
	case f.Member == nil:
		return nil
	case f.Seq == 0 || f.Seq > MaxMembersSeq:
		return fmt.Errorf("found: %w: seq %d", ErrMalformed, f.Seq)
	}
	// The summary obeys the members message's rules.
	return MemberSummaries{V: Version, Store: store, Seq: f.Seq, Members: []MemberSummary{*f.Member}}.validate(store)
}
