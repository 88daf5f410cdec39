package display

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"
)

// CodePage is a display character table.
type CodePage struct {
	Name string
	cm   *charmap.Charmap
	// escpos is the ESC t n table number in Epson's ESC/POS list.
	escpos byte
}

// Code pages the pole displays commonly carry.
var (
	CP437 = CodePage{Name: "cp437", cm: charmap.CodePage437, escpos: 0}
	CP862 = CodePage{Name: "cp862", cm: charmap.CodePage862, escpos: 15}
	CP866 = CodePage{Name: "cp866", cm: charmap.CodePage866, escpos: 17}
)

// ParseCodePage returns the code page for "cp437" (default), "cp862"
// (Hebrew) or "cp866" (Cyrillic).
func ParseCodePage(s string) (CodePage, error) {
	switch strings.ToLower(s) {
	case "", "cp437", "437":
		return CP437, nil
	case "cp862", "862":
		return CP862, nil
	case "cp866", "866":
		return CP866, nil
	}
	return CodePage{}, fmt.Errorf("display: unknown code page %q (want cp437, cp862 or cp866)", s)
}

// translit maps letters a code page may lack to Latin. Cyrillic follows
// the common passport-style romanisation, Hebrew a simple consonant one.
var translit = map[rune]string{
	'А': "A", 'Б': "B", 'В': "V", 'Г': "G", 'Д': "D", 'Е': "E", 'Ё': "E", 'Ж': "Zh", 'З': "Z", 'И': "I",
	'Й': "Y", 'К': "K", 'Л': "L", 'М': "M", 'Н': "N", 'О': "O", 'П': "P", 'Р': "R", 'С': "S", 'Т': "T",
	'У': "U", 'Ф': "F", 'Х': "Kh", 'Ц': "Ts", 'Ч': "Ch", 'Ш': "Sh", 'Щ': "Shch", 'Ъ': "", 'Ы': "Y", 'Ь': "",
	'Э': "E", 'Ю': "Yu", 'Я': "Ya",
	'а': "a", 'б': "b", 'в': "v", 'г': "g", 'д': "d", 'е': "e", 'ё': "e", 'ж': "zh", 'з': "z", 'и': "i",
	'й': "y", 'к': "k", 'л': "l", 'м': "m", 'н': "n", 'о': "o", 'п': "p", 'р': "r", 'с': "s", 'т': "t",
	'у': "u", 'ф': "f", 'х': "kh", 'ц': "ts", 'ч': "ch", 'ш': "sh", 'щ': "shch", 'ъ': "", 'ы': "y", 'ь': "",
	'э': "e", 'ю': "yu", 'я': "ya",
	'א': "a", 'ב': "b", 'ג': "g", 'ד': "d", 'ה': "h", 'ו': "v", 'ז': "z", 'ח': "ch", 'ט': "t", 'י': "y",
	'כ': "k", 'ך': "k", 'ל': "l", 'מ': "m", 'ם': "m", 'נ': "n", 'ן': "n", 'ס': "s", 'ע': "a", 'פ': "p",
	'ף': "f", 'צ': "ts", 'ץ': "ts", 'ק': "k", 'ר': "r", 'ש': "sh", 'ת': "t",
	'€': "EUR", '₪': "NIS", '₽': "RUB", '–': "-", '—': "-", '‘': "'", '’': "'", '“': "\"", '”': "\"", '…': "...",
	'ß': "ss", 'Æ': "AE", 'æ': "ae", 'Ø': "O", 'ø': "o", 'Ł': "L", 'ł': "l", 'Đ': "D", 'đ': "d",
}

func isHebrew(r rune) bool { return r >= 0x0590 && r <= 0x05FF }

// encodeRune maps r to bytes of the code page: directly when the page has
// it, else by transliteration, else by stripping accents, else '?'.
func (cp CodePage) encodeRune(r rune, out []byte) []byte {
	if r < 0x80 {
		if r < 0x20 || r == 0x7f {
			return append(out, ' ') // control bytes would be commands
		}
		return append(out, byte(r))
	}
	if b, ok := cp.cm.EncodeRune(r); ok && b >= 0x80 {
		return append(out, b)
	}
	if s, ok := translit[r]; ok {
		for _, t := range s {
			out = cp.encodeRune(t, out)
		}
		return out
	}
	// Strip accents: decompose and keep the base letters.
	var stripped []rune
	for _, d := range norm.NFD.String(string(r)) {
		if !unicode.Is(unicode.Mn, d) {
			stripped = append(stripped, d)
		}
	}
	if len(stripped) == 1 && stripped[0] != r {
		return cp.encodeRune(stripped[0], out)
	}
	if unicode.Is(unicode.Mn, r) {
		return out // a lone combining mark (e.g. Hebrew points): drop
	}
	return append(out, '?')
}

// hasHebrew reports whether the page shows Hebrew letters.
func (cp CodePage) hasHebrew() bool {
	_, ok := cp.cm.EncodeRune('א')
	return ok
}

// Line renders one logical UTF-8 line to exactly width bytes of the code
// page: mapped or transliterated, clipped, padded with spaces.
//
// Right-to-left: a VFD draws bytes left to right, so when the page has
// Hebrew the line is put in visual order here: Hebrew runs are reversed,
// and a line whose first strong letter is Hebrew has its runs in reverse
// order and is right-aligned. Numbers and Latin words inside stay left to
// right. This is a deliberately small subset of the Unicode bidi algorithm,
// enough for "name / points" lines. When the page lacks Hebrew, the text is
// transliterated to Latin and stays in logical (reading) order.
func (cp CodePage) Line(s string, width int) []byte {
	runes := []rune(s)
	if len(runes) > width {
		runes = runes[:width]
	}
	rtl := false
	if cp.hasHebrew() {
		runes, rtl = visual(runes)
	}
	out := make([]byte, 0, width)
	for _, r := range runes {
		out = cp.encodeRune(r, out)
	}
	if len(out) > width {
		if rtl {
			out = out[len(out)-width:]
		} else {
			out = out[:width]
		}
	}
	pad := width - len(out)
	if pad == 0 {
		return out
	}
	spaces := []byte(strings.Repeat(" ", pad))
	if rtl {
		return append(spaces, out...)
	}
	return append(out, spaces...)
}

// visual reorders a logical line for a left-to-right display. A line whose
// first strong character is Hebrew is reversed whole, then every run of
// left-to-right text (Latin, digits and the neutrals between them) is
// turned back. Otherwise only the Hebrew runs (with the neutrals between
// their letters) are reversed in place.
func visual(rs []rune) ([]rune, bool) {
	out := append([]rune(nil), rs...)
	rtl := false
	for _, r := range out {
		if isHebrew(r) {
			rtl = true
			break
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			break
		}
	}
	strongLTR := func(r rune) bool { return !isHebrew(r) && (unicode.IsLetter(r) || unicode.IsDigit(r)) }
	if rtl {
		reverse(out)
		reverseRuns(out, strongLTR, isHebrew)
		return out, true
	}
	reverseRuns(out, isHebrew, strongLTR)
	return out, false
}

// reverseRuns reverses each run that starts and ends with a rune for
// which in is true and contains no rune for which stop is true.
func reverseRuns(rs []rune, in, stop func(rune) bool) {
	for i := 0; i < len(rs); i++ {
		if !in(rs[i]) {
			continue
		}
		last := i
		for j := i + 1; j < len(rs) && !stop(rs[j]); j++ {
			if in(rs[j]) {
				last = j
			}
		}
		reverse(rs[i : last+1])
		i = last
	}
}

func reverse(rs []rune) {
	for a, b := 0, len(rs)-1; a < b; a, b = a+1, b-1 {
		rs[a], rs[b] = rs[b], rs[a]
	}
}
