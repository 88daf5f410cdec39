package checkout

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
)

// TestRandomSaleIDNeverCarriesACardNumber: random bytes that spell a card
// number in hex (alone, or with the register id's last digit across the
// dash) are drawn again; the id returned is the first safe one.
func TestRandomSaleIDNeverCarriesACardNumber(t *testing.T) {
	for _, tc := range []struct {
		name, register string
		draws          []string // hex of the random bytes, in order
		want           string
	}{
		{"safe first draw", "r1", []string{"0123456789abcdef"}, "r1-0123456789abcdef"},
		{"a card number in the hex", "r1", []string{"4111111111111111", "00000000000000ff"}, "r1-00000000000000ff"},
		// "e2e-r1-94261874666427fb" was refused in an e2e run: the dash
		// joins r1's 1 to the hex digits.
		{"joined to the register id's digit", "e2e-r1", []string{"94261874666427fb", "abcdefabcdefabcd"}, "e2e-r1-abcdefabcdefabcd"},
		{"two bad draws", "r1", []string{"4111111111111111", "5555555555554444", "aaaaaaaaaaaaaaaa"}, "r1-aaaaaaaaaaaaaaaa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range tc.draws[:len(tc.draws)-1] {
				if !cardsafe.Carries(tc.register + "-" + d) {
					t.Fatalf("test vector %s-%s carries no card number", tc.register, d)
				}
			}
			n := 0
			got := randomSaleID(tc.register, func(b []byte) {
				raw, err := hex.DecodeString(tc.draws[n])
				if err != nil || len(raw) != len(b) {
					t.Fatalf("draw %d: %v", n, err)
				}
				copy(b, raw)
				n++
			})
			if got != tc.want || n != len(tc.draws) {
				t.Fatalf("got %q after %d draws, want %q after %d", got, n, tc.want, len(tc.draws))
			}
		})
	}
	// A register id that carries a card number itself: bounded draws.
	n := 0
	got := randomSaleID("4111111111111111", func(b []byte) { n++; copy(b, "\x00\x00\x00\x00\x00\x00\x00\x00") })
	if n != 16 || !strings.HasPrefix(got, "4111111111111111-") {
		t.Fatalf("a card-number register id: %q after %d draws, want 16 draws", got, n)
	}
}
