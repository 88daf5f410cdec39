package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Lot and purchase rows in binary (schema 8). A sale writes a lot row and
// a purchase row into the member's leaf and, for its second and third
// lines, reads and rewrites the lot again: as JSON they were about 250
// bytes and four reflection passes per sale. Rows written before schema
// 8 are JSON (they start with '{') and read alike.
//
//	lot:      0x05 | remaining (varint) | 0, or 1 and expires at
//	purchase: 0x04 | flags (1 trusted, 2 corrected) | sale id | seq |
//	          wall time | amount | categories | [corrected time]
//
// Strings, integers and times as in event rows (evrow.go).
const (
	lotRowMark      byte = 0x05
	purchaseRowMark byte = 0x04
)

func encodeLot(lot lotRec, a *arena) []byte {
	b := a.make(24)
	b = append(b, lotRowMark)
	b = binary.AppendVarint(b, int64(lot.Remaining))
	if lot.ExpiresAt.IsZero() {
		return append(b, 0)
	}
	return appendTime(append(b, 1), lot.ExpiresAt)
}

func decodeLot(v []byte, lot *lotRec) error {
	if len(v) == 0 || v[0] != lotRowMark {
		*lot = lotRec{}
		return json.Unmarshal(v, lot)
	}
	d := rowDecoder{b: v[1:]}
	*lot = lotRec{Remaining: Points(d.varint())}
	switch flag := d.byte(); {
	case d.err != nil:
	case flag == 1:
		lot.ExpiresAt = d.time()
	case flag != 0:
		d.err = fmt.Errorf("lot expiry flag %d", flag)
	}
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("lot row: %w", errors.Join(d.err, errTrailing(len(d.b))))
	}
	return nil
}

const (
	purTrusted   byte = 1
	purCorrected byte = 2
)

func encodePurchase(p *Purchase, a *arena) []byte {
	b := a.make(48 + len(p.SaleID) + 16*len(p.Categories))
	var flags byte
	if p.ClockTrusted {
		flags |= purTrusted
	}
	if !p.CorrectedTime.IsZero() {
		flags |= purCorrected
	}
	b = append(b, purchaseRowMark, flags)
	b = appendStr(b, p.SaleID)
	b = binary.AppendUvarint(b, p.Seq)
	b = appendTime(b, p.WallTime)
	b = binary.AppendVarint(b, int64(p.Amount))
	b = binary.AppendUvarint(b, uint64(len(p.Categories)))
	for _, c := range p.Categories {
		b = appendStr(b, c)
	}
	if flags&purCorrected != 0 {
		b = appendTime(b, p.CorrectedTime)
	}
	return b
}

// purchaseTimesOK: a purchase row holds only times JSON could (as the
// JSON row did, which refused the others).
func purchaseTimesOK(p *Purchase) bool {
	return jsonTimeOK(p.WallTime) && (p.CorrectedTime.IsZero() || jsonTimeOK(p.CorrectedTime))
}

func decodePurchase(v []byte, p *Purchase) error {
	if len(v) == 0 || v[0] != purchaseRowMark {
		*p = Purchase{}
		return json.Unmarshal(v, p)
	}
	if len(v) < 2 {
		return errShortRow
	}
	flags := v[1]
	d := rowDecoder{b: v[2:]}
	*p = Purchase{ClockTrusted: flags&purTrusted != 0}
	p.SaleID = d.str()
	p.Seq = d.uvarint()
	p.WallTime = d.time()
	p.Amount = Money(d.varint())
	if n := d.count(); n > 0 {
		p.Categories = make([]string, n)
		for i := range p.Categories {
			p.Categories[i] = d.str()
		}
	}
	if flags&purCorrected != 0 {
		p.CorrectedTime = d.time()
	}
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("purchase row: %w", errors.Join(d.err, errTrailing(len(d.b))))
	}
	return nil
}

func (d *rowDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errShortRow
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}
