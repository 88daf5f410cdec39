// Package display drives customer pole displays (2 x 20 VFDs): the CD5220
// and Epson ESC/POS command sets over serial, chosen in configuration, plus
// a Log display for development that writes the two lines to a writer.
//
// Text is UTF-8 in the program and mapped to the display's code page
// (CP437, CP862 Hebrew, CP866 Cyrillic through golang.org/x/text); letters
// the page lacks are transliterated (Cyrillic and Hebrew to Latin, accents
// stripped). Lines are clipped or padded to the width by rune, and Hebrew
// is put in visual order for the left-to-right VFD (see CodePage.Line).
package display
