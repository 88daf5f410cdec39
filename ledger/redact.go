package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
)

// Erased is the payload of an OutErased record: this register carried out
// head office's erasure number Erasure of member MemberID (docs/protocol.md
// "Member erasure"). It carries no personal data.
type Erased struct {
	MemberID string `json:"member_id"`
	Erasure  uint64 `json:"erasure"`
}

// redacted is the data of a profile record (OutMember, OutConsent) of an
// erased member after redaction: the member's id and a digest of what
// the record said, so an event resent after the erasure is still
// recognised as the same event, never as new data.
type redacted struct {
	Erased string `json:"erased"`
	SHA256 string `json:"sha256"`
}

// IsProfileRecord reports whether records of type t carry a member's
// personal data (profile, contact, consent history) and are redacted when
// the member is erased.
func IsProfileRecord(t OutboxType) bool { return t == OutMember || t == OutConsent }

// RedactRecord returns r with its data replaced by the redacted form for
// member: {"erased":member,"sha256":digest}, the digest of r's type, id and
// compacted data. Head office and the registers redact with this one
// function, so a record a register redacted and one head office redacted
// are the same bytes. A record already redacted is returned unchanged.
func RedactRecord(r OutboxRecord, member string) OutboxRecord {
	if _, ok := RedactedMember(r.Data); ok {
		return r
	}
	var data bytes.Buffer
	if json.Compact(&data, r.Data) != nil {
		data.Reset()
		data.Write(r.Data)
	}
	h := sha256.New()
	h.Write([]byte(r.Type))
	h.Write([]byte{0})
	h.Write([]byte(r.ID))
	h.Write([]byte{0})
	h.Write(data.Bytes())
	b := make([]byte, 0, 96+len(member))
	b = append(b, `{"erased":`...)
	b = strconv.AppendQuote(b, member)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, h.Sum(nil))
	b = append(b, `"}`...)
	r.Data = b
	return r
}

// RedactedMember reports whether data is a redacted profile record's data
// and, if so, whose.
func RedactedMember(data []byte) (string, bool) {
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte(`{"erased":`)) {
		return "", false
	}
	var r redacted
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if d.Decode(&r) != nil || r.Erased == "" || len(r.SHA256) != 64 {
		return "", false
	}
	return r.Erased, true
}

// ProfileMember returns the member a profile record (IsProfileRecord)
// names: its id, or member_id for a consent change, or the erased member of
// a redacted record; "" when data names none.
func ProfileMember(data []byte) string {
	if m, ok := RedactedMember(data); ok {
		return m
	}
	var v struct {
		ID       string `json:"id"`
		MemberID string `json:"member_id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	if v.MemberID != "" {
		return v.MemberID
	}
	return v.ID
}
