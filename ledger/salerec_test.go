package ledger

// White-box: saleRec is the sales bucket's internal row format.

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestSaleRecEncode checks that the hand-spliced encoding of a sale row
// is byte for byte what json.Marshal writes, so rows written before and
// after the change read the same.
func TestSaleRecEncode(t *testing.T) {
	sale, err := json.Marshal(Sale{ID: "s1", Register: "r1", Seq: 7, MemberID: "m1",
		Lines:    []Line{{No: 1, SKU: "4006381333931", Quantity: 2, UnitPrice: 1290, Category: "dairy"}},
		WallTime: time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), ClockTrusted: true, Total: 2580})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		rec  saleRec
	}{
		{"anonymous sale", saleRec{Fingerprint: "00ff", Sale: sale, Lines: []lineState{{No: 1, Units: 2, Amount: 2580}}}},
		{"member sale", saleRec{Fingerprint: "abcdef0123456789", Sale: sale, MemberID: "m1", Events: []uint64{8, 9},
			Balance: 25, Earned: 25, Lines: []lineState{{No: 1, Units: 2, Amount: 2580, Earned: 25, EarnID: "r1-8"}},
			Bonuses: []evRef{{ID: "r1-9", Points: 5}}, Redeems: []redeemRef{{ID: "r1-10", Points: 100, Parts: []lotPart{{Lot: 3, Points: 100}}}}}},
		{"closed and voided", saleRec{Fingerprint: "01", Sale: sale, Closed: true, Voided: true}},
		{"no sale json", saleRec{Fingerprint: "01"}},
		{"sale json with a sale field inside", saleRec{Fingerprint: "01", Sale: json.RawMessage(`{"sale":null,"x":"\"sale\":null"}`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			got := tc.rec.encode()
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %s\nwant %s", got, want)
			}
			var back saleRec
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(tc.rec.Sale) > 0 && !bytes.Equal(back.Sale, tc.rec.Sale) {
				t.Fatalf("sale field: got %s, want %s", back.Sale, tc.rec.Sale)
			}
		})
	}
}
