package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Dec is a non-negative fixed-point decimal with four places, used for rates
// and multipliers so that no float ever touches points: 1.5 is Dec(15000).
// In YAML and JSON it is written as a plain number (2, 1.5, 0.0125) or the
// same digits in a string; more than four decimal places, signs, exponents
// and values above 10^9 are errors, never silently rounded.
type Dec int64

// DecOne is 1 as a Dec.
const DecOne Dec = 10_000

const (
	decPlaces = 4
	decMax    = 1_000_000_000 * DecOne
)

var errDecSyntax = errors.New("must be a decimal number with at most 4 decimal places, like 2 or 1.5")

// ParseDec parses a decimal such as "2", "1.5" or "0.0125".
func ParseDec(s string) (Dec, error) {
	if s == "" {
		return 0, errDecSyntax
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") || len(frac) > decPlaces || len(intPart) > 10 {
		return 0, errDecSyntax
	}
	for _, p := range []string{intPart, frac} {
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, errDecSyntax
			}
		}
	}
	i, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, errDecSyntax
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", decPlaces-len(frac)), 10, 64)
	}
	d := Dec(i)*DecOne + Dec(f)
	if d > decMax {
		return 0, errDecSyntax
	}
	return d, nil
}

// String formats d with the fewest decimals needed: "2", "1.5", "0.0125".
func (d Dec) String() string {
	neg := ""
	v := int64(d)
	if v < 0 {
		neg, v = "-", -v
	}
	i, f := v/int64(DecOne), v%int64(DecOne)
	if f == 0 {
		return neg + strconv.FormatInt(i, 10)
	}
	fs := strings.TrimRight(fmt.Sprintf("%04d", f), "0")
	return neg + strconv.FormatInt(i, 10) + "." + fs
}

// NewDec returns a pointer to a Dec built from a whole number and ten
// thousandths: NewDec(1, 5000) is 1.5. It is a convenience for literals.
func NewDec(whole int64, tenThousandths int64) *Dec {
	d := Dec(whole)*DecOne + Dec(tenThousandths)
	return &d
}

// MarshalJSON writes d as a JSON number.
func (d Dec) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON reads a JSON number or a string holding one.
func (d *Dec) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return errDecSyntax
		}
	}
	v, err := ParseDec(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a YAML number.
func (d Dec) MarshalYAML() (any, error) {
	tag := "!!int"
	if d%DecOne != 0 {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: d.String()}, nil
}

// UnmarshalYAML reads a YAML number or a string holding one. Errors are
// reported as a *yaml.TypeError with the line, so a config decoder collects
// them with the other type errors.
func (d *Dec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, errDecSyntax)}}
	}
	v, err := ParseDec(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q %s", n.Line, n.Value, err)}}
	}
	*d = v
	return nil
}
