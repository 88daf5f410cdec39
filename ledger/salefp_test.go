package ledger

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

// TestSaleFingerprintIsJSONs: the hand-written fingerprint of a sale is
// the one fingerprint (json.Marshal) gives, escapes and invalid UTF-8
// included, so a retry of a sale recorded before it still matches its
// row.
func TestSaleFingerprintIsJSONs(t *testing.T) {
	lines := []Line{
		{No: 1, SKU: "4006381333931", Quantity: 2, UnitPrice: 1290, Category: "dairy"},
		{No: 2, SKU: "729", Quantity: 1, UnitPrice: 4590, Discount: 90},
		{No: 3, SKU: "x", Quantity: -6, UnitPrice: -590, Discount: -1},
	}
	for _, tc := range []struct {
		name  string
		shape saleShape
	}{
		{"typical", saleShape{MemberID: "m3", Lines: lines, Tenders: []Tender{{Kind: "card", Amount: 11710}}}},
		{"anonymous, nil tenders", saleShape{Lines: lines[:1]}},
		{"empty slices", saleShape{MemberID: "m", Lines: []Line{}, Tenders: []Tender{}, Redemptions: []RedeemRequest{}}},
		{"redemptions", saleShape{MemberID: "m", Lines: lines, Redemptions: []RedeemRequest{{RewardID: "coffee"}, {RewardID: "cake"}}}},
		{"escaped", saleShape{MemberID: `m"<&>\`, Lines: []Line{{No: 1, SKU: "a\nb", Category: "caf\u00e9 \u2028"}}, Tenders: []Tender{{Kind: "\xff"}}}},
		{"del", saleShape{MemberID: "m\x7f", Lines: lines}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkSaleFingerprint(t, &tc.shape)
		})
	}
	// Random strings from an alphabet with every kind of byte JSON treats
	// apart.
	alphabet := []string{"a", "Z", "0", " ", "~", "-", "\"", "\\", "<", ">", "&", "\n", "\x00", "\x1f", "\x7f", "\u00e9", "\u2028", "\u2029", "\xff", "\xe2\x80"}
	r := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		var s string
		for range r.IntN(6) {
			if r.IntN(3) == 0 {
				s += alphabet[r.IntN(len(alphabet))]
			} else {
				s += alphabet[r.IntN(5)]
			}
		}
		return s
	}
	for range 2000 {
		s := saleShape{MemberID: text()}
		for i := range r.IntN(4) {
			s.Lines = append(s.Lines, Line{No: i + 1, SKU: text(), Quantity: r.Int64N(1e6) - 10, UnitPrice: Money(r.Int64()), Discount: Money(r.Int64N(3)), Category: text()})
		}
		for range r.IntN(3) {
			s.Tenders = append(s.Tenders, Tender{Kind: text(), Amount: Money(r.Int64N(1e9))})
		}
		for range r.IntN(2) {
			s.Redemptions = append(s.Redemptions, RedeemRequest{RewardID: text()})
		}
		checkSaleFingerprint(t, &s)
	}
}

func checkSaleFingerprint(t *testing.T, s *saleShape) {
	t.Helper()
	want, err := json.Marshal(*s)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendSaleShape(nil, s); !bytes.Equal(got, want) {
		t.Fatalf("appendSaleShape wrote\n%s\nencoding/json writes\n%s", got, want)
	}
	if got, want := saleFingerprint(s), fingerprint(*s); got != want {
		t.Fatalf("saleFingerprint %s, fingerprint %s", got, want)
	}
}

// BenchmarkSaleFingerprint: the hand-written fingerprint against
// fingerprint (json.Marshal) on a typical sale.
func BenchmarkSaleFingerprint(b *testing.B) {
	req := typicalSale("g3-177", 17)
	s := saleShape{MemberID: req.MemberID, Lines: req.Lines, Tenders: req.Tenders}
	benchcmp.Compare(b, benchcmp.Options{Ratio: "salefingerprint_vs_json", Unit: "sale"},
		benchcmp.Case{Name: "hand", Op: func(*testing.B) { saleFingerprint(&s) }},
		benchcmp.Case{Name: "json", Op: func(*testing.B) { fingerprint(s) }})
}
