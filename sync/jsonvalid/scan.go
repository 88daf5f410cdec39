package jsonvalid

// Valid reports whether b is one JSON value with optional whitespace
// around it: json.Valid's answer.
func Valid(b []byte) bool {
	end, ok := scanValue(b, skipWS(b, 0), 0)
	return ok && skipWS(b, end) == len(b)
}

// text is what the scanner reads: a message as a string or as bytes.
type text interface{ ~string | ~[]byte }

// maxScanDepth is encoding/json's nesting limit: deeper values are
// invalid there too.
const maxScanDepth = 10000

// Scan reads one JSON value starting at s[i] (no leading whitespace) and
// returns the index just past it; ok is false when s[i:] does not start
// with a valid value. A value Scan accepts is one json.Valid accepts, and
// the other way round.
func Scan(s string, i int) (int, bool) {
	return scanValue(s, i, 0)
}

func scanValue[T text](s T, i, depth int) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	switch c := s[i]; {
	case c == '{':
		return scanObject(s, i, depth+1)
	case c == '[':
		return scanArray(s, i, depth+1)
	case c == '"':
		return scanString(s, i)
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(s, i)
	case c == 't':
		return scanLiteral(s, i, "true")
	case c == 'f':
		return scanLiteral(s, i, "false")
	case c == 'n':
		return scanLiteral(s, i, "null")
	}
	return i, false
}

func skipWS[T text](s T, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func scanObject[T text](s T, i, depth int) (int, bool) {
	if depth > maxScanDepth {
		return i, false
	}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == '}' {
		return i + 1, true
	}
	for {
		var ok bool
		if i >= len(s) || s[i] != '"' {
			return i, false
		}
		if i, ok = scanString(s, i); !ok {
			return i, false
		}
		i = skipWS(s, i)
		if i >= len(s) || s[i] != ':' {
			return i, false
		}
		i = skipWS(s, i+1)
		if i, ok = scanValue(s, i, depth); !ok {
			return i, false
		}
		i = skipWS(s, i)
		if i >= len(s) {
			return i, false
		}
		switch s[i] {
		case ',':
			i = skipWS(s, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

func scanArray[T text](s T, i, depth int) (int, bool) {
	if depth > maxScanDepth {
		return i, false
	}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = scanValue(s, i, depth); !ok {
			return i, false
		}
		i = skipWS(s, i)
		if i >= len(s) {
			return i, false
		}
		switch s[i] {
		case ',':
			i = skipWS(s, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// scanString reads a string starting at its opening quote.
func scanString[T text](s T, i int) (int, bool) {
	for i++; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(s) {
				return i, false
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) {
					return i, false
				}
				for j := i + 1; j < i+5; j++ {
					if h := s[j]; !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

// scanNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func scanNumber[T text](s T, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i, _ = digits(i)
	default:
		return i, false
	}
	var ok bool
	if i < len(s) && s[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}

func scanLiteral[T text](s T, i int, lit string) (int, bool) {
	if len(s)-i < len(lit) {
		return i, false
	}
	for j := 0; j < len(lit); j++ {
		if s[i+j] != lit[j] {
			return i, false
		}
	}
	return i + len(lit), true
}
