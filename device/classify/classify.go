package classify

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
)

// Check is a member number check-digit scheme.
type Check string

// Check digit schemes.
const (
	CheckNone  Check = "none"
	CheckMod10 Check = "mod10" // GS1 mod 10 (weights 3,1 from the right)
	CheckLuhn  Check = "luhn"
)

// MemberPattern describes one kind of member card number.
type MemberPattern struct {
	// Name is for the installer's eyes only (e.g. "club card 2024").
	Name string `yaml:"name"`
	// Prefix the number starts with (may be letters, e.g. "M").
	Prefix string `yaml:"prefix"`
	// Length is the total length including the prefix; 0 means any.
	Length int `yaml:"length"`
	// Check digit over the digits after a non-numeric prefix (or the whole
	// number when the prefix is numeric). Empty means none.
	Check Check `yaml:"check"`
	// From and To, when set, make this an in-store EAN-13 range: 13-digit
	// GS1-valid numbers from From to To inclusive are member cards.
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// EmbeddedLabel is a GS1 in-store (prefix 20-29) EAN-13 label layout with
// an embedded price or weight: prefix, article digits, an optional inner
// check digit, value digits, then the EAN check digit (13 digits total).
type EmbeddedLabel struct {
	Prefix        string `yaml:"prefix"` // "20".."29", or a longer prefix such as "2"+"1"
	ArticleDigits int    `yaml:"article_digits"`
	InnerCheck    bool   `yaml:"inner_check"` // one digit between article and value, skipped
	ValueDigits   int    `yaml:"value_digits"`
	// Weight says the value is grams; otherwise it is a price in minor
	// currency units.
	Weight bool `yaml:"weight"`
}

// Options configure a Classifier. The zero value knows items and nothing
// else: no member patterns, no control codes.
type Options struct {
	Members  []MemberPattern
	Embedded []EmbeddedLabel
	// Controls maps a control code printed on the cashier sheet (e.g.
	// "TOTAL") to a cashier action (e.g. "complete"). Codes are matched in
	// the encodings scanners send them: with or without the Code 39
	// start/stop "*" and with or without an AIM identifier ("TOTAL",
	// "*TOTAL*", "]A0TOTAL" are one code; see ControlKey).
	Controls map[string]string
}

// Result is a classified scan.
type Result struct {
	Kind      device.Kind
	Symbology device.Symbology
	// Code is the normalised code: a UPC-A is returned as its 13-digit
	// GTIN-13 form (leading 0) so a product has one code whatever the
	// scanner sends.
	Code   string
	Action string
	Item   *device.ItemInfo
}

// Classifier classifies scans. It is immutable and safe for concurrent use.
type Classifier struct {
	o Options
}

// New checks the options and returns a Classifier.
func New(o Options) (*Classifier, error) {
	for i, m := range o.Members {
		switch m.Check {
		case "", CheckNone, CheckMod10, CheckLuhn:
		default:
			return nil, fmt.Errorf("classify: member pattern %d: unknown check %q", i, m.Check)
		}
		if m.From != "" || m.To != "" {
			if len(m.From) != 13 || len(m.To) != 13 || !cardsafe.IsDigits(m.From) || !cardsafe.IsDigits(m.To) || m.From > m.To {
				return nil, fmt.Errorf("classify: member pattern %d: range needs two 13-digit numbers, from <= to", i)
			}
			continue
		}
		if m.Prefix == "" && m.Length == 0 {
			return nil, fmt.Errorf("classify: member pattern %d: needs a prefix, a length or a range", i)
		}
		if m.Length != 0 && m.Length <= len(m.Prefix) {
			return nil, fmt.Errorf("classify: member pattern %d: length %d leaves no digits after prefix", i, m.Length)
		}
	}
	for i, e := range o.Embedded {
		n := len(e.Prefix) + e.ArticleDigits + e.ValueDigits + 1
		if e.InnerCheck {
			n++
		}
		if n != 13 || !cardsafe.IsDigits(e.Prefix) || e.Prefix[0] != '2' || e.ValueDigits <= 0 {
			return nil, fmt.Errorf("classify: embedded label %d: layout must be a 13-digit code with a 2x prefix", i)
		}
	}
	controls := make(map[string]string, len(o.Controls))
	for code, action := range o.Controls {
		k := ControlKey(code)
		if k == "" {
			return nil, fmt.Errorf("classify: control code %q is empty", code)
		}
		if a, dup := controls[k]; dup && a != action {
			return nil, fmt.Errorf("classify: control code %q is scanned as %q like another code with action %q", code, k, a)
		}
		controls[k] = action
	}
	o.Controls = controls
	return &Classifier{o: o}, nil
}

// ControlKey is the form a control code is matched in: without an AIM
// identifier ("]A0", when the scanner sends it but the device is not set
// to strip it) and without the Code 39 start/stop characters ("*TOTAL*"
// as printed, when the scanner transmits them), upper case.
func ControlKey(code string) string {
	s := code
	if len(s) >= 3 && s[0] == ']' {
		s = s[3:]
	}
	if len(s) >= 2 && s[0] == '*' && s[len(s)-1] == '*' {
		s = s[1 : len(s)-1]
	}
	return strings.ToUpper(strings.TrimSpace(s))
}

func reject(err error, format string, args ...any) (Result, error) {
	return Result{Kind: device.KindReject}, fmt.Errorf("%w: "+format, append([]any{err}, args...)...)
}

// Classify classifies one scan. sym is the symbology from the AIM
// identifier, or SymUnknown. Errors wrap a device sentinel and quote only
// safe facts (length, symbology), never the data.
func (c *Classifier) Classify(sym device.Symbology, data string) (Result, error) {
	if data == "" {
		return Result{Kind: device.KindReject}, device.ErrEmpty
	}
	if a, ok := c.o.Controls[ControlKey(data)]; ok {
		return Result{Kind: device.KindControl, Symbology: sym, Code: data, Action: a}, nil
	}
	if sym == device.SymEANAddOn {
		return reject(device.ErrUnknownCode, "EAN add-on without its main code")
	}
	digits := cardsafe.IsDigits(data)
	if digits {
		if cardsafe.IsPAN(data) && !(len(data) == 13 && cardsafe.GS1Valid(data)) {
			// 13-digit GS1-valid codes are EAN-13 items: a 13-digit PAN
			// is a retired Visa format and cannot be told apart.
			return reject(device.ErrNotMemberCard, "payment card number (%d digits)", len(data))
		}
	} else if cardsafe.ContainsPAN(data) {
		return reject(device.ErrNotMemberCard, "payment card number inside a %d-character code", len(data))
	}
	if r, err, ok := c.member(sym, data); ok {
		return r, err
	}
	if !digits {
		return reject(device.ErrUnknownCode, "%d-character %s code", len(data), symName(sym))
	}
	return c.item(sym, data)
}

// Member classifies a number read from a card (magstripe track or Wiegand)
// where only member cards are acceptable.
func (c *Classifier) Member(sym device.Symbology, number string) (Result, error) {
	if number == "" {
		return Result{Kind: device.KindReject}, device.ErrEmpty
	}
	if cardsafe.IsPAN(number) || (!cardsafe.IsDigits(number) && cardsafe.ContainsPAN(number)) {
		return reject(device.ErrNotMemberCard, "payment card number (%d digits)", len(number))
	}
	if r, err, ok := c.member(sym, number); ok {
		return r, err
	}
	return reject(device.ErrNotMemberCard, "%d-character number matches no member card pattern", len(number))
}

func symName(s device.Symbology) string {
	if s == device.SymUnknown {
		return "unknown-symbology"
	}
	return string(s)
}

func (c *Classifier) member(sym device.Symbology, data string) (Result, error, bool) {
	for _, m := range c.o.Members {
		if m.From != "" {
			if len(data) == 13 && cardsafe.IsDigits(data) && data >= m.From && data <= m.To {
				if !cardsafe.GS1Valid(data) {
					r, err := reject(device.ErrBadCheckDigit, "member card (in-store EAN-13 range)")
					return r, err, true
				}
				return Result{Kind: device.KindMember, Symbology: sym, Code: data}, nil, true
			}
			continue
		}
		if !strings.HasPrefix(data, m.Prefix) || (m.Length != 0 && len(data) != m.Length) {
			continue
		}
		num := data
		if !cardsafe.IsDigits(m.Prefix) {
			num = data[len(m.Prefix):]
		}
		if !cardsafe.IsDigits(num) {
			continue
		}
		ok := true
		switch m.Check {
		case CheckMod10:
			ok = cardsafe.GS1Valid(num)
		case CheckLuhn:
			ok = cardsafe.LuhnValid(num)
		}
		if !ok {
			r, err := reject(device.ErrBadCheckDigit, "member card (%s)", m.Check)
			return r, err, true
		}
		return Result{Kind: device.KindMember, Symbology: sym, Code: data}, nil, true
	}
	return Result{}, nil, false
}

func (c *Classifier) item(sym device.Symbology, data string) (Result, error) {
	switch sym {
	case device.SymUnknown, device.SymEAN13, device.SymEAN8, device.SymUPCA:
	default:
		// With AIM identifiers on, digits in another symbology (a Code 128
		// or Code 39 label that happens to hold 13 digits) are no item.
		return reject(device.ErrUnknownCode, "%d digits in a %s code are not an item barcode", len(data), sym)
	}
	switch len(data) {
	case 8, 12, 13:
	default:
		return reject(device.ErrUnknownCode, "%d-digit %s code", len(data), symName(sym))
	}
	if (sym == device.SymEAN8 && len(data) != 8) || (sym == device.SymEAN13 && len(data) == 8) {
		return reject(device.ErrUnknownCode, "%d digits do not fit %s", len(data), sym)
	}
	if !cardsafe.GS1Valid(data) {
		return reject(device.ErrBadCheckDigit, "%d-digit item code", len(data))
	}
	r := Result{Kind: device.KindItem, Code: data}
	switch len(data) {
	case 8:
		r.Symbology = device.SymEAN8
		return r, nil
	case 12:
		r.Symbology = device.SymUPCA
		r.Code = "0" + data
		return r, nil
	}
	r.Symbology = device.SymEAN13
	if data[0] == '0' {
		r.Symbology = device.SymUPCA
	}
	if data[0] != '2' {
		return r, nil
	}
	r.Item = &device.ItemInfo{InStore: true}
	for _, e := range c.o.Embedded {
		if !strings.HasPrefix(data, e.Prefix) {
			continue
		}
		p := len(e.Prefix)
		r.Item.Article = data[p : p+e.ArticleDigits]
		p += e.ArticleDigits
		if e.InnerCheck {
			p++
		}
		v, err := strconv.ParseInt(data[p:p+e.ValueDigits], 10, 64)
		if err != nil {
			return reject(device.ErrUnknownCode, "in-store label value")
		}
		if e.Weight {
			r.Item.WeightGrams = v
		} else {
			r.Item.PriceMinor = v
		}
		break
	}
	return r, nil
}
