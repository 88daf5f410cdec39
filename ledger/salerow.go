package ledger

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Sale rows in binary (schema 8). The sale row was JSON: the sale's JSON
// as sent to head office (about 600 bytes for three lines) inside the
// JSON of the refund state (about 300 more), encoded twice by reflection
// in the committer, and the largest value a sale writes. It now holds the
// sale and the refund state in a compact binary form, about a quarter of
// that; head office still gets the same JSON (encodeSale, byte for byte
// json.Marshal's), built when the outbox is read:
//
//	0x03 | flags | fingerprint (16 bytes) | sale id | register | seq |
//	member id | lines (no, sku, quantity, unit price, discount, category) |
//	tenders (kind, amount) | redemptions (reward id, points, discount) |
//	total | wall time | rule version | boot id | since boot | clock fault |
//	events (seq) | balance | earned | redeemed | line states (no, units,
//	amount, earned, earn id, refunded, reversed, paid) | bonuses (id,
//	points) | redeems (id, points, parts (lot, points, [expires at])) |
//	expired reversed
//
// Lists are a uvarint count and their items; strings, integers and times
// as in event rows (evrow.go). flags: 1 clock trusted, 2 tenders nil
// (JSON null, not []), 4 closed, 8 voided. A fingerprint that is not 32
// hex digits is stored as a string after flag 16. Rows written before
// schema 8 are JSON (they start with '{'), read alike, and stay JSON when
// a refund rewrites them, so their outbox record keeps its bytes.
const saleRowMark byte = 0x03

const (
	srTrusted    byte = 1
	srTendersNil byte = 2
	srClosed     byte = 4
	srVoided     byte = 8
	srFPString   byte = 16
)

// fingerprintBytes decodes fp into out when it is what fingerprint gives
// (hex.EncodeToString of 16 bytes: 32 lowercase hex digits), the form a
// binary row stores as bytes; any other string is stored as it is.
func fingerprintBytes(fp string, out *[16]byte) bool {
	if len(fp) != 2*len(out) {
		return false
	}
	for i := range out {
		hi, ok1 := lowerHexDigit(fp[2*i])
		lo, ok2 := lowerHexDigit(fp[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		out[i] = hi<<4 | lo
	}
	return true
}

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// encodeBinary encodes sr with its sale s.
func (sr *saleRec) encodeBinary(s *Sale, a *arena) []byte {
	b := a.make(160 + 48*len(s.Lines) + 24*len(sr.Lines))
	var flags byte
	if s.ClockTrusted {
		flags |= srTrusted
	}
	if s.Tenders == nil {
		flags |= srTendersNil
	}
	if sr.Closed {
		flags |= srClosed
	}
	if sr.Voided {
		flags |= srVoided
	}
	var fp [16]byte
	if !fingerprintBytes(sr.Fingerprint, &fp) {
		flags |= srFPString
	}
	b = append(b, saleRowMark, flags)
	if flags&srFPString != 0 {
		b = appendStr(b, sr.Fingerprint)
	} else {
		b = append(b, fp[:]...)
	}
	b = appendStr(b, s.ID)
	b = appendStr(b, s.Register)
	b = binary.AppendUvarint(b, s.Seq)
	b = appendStr(b, s.MemberID)
	b = binary.AppendUvarint(b, uint64(len(s.Lines)))
	for _, ln := range s.Lines {
		b = binary.AppendVarint(b, int64(ln.No))
		b = appendStr(b, ln.SKU)
		b = binary.AppendVarint(b, ln.Quantity)
		b = binary.AppendVarint(b, int64(ln.UnitPrice))
		b = binary.AppendVarint(b, int64(ln.Discount))
		b = appendStr(b, ln.Category)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Tenders)))
	for _, t := range s.Tenders {
		b = appendStr(b, t.Kind)
		b = binary.AppendVarint(b, int64(t.Amount))
	}
	b = binary.AppendUvarint(b, uint64(len(s.Redemptions)))
	for _, r := range s.Redemptions {
		b = appendStr(b, r.RewardID)
		b = binary.AppendVarint(b, int64(r.Points))
		b = binary.AppendVarint(b, int64(r.Discount))
	}
	b = binary.AppendVarint(b, int64(s.Total))
	b = appendTime(b, s.WallTime)
	b = binary.AppendVarint(b, int64(s.RuleVersion))
	b = appendStr(b, s.BootID)
	b = binary.AppendVarint(b, s.SinceBoot)
	b = appendStr(b, s.ClockFault)
	b = binary.AppendUvarint(b, uint64(len(sr.Events)))
	for _, e := range sr.Events {
		b = binary.AppendUvarint(b, e)
	}
	b = binary.AppendVarint(b, int64(sr.Balance))
	b = binary.AppendVarint(b, int64(sr.Earned))
	b = binary.AppendVarint(b, int64(sr.Redeemed))
	b = binary.AppendUvarint(b, uint64(len(sr.Lines)))
	for _, ls := range sr.Lines {
		b = binary.AppendVarint(b, int64(ls.No))
		b = binary.AppendVarint(b, ls.Units)
		b = binary.AppendVarint(b, int64(ls.Amount))
		b = binary.AppendVarint(b, int64(ls.Earned))
		b = appendStr(b, ls.EarnID)
		b = binary.AppendVarint(b, ls.Refunded)
		b = binary.AppendVarint(b, int64(ls.Reversed))
		b = binary.AppendVarint(b, int64(ls.Paid))
	}
	b = binary.AppendUvarint(b, uint64(len(sr.Bonuses)))
	for _, e := range sr.Bonuses {
		b = appendStr(b, e.ID)
		b = binary.AppendVarint(b, int64(e.Points))
	}
	b = binary.AppendUvarint(b, uint64(len(sr.Redeems)))
	for _, r := range sr.Redeems {
		b = appendStr(b, r.ID)
		b = binary.AppendVarint(b, int64(r.Points))
		b = binary.AppendUvarint(b, uint64(len(r.Parts)))
		for _, p := range r.Parts {
			b = binary.AppendUvarint(b, p.Lot)
			b = binary.AppendVarint(b, int64(p.Points))
			if p.ExpiresAt.IsZero() {
				b = append(b, 0)
			} else {
				b = append(b, 1)
				b = appendTime(b, p.ExpiresAt)
			}
		}
	}
	return binary.AppendVarint(b, int64(sr.ExpiredReversed))
}

// count reads a list's length, bounded by the bytes left (each item takes
// at least one), so a damaged row cannot ask for a huge allocation.
func (d *rowDecoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errShortRow
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

// decodeSaleRow decodes the sale row v (either form) into sr; a binary
// row's sale is sr.bin.
func decodeSaleRow(v []byte, sr *saleRec) error {
	if len(v) == 0 || v[0] != saleRowMark {
		return json.Unmarshal(v, sr)
	}
	if len(v) < 2 {
		return errShortRow
	}
	flags := v[1]
	d := rowDecoder{b: v[2:]}
	*sr = saleRec{}
	if flags&srFPString != 0 {
		sr.Fingerprint = d.str()
	} else if len(d.b) < 16 {
		return errShortRow
	} else {
		sr.Fingerprint = hex.EncodeToString(d.b[:16])
		d.b = d.b[16:]
	}
	s := &Sale{ClockTrusted: flags&srTrusted != 0}
	s.ID = d.str()
	s.Register = d.str()
	s.Seq = d.uvarint()
	s.MemberID = d.str()
	if n := d.count(); n > 0 {
		s.Lines = make([]Line, n)
		for i := range s.Lines {
			ln := &s.Lines[i]
			ln.No = int(d.varint())
			ln.SKU = d.str()
			ln.Quantity = d.varint()
			ln.UnitPrice = Money(d.varint())
			ln.Discount = Money(d.varint())
			ln.Category = d.str()
		}
	}
	n := d.count()
	if flags&srTendersNil == 0 {
		s.Tenders = make([]Tender, n)
	} else if n > 0 {
		return errors.New("sale row: tenders both null and listed")
	}
	for i := range s.Tenders {
		s.Tenders[i].Kind = d.str()
		s.Tenders[i].Amount = Money(d.varint())
	}
	if n := d.count(); n > 0 {
		s.Redemptions = make([]Redemption, n)
		for i := range s.Redemptions {
			r := &s.Redemptions[i]
			r.RewardID = d.str()
			r.Points = Points(d.varint())
			r.Discount = Money(d.varint())
		}
	}
	s.Total = Money(d.varint())
	s.WallTime = d.time()
	s.RuleVersion = int(d.varint())
	s.BootID = d.str()
	s.SinceBoot = d.varint()
	s.ClockFault = d.str()
	sr.MemberID = s.MemberID
	if n := d.count(); n > 0 {
		sr.Events = make([]uint64, n)
		for i := range sr.Events {
			sr.Events[i] = d.uvarint()
		}
	}
	sr.Balance = Points(d.varint())
	sr.Earned = Points(d.varint())
	sr.Redeemed = Points(d.varint())
	if n := d.count(); n > 0 {
		sr.Lines = make([]lineState, n)
		for i := range sr.Lines {
			ls := &sr.Lines[i]
			ls.No = int(d.varint())
			ls.Units = d.varint()
			ls.Amount = Money(d.varint())
			ls.Earned = Points(d.varint())
			ls.EarnID = d.str()
			ls.Refunded = d.varint()
			ls.Reversed = Points(d.varint())
			ls.Paid = Money(d.varint())
		}
	}
	if n := d.count(); n > 0 {
		sr.Bonuses = make([]evRef, n)
		for i := range sr.Bonuses {
			sr.Bonuses[i].ID = d.str()
			sr.Bonuses[i].Points = Points(d.varint())
		}
	}
	if n := d.count(); n > 0 {
		sr.Redeems = make([]redeemRef, n)
		for i := range sr.Redeems {
			r := &sr.Redeems[i]
			r.ID = d.str()
			r.Points = Points(d.varint())
			if m := d.count(); m > 0 {
				r.Parts = make([]lotPart, m)
				for j := range r.Parts {
					p := &r.Parts[j]
					p.Lot = d.uvarint()
					p.Points = Points(d.varint())
					if len(d.b) == 0 {
						d.err = errShortRow
						break
					}
					has := d.b[0]
					d.b = d.b[1:]
					if has == 1 {
						p.ExpiresAt = d.time()
					}
				}
			}
		}
	}
	sr.ExpiredReversed = Points(d.varint())
	sr.Closed, sr.Voided = flags&srClosed != 0, flags&srVoided != 0
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("sale row: %w", errors.Join(d.err, errTrailing(len(d.b))))
	}
	sr.bin = s
	return nil
}

// saleJSON is the sale's payload as sent to head office.
func (sr *saleRec) saleJSON() ([]byte, error) {
	if sr.bin == nil {
		return sr.Sale, nil
	}
	return encodeSale(sr.bin)
}

// readSaleRow reads the sale row of id from the sales bucket.
func readSaleRow(b *bolt.Bucket, id string) (*saleRec, bool, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return nil, false, nil
	}
	var sr saleRec
	if err := decodeSaleRow(v, &sr); err != nil {
		return nil, true, fmt.Errorf("decode sale %q: %w", id, err)
	}
	return &sr, true, nil
}
