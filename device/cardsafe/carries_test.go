package cardsafe_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
)

// TestCards are the schemes' published test card numbers.
var TestCards = []string{
	"4111111111111111", "4012888888881881", "4242424242424242", "4000056655665556",
	"5555555555554444", "5105105105105100", "2223003122003222",
	"378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
	"3056930009020004", "36227206271667", "3566002020360505", "6200000000000005",
	"4222222222222",
}

func TestCarries(t *testing.T) {
	for _, c := range TestCards {
		for _, s := range []string{c, "card " + c, c + "x", spaced(c), dashed(c), "M" + c, "order 12 " + spaced(c) + " 34"} {
			if !cardsafe.Carries(s) {
				t.Errorf("Carries(%q) = false", s)
			}
			if m := cardsafe.MaskPANs(s); strings.Contains(onlyDigits(m), c[:len(c)-4]) {
				t.Errorf("MaskPANs(%q) = %q still shows the number", s, m)
			}
		}
	}
	for _, s := range []string{
		"4006381333931",        // an EAN-13 article number (GS1 check digit), as the scanner allows
		"2990000000002",        // member card range (starts with 9 after the 2: not Luhn)
		"+972500000001",        // a phone
		"M12345674",            // a club card
		"s1-r1-000017",         // a sale id
		"9780201379624",        // ISBN
		"12345678901234567890", // 20 digits: no card is that long
		"Dana Levi",
	} {
		if cardsafe.Carries(s) {
			t.Errorf("Carries(%q) = true", s)
		}
		if m := cardsafe.MaskPANs(s); m != s {
			t.Errorf("MaskPANs(%q) = %q", s, m)
		}
	}
}

func TestReplaceAttr(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: cardsafe.ReplaceAttr}))
	log.Info("lookup 4111111111111111", "alias", "4111 1111 1111 1111", "err", errors.New("member 5555555555554444 unknown"),
		"aliases", []string{"x", "378282246310005"}, "sku", "4006381333931")
	out := buf.String()
	for _, c := range []string{"411111111111", "555555555555", "37828224631", "4111 1111 1111"} {
		if strings.Contains(out, c) {
			t.Errorf("log shows %s: %s", c, out)
		}
	}
	if !strings.Contains(out, "************1111") || !strings.Contains(out, "4006381333931") {
		t.Errorf("log %s", out)
	}
}

func FuzzMaskPANs(f *testing.F) {
	f.Add("card 4111 1111 1111 1111 ok")
	f.Add("4006381333931")
	f.Fuzz(func(t *testing.T, s string) {
		m := cardsafe.MaskPANs(s)
		if cardsafe.Carries(m) {
			t.Fatalf("MaskPANs(%q) = %q still carries a card number", s, m)
		}
	})
}

func spaced(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); i++ {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(c[i])
	}
	return b.String()
}

func dashed(c string) string { return strings.ReplaceAll(spaced(c), " ", "-") }

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
