package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// CloudEvents constants.
const (
	SpecVersion = "1.0"
	// TypePrefix is prepended to the ledger's OutboxType to form the
	// CloudEvents "type" attribute.
	TypePrefix = "org.loyalty."
	// DataContentType is the content type of every event's data.
	DataContentType = "application/json"
	// BatchContentType names the payload of an events message: a JSON array
	// of structured-mode CloudEvents (the CloudEvents JSON batch format).
	BatchContentType = "application/cloudevents-batch+json"
)

// Upstream limits. A register never builds a message over these; head
// office rejects one that is.
const (
	MaxEventsMessage = 1 << 20 // bytes per events message
	MaxBatch         = 1000    // events per events message
)

// Event is one CloudEvents 1.0 event in structured JSON mode, carrying one
// ledger outbox record. Sequence is the decimal per-register sequence number
// (the CloudEvents "sequence" extension is a string); ClockTrusted is the
// extension "clocktrusted" saying whether Time came from a synced clock.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time,omitzero"`
	DataContentType string    `json:"datacontenttype"`
	Sequence        string    `json:"sequence"`
	ClockTrusted    bool      `json:"clocktrusted"`
	// Incarnation (extension "incarnation") is the sending ledger's
	// incarnation id (ledger.Ledger.Incarnation); empty from a register
	// older than it (the legacy incarnation). Sequence numbers are
	// unique only within one incarnation.
	Incarnation string          `json:"incarnation,omitempty"`
	Data        json.RawMessage `json:"data"`
}

// Source is the CloudEvents source of a register: "/loyalty/<store>/<register>".
func Source(store, register string) string { return "/loyalty/" + store + "/" + register }

// EventID is the id of a register's event with sequence seq. It equals the
// ledger's OutboxRecord.ID.
func EventID(register string, seq uint64) string {
	return register + "-" + strconv.FormatUint(seq, 10)
}

// FromRecord wraps a ledger outbox record as a CloudEvent.
func FromRecord(store, register string, r ledger.OutboxRecord) Event {
	id := r.ID
	if id == "" {
		id = EventID(register, r.Seq)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          Source(store, register),
		Type:            TypePrefix + string(r.Type),
		Time:            r.WallTime,
		DataContentType: DataContentType,
		Sequence:        strconv.FormatUint(r.Seq, 10),
		ClockTrusted:    r.ClockTrusted,
		Data:            r.Data,
	}
}

// Seq returns the event's sequence number.
func (e Event) Seq() (uint64, error) {
	if e.Sequence == "" || (len(e.Sequence) > 1 && e.Sequence[0] == '0') {
		return 0, fmt.Errorf("%w: sequence %q", ErrMalformed, e.Sequence)
	}
	n, err := strconv.ParseUint(e.Sequence, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: sequence %q", ErrMalformed, e.Sequence)
	}
	return n, nil
}

// Record converts the event back to the ledger outbox record it carries.
func (e Event) Record() (ledger.OutboxRecord, error) {
	seq, err := e.Seq()
	if err != nil {
		return ledger.OutboxRecord{}, err
	}
	return ledger.OutboxRecord{
		Seq:          seq,
		ID:           e.ID,
		Type:         ledger.OutboxType(strings.TrimPrefix(e.Type, TypePrefix)),
		WallTime:     e.Time,
		ClockTrusted: e.ClockTrusted,
		Data:         e.Data,
	}, nil
}

// Validate checks one event against the register it claims to come from.
func (e Event) Validate(store, register string) error {
	if _, err := e.validate(store, register); err != nil {
		return err
	}
	d := bytes.TrimSpace(e.Data)
	if !json.Valid(d) {
		return fmt.Errorf("%w: data of %s is not a JSON object", ErrMalformed, e.ID)
	}
	return nil
}

// validate checks everything Validate does except that Data is valid JSON
// (DecodeEvents' decoder has already scanned it), and returns the
// sequence number, so a decoded batch is checked in one pass without
// allocating.
func (e Event) validate(store, register string) (uint64, error) {
	if e.SpecVersion != SpecVersion {
		return 0, fmt.Errorf("%w: specversion %q", ErrVersion, e.SpecVersion)
	}
	seq, err := e.Seq()
	if err != nil {
		return 0, err
	}
	if !isSource(e.Source, store, register) {
		return 0, fmt.Errorf("%w: source %q", ErrMismatch, e.Source)
	}
	// Sequence is canonical decimal (Seq refuses leading zeros), so the id
	// must be exactly register + "-" + Sequence.
	if len(e.ID) != len(register)+1+len(e.Sequence) || e.ID[:len(register)] != register ||
		e.ID[len(register)] != '-' || e.ID[len(register)+1:] != e.Sequence {
		return 0, fmt.Errorf("%w: id %q for sequence %d", ErrMismatch, e.ID, seq)
	}
	if err := validType(e.Type); err != nil {
		return 0, err
	}
	if e.Incarnation != "" {
		if err := ValidID(e.Incarnation); err != nil {
			return 0, fmt.Errorf("%w: incarnation of %s", err, e.ID)
		}
	}
	if e.DataContentType != DataContentType {
		return 0, fmt.Errorf("%w: datacontenttype %q", ErrMalformed, e.DataContentType)
	}
	d := bytes.TrimSpace(e.Data)
	if len(d) == 0 || d[0] != '{' {
		return 0, fmt.Errorf("%w: data of %s is not a JSON object", ErrMalformed, e.ID)
	}
	return seq, nil
}

// isSource reports whether s equals Source(store, register) without
// building that string.
func isSource(s, store, register string) bool {
	const p = "/loyalty/"
	return len(s) == len(p)+len(store)+1+len(register) && s[:len(p)] == p &&
		s[len(p):len(p)+len(store)] == store && s[len(p)+len(store)] == '/' && s[len(p)+len(store)+1:] == register
}

// validType accepts "org.loyalty.<name>" where name is dotted lowercase
// words. Unknown names are accepted on purpose: the ledger may add record
// types, and refusing them would stall a register's stream for ever.
func validType(t string) error {
	name, ok := strings.CutPrefix(t, TypePrefix)
	if !ok || name == "" || len(name) > 64 || name[0] == '.' || name[len(name)-1] == '.' {
		return fmt.Errorf("%w: type %q", ErrMalformed, t)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: type %q", ErrMalformed, t)
		}
	}
	return nil
}

// EncodeEvents encodes events as one events message (a JSON array). It
// refuses an empty batch, more than MaxBatch events or more than
// MaxEventsMessage bytes; callers size batches with EncodedSize.
func EncodeEvents(evs []Event) ([]byte, error) {
	if len(evs) == 0 || len(evs) > MaxBatch {
		return nil, fmt.Errorf("%w: batch of %d events", ErrMalformed, len(evs))
	}
	b, err := json.Marshal(evs)
	if err != nil {
		return nil, fmt.Errorf("encode events: %w", err)
	}
	if len(b) > MaxEventsMessage {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// EncodedSize is a close upper estimate of the bytes one event adds to an
// events message, for sizing batches without encoding twice.
func EncodedSize(e Event) int {
	return 200 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Incarnation) + len(e.Data)
}

// DecodeEvents decodes and validates an events message from the given
// register. It accepts a single event object or a batch array; in a batch
// the sequence numbers must be strictly consecutive. Any invalid event
// rejects the whole message, so a receiver never applies half a batch.
func DecodeEvents(b []byte, store, register string) ([]Event, error) {
	if len(b) > MaxEventsMessage {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	d := bytes.TrimSpace(b)
	if len(d) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	evs, ok := decodeFast(d)
	switch {
	case ok:
	case d[0] == '{':
		var e Event
		if err := strictUnmarshal(d, &e); err != nil {
			return nil, err
		}
		evs = []Event{e}
	default:
		if err := strictUnmarshal(d, &evs); err != nil {
			return nil, err
		}
	}
	if len(evs) == 0 || len(evs) > MaxBatch {
		return nil, fmt.Errorf("%w: batch of %d events", ErrMalformed, len(evs))
	}
	var prev uint64
	for i := range evs {
		// The decoder has checked that every Data is valid JSON.
		seq, err := evs[i].validate(store, register)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		if i > 0 && seq != prev+1 {
			return nil, fmt.Errorf("%w: sequence %d after %d", ErrOrder, seq, prev)
		}
		if evs[i].Incarnation != evs[0].Incarnation {
			return nil, fmt.Errorf("%w: event %d: incarnation %q in a batch of %q", ErrMismatch, i, evs[i].Incarnation, evs[0].Incarnation)
		}
		prev = seq
	}
	return evs, nil
}

// strictUnmarshal decodes exactly one JSON value, rejecting unknown fields
// and trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return nil
}
