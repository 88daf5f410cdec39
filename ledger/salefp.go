package ledger

import (
	"crypto/sha256"
	"encoding/hex"
)

// saleFingerprint is fingerprint(*s) (a sale's idempotency fingerprint,
// stored in its row: it must stay byte for byte what it was) with the
// JSON of saleShape written by hand (appendJSONString, encode.go) instead
// of by reflection, which was most of a caller's CPU before its sale was
// queued. TestSaleFingerprintIsJSONs holds the two together;
// BenchmarkSaleFingerprint compares them.
func saleFingerprint(s *saleShape) string {
	h := sha256.Sum256(appendSaleShape(make([]byte, 0, 96+96*len(s.Lines)+32*len(s.Tenders)), s))
	return hex.EncodeToString(h[:16])
}

// appendSaleShape appends json.Marshal(s) to b.
func appendSaleShape(b []byte, s *saleShape) []byte {
	b = append(b, `{"MemberID":`...)
	b = appendJSONString(b, s.MemberID)
	b = append(b, `,"Lines":`...)
	b = appendLinesJSON(b, s.Lines)
	b = append(b, `,"Tenders":`...)
	b = appendTendersJSON(b, s.Tenders)
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
			b = appendJSONString(b, r.RewardID)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}
