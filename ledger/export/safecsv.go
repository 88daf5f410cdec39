package export

// SafeRow returns r with every cell made safe to open in a spreadsheet
// (SafeCell). It never changes a number.
func SafeRow(r []string) []string {
	out := r
	for i, c := range r {
		if s := SafeCell(c); s != c {
			if &out[0] == &r[0] {
				out = append([]string(nil), r...)
			}
			out[i] = s
		}
	}
	return out
}

// SafeCell prefixes a cell that a spreadsheet would run as a formula (it
// starts with '=', '+', '-', '@', a tab or a carriage return) with a
// single quote, unless it is a plain number such as "-250" (a refund):
// a member named "=HYPERLINK(...)" stays text in Excel and LibreOffice.
func SafeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
	default:
		return s
	}
	if isNumber(s) {
		return s
	}
	return "'" + s
}

// isNumber reports whether s is an optionally signed decimal number.
func isNumber(s string) bool {
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i = 1
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}
