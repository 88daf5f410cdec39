package config

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A supermarket's catalogue is 20,000-100,000 items; through the YAML
// decoder (a node tree with every key's line, then a second decode) that
// takes seconds and hundreds of MB. fastItems reads catalogue.items
// directly when every item is written one flow mapping per line, the form
// the example config and `loyalty-hq` documents use:
//
//	catalogue:
//	  version: 3
//	  items:
//	    - {sku: "4006381333931", name: "Stabilo pen", price: 250, category: stationery}
//
// It accepts a line only when it is sure the YAML decoder reads it the
// same way (FuzzFastItemLine holds it to that): known keys once each,
// double-quoted strings without escapes, single-quoted ones without '',
// plain words that YAML cannot take for a number, a boolean or null, and
// a price of plain digits. Anything else (block mappings, comments after
// an item, anchors, escapes, a quoted price) leaves the whole list to the
// YAML decoder, which gives the same result, only slower.

// fastCatalogue is what fastItems found: the items and the line of each.
type fastCatalogue struct {
	items []Item
	lines []int
}

// fastItems returns data with the item lines of catalogue.items blanked
// (line numbers stay the same) and the items read from them; ok is false
// when the list is not entirely in the one-line form.
func fastItems(data []byte) (rest []byte, fc fastCatalogue, ok bool) {
	text := string(data) // one copy; lines below are substrings of it
	var lines []string
	for len(text) > 0 {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			lines = append(lines, text)
			break
		}
		lines = append(lines, text[:i+1])
		text = text[i+1:]
	}
	cat := -1
	for i, l := range lines {
		if len(l) >= 10 && l[0] == 'c' && trimEOL(l) == "catalogue:" {
			if cat >= 0 {
				return nil, fc, false // twice: the YAML decoder says so
			}
			cat = i
		}
	}
	if cat < 0 {
		return nil, fc, false
	}
	// The items: key inside the catalogue mapping.
	itemsAt, keyIndent := -1, -1
	for i := cat + 1; i < len(lines); i++ {
		s := trimEOL(lines[i])
		if blankOrComment(s) {
			continue
		}
		ind := indent(s)
		if ind == 0 {
			break // the next top-level key
		}
		if strings.TrimSpace(s) == "items:" {
			itemsAt, keyIndent = i, ind
			break
		}
	}
	if itemsAt < 0 {
		return nil, fc, false
	}
	first, end, dash := -1, len(lines), -1
	for i := itemsAt + 1; i < len(lines); i++ {
		s := trimEOL(lines[i])
		if blankOrComment(s) {
			continue
		}
		ind := indent(s)
		if strings.HasPrefix(s[ind:], "- ") {
			if dash < 0 {
				dash = ind
			}
			if ind != dash || ind < keyIndent {
				return nil, fc, false
			}
			it, good := fastItemLine(s[ind+2:])
			if !good {
				return nil, fc, false
			}
			if first < 0 {
				first = i
				fc.items = make([]Item, 0, len(lines)-i)
				fc.lines = make([]int, 0, len(lines)-i)
			}
			fc.items = append(fc.items, it)
			fc.lines = append(fc.lines, i+1)
			continue
		}
		if ind > keyIndent || strings.HasPrefix(s[ind:], "-") {
			return nil, fc, false // something the one-line form does not cover
		}
		end = i
		break
	}
	if len(fc.items) == 0 {
		return nil, fc, false
	}
	out := make([]byte, 0, len(data)/4)
	for i, l := range lines {
		if i > itemsAt && i < end && !blankOrComment(trimEOL(l)) {
			if strings.HasSuffix(l, "\n") {
				out = append(out, '\n')
			}
			continue
		}
		out = append(out, l...)
	}
	return out, fc, true
}

func trimEOL(l string) string {
	return strings.TrimRight(l, " \t\r\n")
}

func blankOrComment(s string) bool {
	t := strings.TrimLeft(s, " ")
	return t == "" || t[0] == '#'
}

func indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// fastItemLine reads "{sku: ..., name: ..., price: N, category: ...}".
func fastItemLine(s string) (Item, bool) {
	var it Item
	s = strings.TrimRight(s, " ")
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return it, false
	}
	s = s[1 : len(s)-1]
	var seen [4]bool // sku, name, price, category
	for {
		s = strings.TrimLeft(s, " ")
		k := 0
		for k < len(s) && (s[k] >= 'a' && s[k] <= 'z' || s[k] == '_') {
			k++
		}
		key := s[:k]
		slot := slices.Index([]string{"sku", "name", "price", "category"}, key)
		if slot < 0 || seen[slot] || !strings.HasPrefix(s[k:], ": ") {
			return it, false // unknown keys: the YAML path names them
		}
		seen[slot] = true
		s = strings.TrimLeft(s[k+2:], " ")
		val, rest, quoted, good := fastScalar(s)
		if !good {
			return it, false
		}
		switch key {
		case "sku", "name", "category":
			if !quoted && !plainWord(val) {
				return it, false
			}
			switch key {
			case "sku":
				it.SKU = val
			case "name":
				it.Name = val
			default:
				it.Category = val
			}
		case "price":
			if quoted || !plainDigits(val) {
				return it, false
			}
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return it, false
			}
			it.Price = n
		default:
			return it, false // unknown keys: the YAML path names them
		}
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return it, true
		}
		if rest[0] != ',' {
			return it, false
		}
		s = rest[1:]
		if strings.TrimSpace(s) == "" {
			return it, false // a trailing comma: leave it to YAML
		}
	}
}

// fastScalar reads one flow scalar: "..." without escapes, '...' without
// a doubled quote, or a plain run up to the next ',' (trailing spaces
// dropped).
func fastScalar(s string) (val, rest string, quoted, ok bool) {
	if s == "" {
		return "", "", false, false
	}
	switch s[0] {
	case '"', '\'':
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return "", "", false, false
		}
		val, rest = s[1:1+end], s[2+end:]
		if !printable(val) || strings.Contains(val, "\\") || s[0] == '\'' && strings.HasPrefix(rest, "'") {
			return "", "", false, false
		}
		return val, rest, true, true
	}
	end := strings.IndexByte(s, ',')
	if end < 0 {
		end = len(s)
	}
	return strings.TrimRight(s[:end], " "), s[end:], false, true
}

// plainWord: a plain scalar YAML can only read as that same string.
func plainWord(v string) bool {
	if v == "" {
		return false
	}
	c := v[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return false // digits, signs, dots: possibly a number
	}
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf":
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == '/':
		case c == ' ':
			if i+1 < len(v) && v[i+1] == ' ' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// printable: valid UTF-8 of printable characters only (YAML refuses
// control characters and some others; those go to the YAML decoder).
func printable(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || r >= 0x80 && (!unicode.IsPrint(r) || r == 0xfeff) {
			return false
		}
	}
	return true
}

func plainDigits(v string) bool {
	if v == "" || len(v) > 18 || len(v) > 1 && v[0] == '0' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}
