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
	Incarnation string `json:"incarnation,omitempty"`
	// PrevIncarnation (extension "previncarnation") is the incarnation
	// this one declares it continues: a ledger restored from an older
	// backup (or restored with loyaltyctl register restore) sends its new
	// events under a new incarnation, numbered after head office's
	// watermark, and names the one head office follows; head office then
	// follows the new one at once (docs/protocol.md "Incarnations").
	PrevIncarnation string          `json:"previncarnation,omitempty"`
	Data            json.RawMessage `json:"data"`
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
	if e.PrevIncarnation != "" {
		if err := ValidID(e.PrevIncarnation); err != nil || e.Incarnation == "" || e.PrevIncarnation == e.Incarnation {
			return 0, fmt.Errorf("%w: previncarnation of %s must name another incarnation", ErrMalformed, e.ID)
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
	b, ok := encodeEventsFast(evs)
	if !ok {
		var err error
		if b, err = json.Marshal(evs); err != nil {
			return nil, fmt.Errorf("encode events: %w", err)
		}
	}
	if len(b) > MaxEventsMessage {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// EncodedSize is a close upper estimate of the bytes one event adds to an
// events message, for sizing batches without encoding twice.
func EncodedSize(e Event) int {
	return 220 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Incarnation) + len(e.PrevIncarnation) + len(e.Data)
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
		if err := unmarshalEvents(d, &e); err != nil {
			return nil, err
		}
		evs = []Event{e}
	default:
		if err := unmarshalEvents(d, &evs); err != nil {
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
		if evs[i].Incarnation != evs[0].Incarnation || evs[i].PrevIncarnation != evs[0].PrevIncarnation {
			return nil, fmt.Errorf("%w: event %d: incarnation %q in a batch of %q", ErrMismatch, i, evs[i].Incarnation, evs[0].Incarnation)
		}
		prev = seq
	}
	return evs, nil
}

// knownAttributes are the event attributes this version reads, plus the
// CloudEvents optional attributes it does not use but that change nothing
// it reads (dataschema, subject).
var knownAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "time": true,
	"datacontenttype": true, "sequence": true, "clocktrusted": true,
	"incarnation": true, "previncarnation": true, "data": true, "dataschema": true, "subject": true,
}

// MaxExtensionName is the longest extension attribute name accepted (the
// CloudEvents spec asks for at most 20 characters).
const MaxExtensionName = 20

// validExtensionName reports whether s is a CloudEvents attribute name:
// lowercase letters and digits, 1 to MaxExtensionName characters.
func validExtensionName(s string) bool {
	if s == "" || len(s) > MaxExtensionName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// unmarshalEvents decodes one event or a batch, ignoring CloudEvents
// extension attributes this version does not know (e.g. "traceparent"
// from distributed tracing): an extension adds context and never changes
// what an event means (docs/protocol.md "Evolving the protocol"). A key
// that is not a valid attribute name (upper case, punctuation, over
// MaxExtensionName characters) or data in another form ("data_base64")
// is still refused. The fast decoder takes every event in the shape
// registers send; this path is the fallback.
func unmarshalEvents(d []byte, v any) error {
	if err := strictUnmarshal(d, v); err == nil {
		return nil
	}
	// Check the attribute names, then decode without DisallowUnknownFields.
	var objs []map[string]json.RawMessage
	if d[0] == '{' {
		var one map[string]json.RawMessage
		if err := lenientUnmarshal(d, &one); err != nil {
			return err
		}
		objs = []map[string]json.RawMessage{one}
	} else if err := lenientUnmarshal(d, &objs); err != nil {
		return err
	}
	for i, o := range objs {
		for k := range o {
			if knownAttributes[k] {
				continue
			}
			if !validExtensionName(k) {
				return fmt.Errorf("%w: event %d: attribute %q is not a CloudEvents extension", ErrMalformed, i, k)
			}
		}
	}
	return lenientUnmarshal(d, v)
}

// lenientUnmarshal decodes exactly one JSON value, ignoring unknown fields
// and rejecting trailing data. It is for documents whose rules let a
// receiver ignore what it does not know (docs/protocol.md "Evolving the
// protocol"); Go's decoder matches keys case-insensitively, so callers that
// care about exact names check them.
func lenientUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return nil
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
