package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// saleFingerprint is fingerprint(*s) (a sale's idempotency fingerprint,
// stored in its row: it must stay byte for byte what it was). It writes
// the JSON encoding/json writes for saleShape by hand when every string in
// it is plain (printable ASCII that JSON writes as it is), which a sale's
// ids, SKUs, categories and tender kinds nearly always are, and leaves any
// other to json.Marshal: reflection was most of a caller's CPU before its
// sale was queued. TestSaleFingerprintIsJSONs holds the two together.
func saleFingerprint(s *saleShape) string {
	b, ok := appendSaleShape(make([]byte, 0, 96+96*len(s.Lines)+32*len(s.Tenders)), s)
	if !ok {
		return fingerprint(*s)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// appendSaleShape appends json.Marshal(s) to b; ok is false when a string
// is not plain (plainJSON), and b is then not that encoding.
func appendSaleShape(b []byte, s *saleShape) ([]byte, bool) {
	ok := true
	str := func(b []byte, v string) []byte {
		if !plainJSON(v) {
			ok = false
		}
		b = append(b, '"')
		b = append(b, v...)
		return append(b, '"')
	}
	b = append(b, `{"MemberID":`...)
	b = str(b, s.MemberID)
	b = append(b, `,"Lines":`...)
	if s.Lines == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, ln := range s.Lines {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"no":`...)
			b = strconv.AppendInt(b, int64(ln.No), 10)
			b = append(b, `,"sku":`...)
			b = str(b, ln.SKU)
			b = append(b, `,"quantity":`...)
			b = strconv.AppendInt(b, ln.Quantity, 10)
			b = append(b, `,"unit_price":`...)
			b = strconv.AppendInt(b, int64(ln.UnitPrice), 10)
			if ln.Discount != 0 {
				b = append(b, `,"discount":`...)
				b = strconv.AppendInt(b, int64(ln.Discount), 10)
			}
			if ln.Category != "" {
				b = append(b, `,"category":`...)
				b = str(b, ln.Category)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"Tenders":`...)
	if s.Tenders == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, t := range s.Tenders {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"kind":`...)
			b = str(b, t.Kind)
			b = append(b, `,"amount":`...)
			b = strconv.AppendInt(b, int64(t.Amount), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"Redemptions":`...)
	if s.Redemptions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range s.Redemptions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"RewardID":`...)
			b = str(b, r.RewardID)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), ok
}

// plainJSON reports whether encoding/json writes s between its quotes as
// it is: printable ASCII without the quote, the backslash, or the HTML
// characters it escapes (<, >, &).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
