package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Member records in binary (schema 8). Every sale of a member reads and
// rewrites its record; as JSON that was the largest share of the
// committer's CPU after bbolt itself (BenchmarkSaleCPU's profile). The
// record now has a compact binary form; records written before are JSON
// (they start with '{') and read alike:
//
//	0x06 | flags | member id | aliases | name | birthday | email | phone |
//	consent | consent history | tier | enrolled at | home register |
//	language | balance | debt | birthday bonus given at | birthday years |
//	purchases | fingerprint | profile seq | [summary: version, balance,
//	covered, spend, visits, retention, [base]] | offline (seq, points) | untimed
//	(seq, amount)
//
// A consent is given (byte), channel, at, trusted (byte), note. flags: 1
// aliases nil (JSON null), 2 enrolled clock trusted, 4 first bonus
// pending, 8 a summary follows, 16 the summary ends with its Base (the
// local balance up to the seq it covered; schema 9). Strings, integers and times as in event
// rows (evrow.go); what the JSON row would have refused (times outside
// years 0-9999) is refused here too (memberRowOK).
const memberRowMark byte = 0x06

const (
	mrAliasesNil byte = 1
	mrEnrolled   byte = 2
	mrFirstBonus byte = 4
	mrSummary    byte = 8
	mrBase       byte = 16 // the summary's Base follows its retention view (schema 9)
	mrBonus      byte = 32 // the summary's bonus state follows the untimed entries
)

func appendConsent(b []byte, c *Consent) []byte {
	g, t := byte(0), byte(0)
	if c.Given {
		g = 1
	}
	if c.ClockTrusted {
		t = 1
	}
	b = append(b, g)
	b = appendStr(b, c.Channel)
	b = appendTime(b, c.At)
	b = append(b, t)
	return appendStr(b, c.Note)
}

func (d *rowDecoder) consent() Consent {
	var c Consent
	c.Given = d.byte() == 1
	c.Channel = d.str()
	c.At = d.time()
	c.ClockTrusted = d.byte() == 1
	c.Note = d.str()
	return c
}

// encodeMemberRow encodes rec; an error when JSON could not have held
// it (a time outside years 0-9999, a retention view that is not JSON).
func encodeMemberRow(rec *memberRec, a *arena) ([]byte, error) {
	m := &rec.Member
	if !jsonTimeOK(m.Consent.At) {
		return nil, fmt.Errorf("member %q: consent time out of range", m.ID)
	}
	for i := range m.ConsentHistory {
		if !jsonTimeOK(m.ConsentHistory[i].At) {
			return nil, fmt.Errorf("member %q: consent history time out of range", m.ID)
		}
	}
	if !jsonTimeOK(m.EnrolledAt) {
		return nil, fmt.Errorf("member %q: enrolment time out of range", m.ID)
	}
	if !jsonTimeOK(rec.BirthdayBonusGivenAt) && !rec.BirthdayBonusGivenAt.IsZero() {
		return nil, fmt.Errorf("member %q: birthday bonus time out of range", m.ID)
	}
	b := a.make(128 + len(m.Name) + 24*len(m.Aliases) + 48*len(m.ConsentHistory))
	var flags byte
	if m.Aliases == nil {
		flags |= mrAliasesNil
	}
	if m.EnrolledTrusted {
		flags |= mrEnrolled
	}
	if rec.FirstBonusPending {
		flags |= mrFirstBonus
	}
	if rec.Summary != nil {
		flags |= mrSummary
		if rec.Summary.BaseKnown {
			flags |= mrBase
		}
		if rec.Summary.FirstBonus != "" || rec.Summary.BirthdayYear != 0 {
			flags |= mrBonus
		}
	}
	b = append(b, memberRowMark, flags)
	b = appendStr(b, m.ID)
	b = binary.AppendUvarint(b, uint64(len(m.Aliases)))
	for _, a := range m.Aliases {
		b = appendStr(b, a)
	}
	b = appendStr(b, m.Name)
	b = appendStr(b, m.Birthday)
	b = appendStr(b, m.Contact.Email)
	b = appendStr(b, m.Contact.Phone)
	b = appendConsent(b, &m.Consent)
	b = binary.AppendUvarint(b, uint64(len(m.ConsentHistory)))
	for i := range m.ConsentHistory {
		b = appendConsent(b, &m.ConsentHistory[i])
	}
	b = appendStr(b, m.Tier)
	b = appendTime(b, m.EnrolledAt)
	b = appendStr(b, m.HomeRegister)
	b = appendStr(b, m.Language)
	b = binary.AppendVarint(b, int64(rec.Balance))
	b = binary.AppendVarint(b, int64(rec.Debt))
	if rec.BirthdayBonusGivenAt.IsZero() {
		b = append(b, 0)
	} else {
		b = appendTime(append(b, 1), rec.BirthdayBonusGivenAt)
	}
	b = binary.AppendUvarint(b, uint64(len(rec.BirthdayYears)))
	for _, y := range rec.BirthdayYears {
		b = binary.AppendVarint(b, int64(y))
	}
	b = binary.AppendVarint(b, int64(rec.Purchases))
	b = appendStr(b, rec.Fingerprint)
	b = binary.AppendUvarint(b, rec.ProfileSeq)
	if s := rec.Summary; s != nil {
		b = binary.AppendUvarint(b, s.Version)
		b = binary.AppendVarint(b, int64(s.Balance))
		b = binary.AppendUvarint(b, s.Covered)
		b = binary.AppendVarint(b, int64(s.Spend12m))
		b = binary.AppendVarint(b, int64(s.Visits12m))
		ret := []byte(s.Retention)
		if len(ret) > 0 {
			// as json.Marshal writes a RawMessage: compacted
			var buf bytes.Buffer
			if err := json.Compact(&buf, ret); err != nil {
				return nil, fmt.Errorf("member %q: retention view: %w", m.ID, err)
			}
			ret = buf.Bytes()
		}
		b = binary.AppendUvarint(b, uint64(len(ret)))
		b = append(b, ret...)
		if s.BaseKnown {
			b = binary.AppendVarint(b, int64(s.Base))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(rec.Offline)))
	for _, o := range rec.Offline {
		b = binary.AppendUvarint(b, o.Seq)
		b = binary.AppendVarint(b, int64(o.Points))
	}
	b = binary.AppendUvarint(b, uint64(len(rec.Untimed)))
	for _, u := range rec.Untimed {
		b = binary.AppendUvarint(b, u.Seq)
		b = binary.AppendVarint(b, int64(u.Amount))
	}
	if flags&mrBonus != 0 {
		b = appendStr(b, rec.Summary.FirstBonus)
		b = binary.AppendVarint(b, int64(rec.Summary.BirthdayYear))
	}
	return b, nil
}

// decodeMemberRow decodes a member record in either form.
func decodeMemberRow(v []byte, rec *memberRec) error {
	if len(v) == 0 || v[0] != memberRowMark {
		*rec = memberRec{}
		return json.Unmarshal(v, rec)
	}
	if len(v) < 2 {
		return errShortRow
	}
	flags := v[1]
	d := rowDecoder{b: v[2:]}
	if flags&(mrBase|mrBonus) != 0 && flags&mrSummary == 0 {
		return errors.New("member row: a summary's base or bonus state without a summary")
	}
	*rec = memberRec{FirstBonusPending: flags&mrFirstBonus != 0}
	m := &rec.Member
	m.ID = d.str()
	n := d.count()
	if flags&mrAliasesNil == 0 {
		m.Aliases = make([]string, n)
	} else if n > 0 {
		return errors.New("member row: aliases both null and listed")
	}
	for i := range m.Aliases {
		m.Aliases[i] = d.str()
	}
	m.Name = d.str()
	m.Birthday = d.str()
	m.Contact.Email = d.str()
	m.Contact.Phone = d.str()
	m.Consent = d.consent()
	if n := d.count(); n > 0 {
		m.ConsentHistory = make([]Consent, n)
		for i := range m.ConsentHistory {
			m.ConsentHistory[i] = d.consent()
		}
	}
	m.Tier = d.str()
	m.EnrolledAt = d.time()
	m.EnrolledTrusted = flags&mrEnrolled != 0
	m.HomeRegister = d.str()
	m.Language = d.str()
	rec.Balance = Points(d.varint())
	rec.Debt = Points(d.varint())
	if d.byte() == 1 {
		rec.BirthdayBonusGivenAt = d.time()
	}
	if n := d.count(); n > 0 {
		rec.BirthdayYears = make([]int, n)
		for i := range rec.BirthdayYears {
			rec.BirthdayYears[i] = int(d.varint())
		}
	}
	rec.Purchases = int(d.varint())
	rec.Fingerprint = d.str()
	rec.ProfileSeq = d.uvarint()
	if flags&mrSummary != 0 {
		s := &summaryState{}
		s.Version = d.uvarint()
		s.Balance = Points(d.varint())
		s.Covered = d.uvarint()
		s.Spend12m = Money(d.varint())
		s.Visits12m = int(d.varint())
		if n := d.count(); n > 0 && d.err == nil {
			s.Retention = json.RawMessage(append([]byte(nil), d.b[:n]...))
			d.b = d.b[n:]
		}
		if flags&mrBase != 0 {
			s.Base, s.BaseKnown = Points(d.varint()), true
		}
		rec.Summary = s
	}
	if n := d.count(); n > 0 {
		rec.Offline = make([]offlineRedeem, n)
		for i := range rec.Offline {
			rec.Offline[i].Seq = d.uvarint()
			rec.Offline[i].Points = Points(d.varint())
		}
	}
	if n := d.count(); n > 0 {
		rec.Untimed = make([]untimedPurchase, n)
		for i := range rec.Untimed {
			rec.Untimed[i].Seq = d.uvarint()
			rec.Untimed[i].Amount = Money(d.varint())
		}
	}
	if flags&mrBonus != 0 {
		rec.Summary.FirstBonus = d.str()
		rec.Summary.BirthdayYear = int(d.varint())
	}
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("member row: %w", errors.Join(d.err, errTrailing(len(d.b))))
	}
	return nil
}
