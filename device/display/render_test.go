package display_test

import (
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/device/display"
)

func TestRenderRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		cp    display.CodePage
		lines [2]string
		want  [2]string
	}{
		{"latin", display.CP437, [2]string{"Hello Zoë", "Points: 1234"}, [2]string{"Hello Zoë           ", "Points: 1234        "}},
		{"cyrillic", display.CP866, [2]string{"Иван", "Баллы: 5"}, [2]string{"Иван                ", "Баллы: 5            "}},
		{"hebrew is visual", display.CP862, [2]string{"שלום", "120"}, [2]string{"                םולש", "120                 "}},
		{"transliterated", display.CP437, [2]string{"Щука", ""}, [2]string{"Shchuka             ", "                    "}},
	}
	for _, p := range []display.Protocol{display.CD5220{}, display.ESCPOS{}} {
		for _, tt := range tests {
			t.Run(p.Name()+"/"+tt.name, func(t *testing.T) {
				b := append(p.Init(tt.cp), p.Show(tt.cp, 20, [2]string{"old", "text that is replaced"})...)
				b = append(b, p.Show(tt.cp, 20, tt.lines)...)
				br, _ := p.Brightness(3)
				b = append(b, br...)
				s, err := display.Render(p, tt.cp, 20, b)
				if err != nil {
					t.Fatal(err)
				}
				if s.Lines != tt.want || s.Brightness != 3 {
					t.Fatalf("screen %q brightness %d, want %q", s.Lines, s.Brightness, tt.want)
				}
				s, err = display.Render(p, tt.cp, 20, append(b, p.Clear()...))
				if err != nil || s.Lines[0] != "                    " {
					t.Fatalf("after clear %q %v", s.Lines, err)
				}
			})
		}
	}
}

func TestRenderRejectsBadStreams(t *testing.T) {
	for name, b := range map[string][]byte{
		"cut ESC":           {0x1b},
		"cd5220 line no CR": []byte("\x1bQAabc"),
		"unknown ESC":       []byte("\x1bZ"),
		"stray control":     {0x07},
	} {
		if _, err := display.Render(display.CD5220{}, display.CP437, 20, b); !errors.Is(err, display.ErrUnknownCommand) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := display.Render(display.ESCPOS{}, display.CP437, 20, []byte("\x1f$\x01")); !errors.Is(err, display.ErrUnknownCommand) {
		t.Error("cut US $ accepted")
	}
}

func FuzzRender(f *testing.F) {
	f.Add([]byte("\x1b@\x1bQAhello\r"), false)
	f.Add([]byte("\x1b@\x1f\x01\x1bt\x00\x1f$\x01\x01hi"), true)
	f.Add([]byte("\x1f$\xff\xffx"), true)
	f.Fuzz(func(t *testing.T, b []byte, escpos bool) {
		var p display.Protocol = display.CD5220{}
		if escpos {
			p = display.ESCPOS{}
		}
		s, err := display.Render(p, display.CP437, 20, b)
		if err == nil && (len([]rune(s.Lines[0])) != 20 || len([]rune(s.Lines[1])) != 20) {
			t.Fatalf("screen %q", s.Lines)
		}
	})
}
