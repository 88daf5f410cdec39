package cardsafe

import (
	"log/slog"
	"strings"
)

// Carries reports whether s is, or contains, a payment card number by the
// scanner's rules (device/classify): a field of digits only is one when
// IsPAN, unless it is a 13-digit code with a valid GS1 check digit (an
// EAN-13 article number); in other text, any run of digits is checked
// with IsPAN, also when its digits are grouped by single spaces or dashes
// as card numbers are printed ("4111 1111 1111 1111"). It is the check
// every door of the register applies to ids, aliases, SKUs, names and
// look-ups, so a card number is refused before it is stored, logged or
// sent.
func Carries(s string) bool {
	if IsDigits(s) {
		return IsPAN(s) && !(len(s) == 13 && GS1Valid(s))
	}
	if !hasLongRun(s) {
		return false // the common case (ids, SKUs, names): no run to build
	}
	found := false
	eachRun(s, func(_, _ int, digits string) bool {
		found = IsPAN(digits)
		return !found
	})
	return found
}

// MaskPANs returns s with every card number in it (as Carries finds them)
// replaced by Mask of its digits: "card 4111 1111 1111 1111" becomes
// "card ************1111". Text without one is returned unchanged.
func MaskPANs(s string) string {
	if !hasLongRun(s) || IsDigits(s) && !Carries(s) {
		return s // the common case: nothing to copy
	}
	var b strings.Builder
	last := 0
	eachRun(s, func(i, j int, digits string) bool {
		if i >= last && IsPAN(digits) {
			b.WriteString(s[last:i])
			b.WriteString(Mask(digits))
			last = j
		}
		return true
	})
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// hasLongRun reports whether s has at least 13 digits in total, the
// least a card number needs.
func hasLongRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if n++; n >= 13 {
				return true
			}
		}
	}
	return false
}

// eachRun calls f for every maximal run of digits in s, where a single
// space or dash between two digits continues the run, with the run's byte
// range and its digits; f returns false to stop. A run of several groups
// is reported as every stretch of whole groups with 13 to 19 digits, so
// "order 12 4111 1111 1111 1111" still finds the card; a run of digits
// alone is reported whole (longer than 19 it is no card).
func eachRun(s string, f func(i, j int, digits string) bool) {
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	type group struct{ i, j int }
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) {
			i++
			continue
		}
		var groups []group
		var d []byte
		j, g := i, i
		for j < len(s) {
			if isDigit(s[j]) {
				d = append(d, s[j])
				j++
				continue
			}
			if (s[j] == ' ' || s[j] == '-') && j+1 < len(s) && isDigit(s[j+1]) {
				groups = append(groups, group{g, j})
				j++
				g = j
				continue
			}
			break
		}
		groups = append(groups, group{g, j})
		if len(groups) == 1 {
			if !f(i, j, string(d)) {
				return
			}
			i = j
			continue
		}
		for a := range groups {
			n := 0
			var w []byte
			for b := a; b < len(groups) && n <= 19; b++ {
				w = append(w, s[groups[b].i:groups[b].j]...)
				n = len(w)
				if n >= 13 && n <= 19 && !f(groups[a].i, groups[b].j, string(w)) {
					return
				}
			}
		}
		i = j
	}
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that masks card
// numbers in every string value, error and message: the last line of
// defence should one slip past the checks at the doors.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); hasLongRun(s) {
			a.Value = slog.StringValue(MaskPANs(s))
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			if s := v.Error(); hasLongRun(s) {
				a.Value = slog.StringValue(MaskPANs(s))
			}
		case interface{ String() string }:
			if s := v.String(); hasLongRun(s) {
				a.Value = slog.StringValue(MaskPANs(s))
			}
		case []string:
			for _, s := range v {
				if hasLongRun(s) {
					out := make([]string, len(v))
					for i, s := range v {
						out[i] = MaskPANs(s)
					}
					a.Value = slog.AnyValue(out)
					break
				}
			}
		}
	}
	return a
}
