package cardsafe_test

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
)

func TestChecks(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		gs1, luhn   bool
		pan, inside bool
	}{
		{name: "EAN-13 valid", in: "4006381333931", gs1: true},
		{name: "UPC-A valid", in: "036000291452", gs1: true},
		{name: "EAN-8 valid", in: "96385074", gs1: true},
		{name: "EAN-13 wrong check happens to be Luhn-valid", in: "4006381333932", luhn: true, pan: true, inside: true},
		{name: "EAN-13 wrong check", in: "4006381333933"},
		{name: "Visa test PAN", in: "4111111111111111", luhn: true, pan: true, inside: true},
		{name: "Mastercard test PAN", in: "5555555555554444", luhn: true, pan: true, inside: true},
		{name: "Amex test PAN", in: "378282246310005", luhn: true, pan: true, inside: true},
		{name: "PAN wrong Luhn", in: "4111111111111113"},
		{name: "Luhn 9-prefix is national use, not PAN", in: "9000000000000009", luhn: false},
		{name: "PAN inside text", in: "AB4111111111111111CD", inside: true},
		{name: "PAN glued into a longer digit run is not one", in: "0004111111111111111000"},
		{name: "PAN between separators", in: "A=4111111111111111=B", inside: true},
		{name: "short Luhn number is no PAN", in: "79927398713", luhn: true},
		{name: "not digits", in: "12a4"},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cardsafe.GS1Valid(tt.in); got != tt.gs1 {
				t.Errorf("GS1Valid = %v, want %v", got, tt.gs1)
			}
			if got := cardsafe.LuhnValid(tt.in); got != tt.luhn {
				t.Errorf("LuhnValid = %v, want %v", got, tt.luhn)
			}
			if got := cardsafe.IsPAN(tt.in); got != tt.pan {
				t.Errorf("IsPAN = %v, want %v", got, tt.pan)
			}
			if got := cardsafe.ContainsPAN(tt.in); got != tt.inside {
				t.Errorf("ContainsPAN = %v, want %v", got, tt.inside)
			}
		})
	}
}

func TestMask(t *testing.T) {
	if got := cardsafe.Mask("4111111111111111"); got != "************1111" {
		t.Fatalf("Mask = %q", got)
	}
	if got := cardsafe.Mask("12"); got != "****" {
		t.Fatalf("Mask short = %q", got)
	}
	if cardsafe.ContainsPAN(cardsafe.Mask("4111111111111111")) {
		t.Fatal("masked number still contains a PAN")
	}
}
