package display

import (
	"errors"
	"fmt"
)

// ErrUnknownCommand is returned by Render for a command byte sequence the
// command set does not have (or that is cut short).
var ErrUnknownCommand = errors.New("display: unknown or incomplete command")

// Screen is what a pole display shows after a byte stream.
type Screen struct {
	// Lines are the two lines decoded from the code page to UTF-8, in
	// display (visual) order, padded to the width.
	Lines      [2]string
	Brightness int // last level set, 0 if never
}

// Render emulates a display of the given command set: it interprets b (as
// sent to the display) and returns the screen. It is the inverse of the
// encoders, used by the simulator to show what a real VFD would, and by
// tests to check what was sent.
func Render(p Protocol, cp CodePage, width int, b []byte) (Screen, error) {
	if width <= 0 {
		width = Width
	}
	var rows [2][]byte
	clear := func() {
		for i := range rows {
			rows[i] = make([]byte, width)
			for j := range rows[i] {
				rows[i][j] = ' '
			}
		}
	}
	clear()
	x, y, bright := 0, 0, 0
	put := func(c byte) {
		if y < 2 && x < width {
			rows[y][x] = c
		}
		x++
		if x >= width && y == 0 {
			x, y = 0, 1
		}
	}
	need := func(i, n int) error {
		if i+n > len(b) {
			return fmt.Errorf("%w at byte %d", ErrUnknownCommand, i)
		}
		return nil
	}
	_, cd5220 := p.(CD5220)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == 0x0c:
			clear()
			x, y = 0, 0
		case c == 0x0b:
			x, y = 0, 0
		case c == '\r':
			x = 0
		case c == '\n':
			y = min(y+1, 1)
		case c == esc:
			if err := need(i, 2); err != nil {
				return Screen{}, err
			}
			switch cmd := b[i+1]; {
			case cmd == '@':
				clear()
				x, y = 0, 0
				i++
			case cd5220 && cmd == 0x11: // overwrite mode
				i++
			case cd5220 && cmd == 'Q':
				if err := need(i, 3); err != nil {
					return Screen{}, err
				}
				row := int(b[i+2] - 'A')
				if row < 0 || row > 1 {
					return Screen{}, fmt.Errorf("%w: line %q", ErrUnknownCommand, b[i+2])
				}
				j := i + 3
				for ; j < len(b) && b[j] != '\r'; j++ {
				}
				if j == len(b) {
					return Screen{}, fmt.Errorf("%w: line without CR", ErrUnknownCommand)
				}
				for k := range rows[row] {
					rows[row][k] = ' '
				}
				copy(rows[row], b[i+3:j])
				i = j
			case cd5220 && cmd == '*':
				if err := need(i, 3); err != nil {
					return Screen{}, err
				}
				bright = int(b[i+2])
				i += 2
			case cd5220 && cmd == 'l':
				if err := need(i, 4); err != nil {
					return Screen{}, err
				}
				x, y = int(b[i+2])-1, min(max(int(b[i+3])-1, 0), 1)
				i += 3
			case cd5220 && (cmd == '_' || cmd == 'f'),
				!cd5220 && (cmd == 't' || cmd == 'R'):
				if err := need(i, 3); err != nil {
					return Screen{}, err
				}
				i += 2
			default:
				return Screen{}, fmt.Errorf("%w: ESC %#x", ErrUnknownCommand, cmd)
			}
		case c == us && !cd5220:
			if err := need(i, 2); err != nil {
				return Screen{}, err
			}
			switch cmd := b[i+1]; cmd {
			case 0x01, 0x02, 0x03: // overwrite, vertical scroll, horizontal scroll
				i++
			case '$':
				if err := need(i, 4); err != nil {
					return Screen{}, err
				}
				x, y = int(b[i+2])-1, min(max(int(b[i+3])-1, 0), 1)
				i += 3
			case 'X':
				if err := need(i, 3); err != nil {
					return Screen{}, err
				}
				bright = int(b[i+2])
				i += 2
			case 'C', 'E':
				if err := need(i, 3); err != nil {
					return Screen{}, err
				}
				i += 2
			default:
				return Screen{}, fmt.Errorf("%w: US %#x", ErrUnknownCommand, cmd)
			}
		case c < 0x20:
			return Screen{}, fmt.Errorf("%w: control byte %#x", ErrUnknownCommand, c)
		default:
			if x < 0 {
				x = 0
			}
			put(c)
		}
	}
	var s Screen
	s.Brightness = bright
	for i, r := range rows {
		u, err := cp.cm.NewDecoder().Bytes(r)
		if err != nil {
			return Screen{}, fmt.Errorf("display: decode line: %w", err)
		}
		s.Lines[i] = string(u)
	}
	return s, nil
}
