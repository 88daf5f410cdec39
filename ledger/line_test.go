package ledger_test

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
)

func TestLineAmount(t *testing.T) {
	for _, tc := range []struct {
		name string
		line ledger.Line
		want ledger.Money
	}{
		{"one unit", ledger.Line{Quantity: 1, UnitPrice: 250}, 250},
		{"several units", ledger.Line{Quantity: 3, UnitPrice: 199}, 597},
		{"with a discount", ledger.Line{Quantity: 2, UnitPrice: 500, Discount: 150}, 850},
		{"discount of the whole line", ledger.Line{Quantity: 1, UnitPrice: 90, Discount: 90}, 0},
		{"empty line", ledger.Line{}, 0},
	} {
		if got := tc.line.Amount(); got != tc.want {
			t.Errorf("%s: %+v.Amount() = %d, want %d", tc.name, tc.line, got, tc.want)
		}
	}
}
