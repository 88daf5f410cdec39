package classify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/classify"
)

func testOptions() classify.Options {
	return classify.Options{
		Members: []classify.MemberPattern{
			{Name: "club card", Prefix: "990", Length: 16, Check: classify.CheckLuhn},
			{Name: "code128 card", Prefix: "M", Length: 9, Check: classify.CheckMod10},
			{Name: "printed in-store card", From: "2900000000000", To: "2999999999999"},
		},
		Embedded: []classify.EmbeddedLabel{
			{Prefix: "21", ArticleDigits: 5, ValueDigits: 5},
			{Prefix: "22", ArticleDigits: 4, InnerCheck: true, ValueDigits: 5, Weight: true},
		},
		Controls: map[string]string{"*TOTAL*": "TOTAL", "*CANCEL*": "CANCEL", "*REDEEM*": "REDEEM"},
	}
}

// withCheck appends the GS1 check digit.
func withCheck(s string) string { return s + string(cardsafe.GS1CheckDigit(s)) }

// withLuhn appends the Luhn check digit.
func withLuhn(s string) string {
	for d := byte('0'); d <= '9'; d++ {
		if cardsafe.LuhnValid(s + string(d)) {
			return s + string(d)
		}
	}
	panic("unreachable")
}

// wrongLast changes the last digit.
func wrongLast(s string) string { return s[:len(s)-1] + string('0'+(s[len(s)-1]-'0'+1)%10) }

func TestClassify(t *testing.T) {
	c, err := classify.New(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	price := withCheck("210012301299")  // article 00123, price 01299
	weight := withCheck("220456700750") // article 0456, inner 7, 750 g
	tests := []struct {
		name   string
		sym    device.Symbology
		in     string
		kind   device.Kind
		code   string
		sym2   device.Symbology
		action string
		err    error
		item   *device.ItemInfo
	}{
		{name: "EAN-13", in: "4006381333931", kind: device.KindItem, code: "4006381333931", sym2: device.SymEAN13},
		{name: "UPC-A 12 digits normalised", in: "036000291452", kind: device.KindItem, code: "0036000291452", sym2: device.SymUPCA},
		{name: "UPC-A as EAN-13 with AIM", sym: device.SymEAN13, in: "0036000291452", kind: device.KindItem, code: "0036000291452", sym2: device.SymUPCA},
		{name: "EAN-8", in: "96385074", kind: device.KindItem, code: "96385074", sym2: device.SymEAN8},
		{name: "EAN-13 wrong check", in: "4006381333933", err: device.ErrBadCheckDigit},
		// docs/api.md POST /v1/scan: a wrong EAN check digit that makes the
		// number Luhn-valid is a payment card (it cannot be told apart).
		{name: "EAN-13 wrong check, Luhn-valid: a card number", in: "4006381333932", err: device.ErrNotMemberCard},
		{name: "EAN-13 wrong check 0", in: "4006381333930", err: device.ErrBadCheckDigit},
		{name: "EAN-8 wrong check", in: "96385075", err: device.ErrBadCheckDigit},
		{name: "EAN-8 AIM with 13 digits", sym: device.SymEAN8, in: "4006381333931", err: device.ErrUnknownCode},
		{name: "in-store plain", in: withCheck("200000000001"), kind: device.KindItem, item: &device.ItemInfo{InStore: true}},
		{name: "price embedded", in: price, kind: device.KindItem, item: &device.ItemInfo{InStore: true, Article: "00123", PriceMinor: 1299}},
		{name: "weight embedded", in: weight, kind: device.KindItem, item: &device.ItemInfo{InStore: true, Article: "0456", WeightGrams: 750}},
		{name: "member in-store EAN-13 range", in: withCheck("290000012345"), kind: device.KindMember, code: withCheck("290000012345")},
		{name: "member in-store range wrong check", in: "2900000123450", err: device.ErrBadCheckDigit},
		{name: "member Luhn 16 digits", in: withLuhn("990123456789012"), kind: device.KindMember, code: withLuhn("990123456789012")},
		{name: "member Luhn wrong", in: wrongLast(withLuhn("990123456789012")), err: device.ErrBadCheckDigit},
		{name: "member letter prefix mod10", sym: device.SymCode128, in: "M" + withCheck("1234567"), kind: device.KindMember, code: "M" + withCheck("1234567")},
		{name: "member letter prefix wrong check", sym: device.SymCode128, in: "M12345678", err: device.ErrBadCheckDigit},
		{name: "control TOTAL", sym: device.SymCode39, in: "*TOTAL*", kind: device.KindControl, action: "TOTAL", code: "*TOTAL*"},
		{name: "control REDEEM", in: "*REDEEM*", kind: device.KindControl, action: "REDEEM", code: "*REDEEM*"},
		// as Code 39 scanners send the printed *TOTAL*: start/stop stripped,
		// and with an AIM identifier the device was not told to strip
		{name: "control without start/stop", sym: device.SymCode39, in: "TOTAL", kind: device.KindControl, action: "TOTAL", code: "TOTAL"},
		{name: "control with AIM id", in: "]A0TOTAL", kind: device.KindControl, action: "TOTAL", code: "]A0TOTAL"},
		{name: "control with AIM id and start/stop", in: "]A0*CANCEL*", kind: device.KindControl, action: "CANCEL", code: "]A0*CANCEL*"},
		{name: "Visa PAN scanned", in: "4111111111111111", err: device.ErrNotMemberCard},
		{name: "Amex PAN", in: "378282246310005", err: device.ErrNotMemberCard},
		{name: "PAN inside Code 128", sym: device.SymCode128, in: "X4111111111111111Y", err: device.ErrNotMemberCard},
		{name: "unknown text", sym: device.SymCode128, in: "HELLO", err: device.ErrUnknownCode},
		{name: "13 digits in Code 128 are no item (AIM on)", sym: device.SymCode128, in: "5901234123457", err: device.ErrUnknownCode},
		{name: "13 digits in Code 39 are no item", sym: device.SymCode39, in: "5901234123457", err: device.ErrUnknownCode},
		{name: "EAN-13 with its AIM id", sym: device.SymEAN13, in: "5901234123457", kind: device.KindItem, code: "5901234123457"},
		{name: "unknown digits length", in: "12345", err: device.ErrUnknownCode},
		{name: "add-on alone", sym: device.SymEANAddOn, in: "12", err: device.ErrUnknownCode},
		{name: "empty", in: "", err: device.ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.Classify(tt.sym, tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				if r.Kind != device.KindReject || r.Code != "" {
					t.Fatalf("reject result carries %+v", r)
				}
				if tt.in != "" && strings.Contains(err.Error(), tt.in) {
					t.Fatalf("error quotes the input: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected %v", err)
			}
			if r.Kind != tt.kind || (tt.code != "" && r.Code != tt.code) || r.Action != tt.action || (tt.sym2 != "" && r.Symbology != tt.sym2) {
				t.Fatalf("got %+v", r)
			}
			if tt.item != nil && (r.Item == nil || *r.Item != *tt.item) {
				t.Fatalf("item %+v, want %+v", r.Item, tt.item)
			}
		})
	}
}

func TestMember(t *testing.T) {
	c, _ := classify.New(testOptions())
	if r, err := c.Member(device.SymMagTrack, withLuhn("990123456789012")); err != nil || r.Kind != device.KindMember {
		t.Fatalf("member card: %+v %v", r, err)
	}
	for _, in := range []string{"4111111111111111", "4006381333931", "123"} {
		if _, err := c.Member(device.SymMagTrack, in); !errors.Is(err, device.ErrNotMemberCard) {
			t.Errorf("%d digits: %v, want not a member card", len(in), err)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := map[string]classify.Options{
		"unknown check":    {Members: []classify.MemberPattern{{Prefix: "9", Check: "crc"}}},
		"empty pattern":    {Members: []classify.MemberPattern{{Name: "x"}}},
		"short length":     {Members: []classify.MemberPattern{{Prefix: "990", Length: 3}}},
		"bad range":        {Members: []classify.MemberPattern{{From: "29", To: "2999999999999"}}},
		"reversed range":   {Members: []classify.MemberPattern{{From: "2999999999999", To: "2900000000000"}}},
		"embedded 12 long": {Embedded: []classify.EmbeddedLabel{{Prefix: "21", ArticleDigits: 4, ValueDigits: 5}}},
		"embedded not 2x":  {Embedded: []classify.EmbeddedLabel{{Prefix: "31", ArticleDigits: 5, ValueDigits: 5}}},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := classify.New(o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"4006381333931", "036000291452", "96385074", "4111111111111111",
		"X4111111111111111", "*TOTAL*", "2100123012993", "9901234567890128", "M12345670", ""} {
		f.Add(s, uint8(0))
	}
	c, err := classify.New(testOptions())
	if err != nil {
		f.Fatal(err)
	}
	syms := []device.Symbology{device.SymUnknown, device.SymEAN13, device.SymEAN8, device.SymCode128, device.SymEANAddOn}
	f.Fuzz(func(t *testing.T, in string, s uint8) {
		r, err := c.Classify(syms[int(s)%len(syms)], in)
		if err != nil {
			if r.Code != "" || cardsafe.ContainsPAN(err.Error()) {
				t.Fatalf("unsafe reject %+v %v", r, err)
			}
			return
		}
		// The one documented exception: a GS1-valid 13-digit code is an
		// EAN-13 item even if it also passes Luhn.
		if cardsafe.IsPAN(r.Code) && !(len(r.Code) == 13 && cardsafe.GS1Valid(r.Code) && r.Kind == device.KindItem) {
			t.Fatalf("payment card number emitted as %v", r.Kind)
		}
		if r.Kind != device.KindControl && cardsafe.ContainsPAN(r.Code) && !cardsafe.IsDigits(r.Code) {
			t.Fatalf("code with an embedded PAN emitted as %v", r.Kind)
		}
	})
}

func TestControlKeys(t *testing.T) {
	for in, want := range map[string]string{"*TOTAL*": "TOTAL", "TOTAL": "TOTAL", "]A0TOTAL": "TOTAL", "]A4*TOTAL*": "TOTAL", "total": "TOTAL", "*": "*", "]A0": ""} {
		if got := classify.ControlKey(in); got != want {
			t.Errorf("ControlKey(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := classify.New(classify.Options{Controls: map[string]string{"*TOTAL*": "complete", "TOTAL": "cancel"}}); err == nil {
		t.Error("two codes scanned alike with different actions accepted")
	}
	if _, err := classify.New(classify.Options{Controls: map[string]string{"*TOTAL*": "complete", "TOTAL": "complete"}}); err != nil {
		t.Errorf("the same code twice with one action: %v", err)
	}
	if _, err := classify.New(classify.Options{Controls: map[string]string{"**": "complete"}}); err == nil {
		t.Error("an empty control code accepted")
	}
}
