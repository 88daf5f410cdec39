package cardsafe

// IsDigits reports whether s is non-empty and only ASCII digits.
func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// LuhnValid reports whether the digit string s passes the Luhn (mod 10)
// check used by payment cards and many member cards.
func LuhnValid(s string) bool {
	if len(s) < 2 || !IsDigits(s) {
		return false
	}
	sum := 0
	double := false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// GS1Valid reports whether the digit string s (EAN-8, UPC-A, EAN-13,
// GTIN-14) ends with a correct GS1 mod 10 check digit: from the rightmost
// data digit the weights are 3,1,3,1...
func GS1Valid(s string) bool {
	if len(s) < 2 || !IsDigits(s) {
		return false
	}
	return GS1CheckDigit(s[:len(s)-1]) == s[len(s)-1]
}

// GS1CheckDigit returns the GS1 mod 10 check digit for the data digits s.
// s must be digits only.
func GS1CheckDigit(s string) byte {
	sum := 0
	w := 3
	for i := len(s) - 1; i >= 0; i-- {
		sum += int(s[i]-'0') * w
		w = 4 - w
	}
	return byte('0' + (10-sum%10)%10)
}

// IsPAN reports whether s looks like a payment card number: 13 to 19
// digits, Luhn-valid, and a major industry identifier (first digit) of 1-8,
// which covers every card scheme. Numbers starting with 9 (national use)
// or 0 are left to member-card rules, so an in-store member range can use
// them.
func IsPAN(s string) bool {
	if len(s) < 13 || len(s) > 19 || !IsDigits(s) {
		return false
	}
	if s[0] == '0' || s[0] == '9' {
		return false
	}
	return LuhnValid(s)
}

// ContainsPAN reports whether any maximal run of digits in s (digits
// delimited by non-digits or the ends of s) is a PAN. It is the check
// applied to anything that could carry a card number inside other text,
// such as a Code 128 payload or a magstripe track. A run longer than 19
// digits is not a card number: no scheme issues one, and windows inside it
// would match by chance about one time in ten each.
func ContainsPAN(s string) bool {
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if IsPAN(s[i:j]) {
			return true
		}
		i = j
	}
	return false
}

// Mask returns the number with everything but the last four digits
// replaced by '*'. It never shows more than the last four characters, the
// strictest of the usual "first 6 / last 4" rules.
func Mask(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	b := make([]byte, len(s))
	for i := range b {
		b[i] = '*'
	}
	copy(b[len(s)-4:], s[len(s)-4:])
	return string(b)
}
