package protocol

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/timetext"
)

// The events message written by hand. json.Marshal walks each Event by
// reflection and, for Data (a json.RawMessage), checks and compacts the
// payload byte by byte: with the ledger's reads it was most of the
// uplink's CPU per event. encodeEventsFast writes the same bytes
// (TestEncodeEventsMatchesJSON, FuzzEncodeEvents). Whatever it cannot
// write exactly as encoding/json would (a string that needs escaping, a
// time json.Marshal refuses, a payload that is not already compact JSON
// without the characters encoding/json escapes) sends the whole message
// through encoding/json. The payloads come from the ledger's own encoders,
// so they are valid JSON; encoding/json would only have re-checked that.
func encodeEventsFast(evs []Event) ([]byte, bool) {
	n := 2
	for i := range evs {
		e := &evs[i]
		// 200 covers the names, quotes and the longest time.
		n += 200 + len(e.SpecVersion) + len(e.ID) + len(e.Source) + len(e.Type) + len(e.DataContentType) +
			len(e.Sequence) + len(e.Incarnation) + len(e.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendEvent(b, &evs[i]); !ok {
			return nil, false
		}
	}
	return append(b, ']'), true
}

func appendEvent(b []byte, e *Event) ([]byte, bool) {
	return appendEventSeq(b, e, nil)
}

// seqID, when given, is an event's sequence number standing in for its
// Sequence and, when ID is empty, its id (prefix followed by it); times,
// when set, writes the event's time.
type seqID struct {
	prefix string
	seq    uint64
	times  *timetext.Text
}

// appendEventSeq checks the event's strings (AppendBatch checks the same
// ones, those a batch shares once: a string added here must be added
// there) and appends the event.
func appendEventSeq(b []byte, e *Event, sid *seqID) ([]byte, bool) {
	strs := [...]string{e.SpecVersion, e.ID, e.Source, e.Type, e.DataContentType, e.Sequence, e.Incarnation, e.PrevIncarnation}
	for _, s := range strs {
		if !plainJSON(s) {
			return b, false
		}
	}
	if !compactJSON(e.Data) {
		return b, false
	}
	if sid != nil && e.ID == "" && !plainJSON(sid.prefix) {
		return b, false
	}
	return appendChecked(b, e, sid)
}

// appendChecked writes the event whose strings and payload have passed
// appendEventSeq's checks (AppendBatch checks what a batch shares once).
func appendChecked(b []byte, e *Event, sid *seqID) ([]byte, bool) {
	var digits [20]byte // the sequence number's: the id and "sequence" share them
	var seqText []byte
	if sid != nil {
		seqText = strconv.AppendUint(digits[:0], sid.seq, 10)
	}
	b = append(b, `{"specversion":"`...)
	b = append(b, e.SpecVersion...)
	b = append(b, `","id":"`...)
	if sid != nil && e.ID == "" {
		b = append(b, sid.prefix...)
		b = append(b, seqText...)
	} else {
		b = append(b, e.ID...)
	}
	b = append(b, `","source":"`...)
	b = append(b, e.Source...)
	b = append(b, `","type":"`...)
	b = append(b, e.Type...)
	b = append(b, '"')
	if !e.Time.IsZero() {
		_, off := e.Time.Zone()
		if off <= -24*3600 || off >= 24*3600 {
			return b, false
		}
		// The year in e.Time's zone is 0000 to 9999 (what Year() < 0 ||
		// > 9999 refused), from the seconds alone: Year works the date out.
		if local := e.Time.Unix() + int64(off); local < minYear0Unix || local > maxYear9999Unix {
			return b, false
		}
		b = append(b, `,"time":"`...)
		if sid != nil && sid.times != nil {
			b = sid.times.Append(b, e.Time, off)
		} else {
			b = e.Time.AppendFormat(b, time.RFC3339Nano)
		}
		b = append(b, '"')
	}
	b = append(b, `,"datacontenttype":"`...)
	b = append(b, e.DataContentType...)
	b = append(b, `","sequence":"`...)
	if sid != nil {
		b = append(b, seqText...)
	} else {
		b = append(b, e.Sequence...)
	}
	b = append(b, `","clocktrusted":`...)
	b = strconv.AppendBool(b, e.ClockTrusted)
	if e.Incarnation != "" {
		b = append(b, `,"incarnation":"`...)
		b = append(b, e.Incarnation...)
		b = append(b, '"')
	}
	if e.PrevIncarnation != "" {
		b = append(b, `,"previncarnation":"`...)
		b = append(b, e.PrevIncarnation...)
		b = append(b, '"')
	}
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	return append(b, '}'), true
}

// minYear0Unix and maxYear9999Unix are 0000-01-01T00:00:00 and
// 9999-12-31T23:59:59 as Unix seconds: the times RFC 3339 can write.
const (
	minYear0Unix    = -62167219200
	maxYear9999Unix = 253402300799
)

// plainJSON: s goes between quotes unchanged (printable ASCII without
// the characters encoding/json escapes).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// compactJSON: the payload is what encoding/json would write for it
// unchanged: no whitespace outside strings, none of the characters it
// escapes (<, >, &, U+2028, U+2029), not empty. Bytes that need no
// decision are skipped by table (compactClass), a few at a time.
func compactJSON(d json.RawMessage) bool {
	if len(d) == 0 {
		return false
	}
	in := false
	for i := 0; i < len(d); i++ {
		c := d[i]
		switch compactClass[c] {
		case ccPlain:
			continue
		case ccRefuse:
			return false
		case ccQuote:
			in = !in
		case ccBackslash:
			if !in || i+1 == len(d) {
				continue
			}
			// The escaped byte never ends the string; it is refused
			// like any other if encoding/json would escape it.
			i++
			switch compactClass[d[i]] {
			case ccRefuse:
				return false
			case ccE2:
				if i+2 < len(d) && d[i+1] == 0x80 && (d[i+2] == 0xA8 || d[i+2] == 0xA9) {
					return false
				}
			}
		case ccSpace:
			if !in {
				return false
			}
		case ccE2:
			if i+2 < len(d) && d[i+1] == 0x80 && (d[i+2] == 0xA8 || d[i+2] == 0xA9) {
				return false
			}
		}
	}
	return !in
}

// Byte classes of compactJSON.
const (
	ccPlain byte = iota
	ccRefuse
	ccQuote
	ccBackslash
	ccSpace
	ccE2
)

var compactClass = func() (t [256]byte) {
	for _, c := range []byte("<>&") {
		t[c] = ccRefuse
	}
	t['"'], t['\\'], t[0xE2] = ccQuote, ccBackslash, ccE2
	for _, c := range []byte(" \t\n\r") {
		t[c] = ccSpace
	}
	return t
}()

// EncodeRecords encodes ledger outbox records as one events message from
// a register: the bytes of EncodeEvents over FromRecord of each record
// with the given incarnation, without building a string per event for
// the attributes every event of the message shares (source, type).
func EncodeRecords(store, register, incarnation string, recs []ledger.OutboxRecord) ([]byte, error) {
	return EncodeRecordsStamped(store, register, incarnation, "", recs)
}

// EncodeRecordsStamped is EncodeRecords for a batch that also names the
// incarnation its own continues (extension previncarnation; empty: none).
func EncodeRecordsStamped(store, register, incarnation, prev string, recs []ledger.OutboxRecord) ([]byte, error) {
	if len(recs) == 0 || len(recs) > MaxBatch {
		return nil, fmt.Errorf("%w: batch of %d events", ErrMalformed, len(recs))
	}
	src := Source(store, register)
	types := map[ledger.OutboxType]string{}
	evs := make([]Event, len(recs))
	for i, r := range recs {
		typ, ok := types[r.Type]
		if !ok {
			typ = TypePrefix + string(r.Type)
			types[r.Type] = typ
		}
		id := r.ID
		if id == "" {
			id = EventID(register, r.Seq)
		}
		evs[i] = Event{SpecVersion: SpecVersion, ID: id, Source: src, Type: typ, Time: r.WallTime,
			DataContentType: DataContentType, Sequence: strconv.FormatUint(r.Seq, 10),
			ClockTrusted: r.ClockTrusted, Incarnation: incarnation, PrevIncarnation: prev, Data: r.Data}
	}
	return EncodeEvents(evs)
}

// AppendBatch appends to dst the events message EncodeRecordsStamped
// writes for the records of b (an empty ID standing for b.IDPrefix and
// the record's Seq), without a string or an Event built per record: the
// uplink reuses dst and b from batch to batch. TestAppendBatch and
// FuzzAppendBatch hold it to EncodeRecordsStamped's bytes and
// encoding/json's. On error dst is returned as it was.
func AppendBatch(dst []byte, store, register, incarnation, prev string, b *ledger.OutboxBatch) ([]byte, error) {
	recs := b.Recs
	if len(recs) == 0 || len(recs) > MaxBatch {
		return dst, fmt.Errorf("%w: batch of %d events", ErrMalformed, len(recs))
	}
	start := len(dst)
	e := Event{SpecVersion: SpecVersion, Source: Source(store, register), DataContentType: DataContentType,
		Incarnation: incarnation, PrevIncarnation: prev}
	// What every event of the batch shares is checked once (the strings
	// appendEventSeq checks per event: keep the two lists alike); each
	// event's own strings, and its payload unless the ledger wrote it as
	// json.Marshal does (OutboxBatch.Compact), as appendEventSeq checks
	// them.
	for _, s := range [...]string{e.SpecVersion, e.Source, e.DataContentType, e.Incarnation, e.PrevIncarnation} {
		if !plainJSON(s) {
			return appendBatchSlow(dst[:start], store, register, incarnation, prev, b)
		}
	}
	prefixOK := plainJSON(b.IDPrefix)
	var typ ledger.OutboxType
	var times timetext.Text // the text of the last second written
	sid := seqID{prefix: b.IDPrefix, times: &times}
	dst = append(dst, '[')
	for i := range recs {
		r := &recs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		if i == 0 || r.Type != typ {
			typ, e.Type = r.Type, TypePrefix+string(r.Type)
			if !plainJSON(e.Type) {
				return appendBatchSlow(dst[:start], store, register, incarnation, prev, b)
			}
		}
		e.ID, e.Time, e.ClockTrusted, e.Data = r.ID, r.WallTime, r.ClockTrusted, r.Data
		if e.ID == "" && !prefixOK || !plainJSON(e.ID) || !b.Compact(i) && !compactJSON(e.Data) {
			return appendBatchSlow(dst[:start], store, register, incarnation, prev, b)
		}
		var ok bool
		sid.seq = r.Seq
		if dst, ok = appendChecked(dst, &e, &sid); !ok {
			return appendBatchSlow(dst[:start], store, register, incarnation, prev, b)
		}
	}
	dst = append(dst, ']')
	if n := len(dst) - start; n > MaxEventsMessage {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	return dst, nil
}

// appendBatchSlow is AppendBatch through EncodeRecordsStamped, for a
// batch the hand-written path cannot write exactly as encoding/json does.
func appendBatchSlow(dst []byte, store, register, incarnation, prev string, b *ledger.OutboxBatch) ([]byte, error) {
	recs := slices.Clone(b.Recs)
	for i := range recs {
		if recs[i].ID == "" {
			recs[i].ID = b.IDPrefix + strconv.FormatUint(recs[i].Seq, 10)
		}
	}
	p, err := EncodeRecordsStamped(store, register, incarnation, prev, recs)
	if err != nil {
		return dst, err
	}
	return append(dst, p...), nil
}
