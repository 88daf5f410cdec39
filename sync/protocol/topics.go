package protocol

import (
	"fmt"
	"strings"
)

// Version is the protocol version this package speaks. It appears in the
// topic root and in the "v" field of every downstream document.
const Version = 1

// Root is the versioned topic root. A future incompatible format gets a new
// root ("loyalty/v2") so old and new registers can share one broker.
const Root = "loyalty/v1"

// MaxIDLen is the longest store or register id accepted.
const MaxIDLen = 64

// Topic kinds, the last level of a topic.
const (
	KindEvents  = "events"  // register -> head office, QoS 1, not retained
	KindStatus  = "status"  // register -> anyone, QoS 1, retained, last will
	KindAck     = "ack"     // head office -> register, QoS 1, not retained
	KindConfig  = "config"  // head office -> store or chain, QoS 1, retained
	KindMembers = "members" // head office -> store or one register, QoS 1, not retained
	KindCatchUp = "catchup" // register -> head office: resend the summary stream from a position
	KindLookup  = "lookup"  // register -> head office: who is this card or alias?
	KindFound   = "found"   // head office -> register: the answer to a lookup, signed
)

// Subscription filters for head office.
const (
	AllEventsFilter = Root + "/+/+/" + KindEvents
	AllStatusFilter = Root + "/+/+/" + KindStatus
	// AllCatchUpFilter and AllLookupFilter are the registers' requests.
	AllCatchUpFilter = Root + "/+/+/" + KindCatchUp
	AllLookupFilter  = Root + "/+/+/" + KindLookup
)

// ValidID reports whether s may be used as a store or register id: 1 to
// MaxIDLen characters from [A-Za-z0-9._-]. This keeps ids safe as a single
// topic level (no '/', '+', '#') and in CloudEvents source URIs.
func ValidID(s string) error {
	if s == "" || len(s) > MaxIDLen {
		return fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q", ErrInvalidID, s)
		}
	}
	return nil
}

// EventsTopic is where a register publishes its events.
func EventsTopic(store, register string) string {
	return Root + "/" + store + "/" + register + "/" + KindEvents
}

// StatusTopic is where a register publishes its retained status and where its
// last will lands.
func StatusTopic(store, register string) string {
	return Root + "/" + store + "/" + register + "/" + KindStatus
}

// AckTopic is where head office acknowledges a register's events.
func AckTopic(store, register string) string {
	return Root + "/" + store + "/" + register + "/" + KindAck
}

// StoreConfigTopic carries the retained config document for one store.
func StoreConfigTopic(store string) string { return Root + "/" + store + "/" + KindConfig }

// ChainConfigTopic carries the retained chain-wide config document.
func ChainConfigTopic() string { return Root + "/" + KindConfig }

// MembersTopic carries member summaries for the registers of one store.
func MembersTopic(store string) string { return Root + "/" + store + "/" + KindMembers }

// Topic is a parsed protocol topic. Store and Register are empty where the
// topic kind has no such level.
type Topic struct {
	Kind     string
	Store    string
	Register string
	// Piece is a catalogue piece's index (KindCatalogue).
	Piece int
}

// ParseTopic parses any protocol topic. It returns ErrTopic for a topic
// outside the protocol and ErrInvalidID for a bad id level.
func ParseTopic(topic string) (Topic, error) {
	rest, ok := strings.CutPrefix(topic, Root+"/")
	if !ok {
		return Topic{}, fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	// At most three parts, split without allocating (every message
	// head office receives is parsed).
	var buf [3]string
	n := 0
	for {
		if n == len(buf) {
			return Topic{}, fmt.Errorf("%w: %q", ErrTopic, topic)
		}
		part, after, more := strings.Cut(rest, "/")
		buf[n] = part
		n++
		if !more {
			break
		}
		rest = after
	}
	parts := buf[:n]
	var t Topic
	switch len(parts) {
	case 1:
		if parts[0] != KindConfig {
			return Topic{}, fmt.Errorf("%w: %q", ErrTopic, topic)
		}
		t = Topic{Kind: KindConfig}
	case 2:
		if parts[1] != KindConfig && parts[1] != KindMembers && parts[1] != KindErase {
			return Topic{}, fmt.Errorf("%w: %q", ErrTopic, topic)
		}
		t = Topic{Kind: parts[1], Store: parts[0]}
	case 3:
		// A register may be called "catalogue": its topics end in a kind,
		// a piece's in a number.
		if parts[1] == KindCatalogue && parts[2] != "" && parts[2][0] >= '0' && parts[2][0] <= '9' {
			store, n, err := ParsePieceTopic(topic)
			if err != nil {
				return Topic{}, err
			}
			return Topic{Kind: KindCatalogue, Store: store, Piece: n}, nil
		}
		switch parts[2] {
		case KindEvents, KindStatus, KindAck, KindMembers, KindCatchUp, KindLookup, KindFound:
		default:
			return Topic{}, fmt.Errorf("%w: %q", ErrTopic, topic)
		}
		t = Topic{Kind: parts[2], Store: parts[0], Register: parts[1]}
		if err := ValidID(t.Register); err != nil {
			return Topic{}, err
		}
	default:
		return Topic{}, fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	if t.Store != "" || len(parts) > 1 {
		if err := ValidID(t.Store); err != nil {
			return Topic{}, err
		}
	}
	return t, nil
}
