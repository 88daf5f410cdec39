package display_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/display"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	dump := hex.Dump(got)
	if *update {
		if err := os.WriteFile(path, []byte(dump), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if string(want) != dump {
		t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", name, dump, want)
	}
}

func TestGolden(t *testing.T) {
	protos := []display.Protocol{display.CD5220{}, display.ESCPOS{}}
	cases := []struct {
		name  string
		cp    display.CodePage
		lines [2]string
	}{
		{"points-cp437", display.CP437, [2]string{"Welcome back, Zoë!", "Points: 1234"}},
		{"accents-cp437", display.CP437, [2]string{"Café Müller", "Łódź €5 – ok"}},
		{"cyrillic-cp866", display.CP866, [2]string{"Баллы: 1234", "Иван Петров"}},
		{"cyrillic-translit-cp437", display.CP437, [2]string{"Баллы: 1234", "Щука"}},
		{"hebrew-cp862", display.CP862, [2]string{"נקודות: 120", "שלום דנה"}},
		{"hebrew-translit-cp437", display.CP437, [2]string{"נקודות: 120", "שלום"}},
		{"clip-long", display.CP437, [2]string{"This line is far too long for the display", ""}},
	}
	for _, p := range protos {
		for _, c := range cases {
			t.Run(p.Name()+"/"+c.name, func(t *testing.T) {
				var b []byte
				b = append(b, p.Init(c.cp)...)
				b = append(b, p.Show(c.cp, display.Width, c.lines)...)
				golden(t, p.Name()+"-"+c.name, b)
			})
		}
	}
}

// TestCommandBytes checks the command sets byte for byte against the
// manuals' command lists, independent of the golden files.
func TestCommandBytes(t *testing.T) {
	pad := func(s string) string { return s + strings.Repeat(" ", 20-len(s)) }
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"cd5220 init", display.CD5220{}.Init(display.CP437), "\x1b@\x1b\x11"},
		{"cd5220 clear", display.CD5220{}.Clear(), "\x0c"},
		{"cd5220 show", display.CD5220{}.Show(display.CP437, 20, [2]string{"Hi", "Points 5"}), "\x1bQA" + pad("Hi") + "\r\x1bQB" + pad("Points 5") + "\r"},
		{"cd5220 brightness", must(display.CD5220{}.Brightness(2)), "\x1b*\x02"},
		{"escpos init cp437", display.ESCPOS{}.Init(display.CP437), "\x1b@\x1f\x01\x1bt\x00"},
		{"escpos init cp866", display.ESCPOS{}.Init(display.CP866), "\x1b@\x1f\x01\x1bt\x11"},
		{"escpos init cp862", display.ESCPOS{}.Init(display.CP862), "\x1b@\x1f\x01\x1bt\x0f"},
		{"escpos show", display.ESCPOS{}.Show(display.CP437, 20, [2]string{"Hi", ""}), "\x1f$\x01\x01" + pad("Hi") + "\x1f$\x01\x02" + pad("")},
		{"escpos brightness", must(display.ESCPOS{}.Brightness(4)), "\x1fX\x04"},
		{"cp437 e-acute", display.CP437.Line("é", 1), "\x82"},
		{"cp866 Be", display.CP866.Line("Б", 1), "\x81"},
		{"cp862 alef", display.CP862.Line("א", 1), "\x80"},
		{"control bytes never pass", display.CP437.Line("a\x1b@\x0cb", 5), "a @ b"},
		{"hebrew right aligned and reversed", display.CP862.Line("אב", 4), "  \x81\x80"},
		{"rune-aware clip", display.CP866.Line("Привет, мир", 6), "\x8f\xe0\xa8\xa2\xa5\xe2"},
		{"transliteration expands then clips", display.CP437.Line("Щщ", 5), "Shchs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestBrightnessRange(t *testing.T) {
	for _, p := range []display.Protocol{display.CD5220{}, display.ESCPOS{}} {
		for _, l := range []int{0, 5, -1} {
			if _, err := p.Brightness(l); !errors.Is(err, display.ErrBrightness) {
				t.Errorf("%s level %d: %v", p.Name(), l, err)
			}
		}
	}
}

func TestLineAlwaysWidth(t *testing.T) {
	for _, cp := range []display.CodePage{display.CP437, display.CP862, display.CP866} {
		for _, s := range []string{"", "a", "Щщщщщщщщщщщщщщщщщщщщщщщщ", "שלום 12345678901234567890", "\U0001F600 emoji", "e\u0301"} {
			if got := cp.Line(s, 20); len(got) != 20 {
				t.Errorf("%s %q: %d bytes", cp.Name, s, len(got))
			}
		}
	}
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"Points: 1234", "נקודות: 120", "Баллы", "Zoë", "\x1b@", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, cp := range []display.CodePage{display.CP437, display.CP862, display.CP866} {
			b := cp.Line(s, 20)
			if len(b) != 20 {
				t.Fatalf("%s: %d bytes", cp.Name, len(b))
			}
			for _, c := range b {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("%s: control byte %#x would be a display command", cp.Name, c)
				}
			}
		}
	})
}

type failWriter struct {
	buf    *bytes.Buffer
	fail   bool
	closed int
}

func (w *failWriter) Write(p []byte) (int, error) {
	if w.fail {
		return 0, io.ErrClosedPipe
	}
	return w.buf.Write(p)
}
func (w *failWriter) Close() error { w.closed++; return nil }

func TestSerialReopensAfterWriteError(t *testing.T) {
	var buf bytes.Buffer
	opens := 0
	fw := &failWriter{buf: &buf}
	d, err := display.NewSerial(display.SerialOptions{Protocol: display.CD5220{},
		Open: func() (io.WriteCloser, error) { opens++; return fw, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Show(ctx, [2]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	fw.fail = true
	if err := d.Show(ctx, [2]string{"c", "d"}); err == nil {
		t.Fatal("write error not reported")
	}
	fw.fail = false
	buf.Reset()
	if err := d.Show(ctx, [2]string{"e", "f"}); err != nil {
		t.Fatal(err)
	}
	want := append(display.CD5220{}.Init(display.CP437), display.CD5220{}.Show(display.CP437, 20, [2]string{"e", "f"})...)
	if opens != 2 || fw.closed != 1 || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("opens %d closed %d bytes %q", opens, fw.closed, buf.Bytes())
	}
	if h := d.Health(); h.State != device.StateHealthy || h.Reopens != 1 || h.Faults["gone"] != 1 || h.Frames != 2 {
		t.Fatalf("health %+v", h)
	}
}

func TestLogDisplay(t *testing.T) {
	var buf bytes.Buffer
	d := display.NewLog(&buf, 10)
	if err := d.Show(context.Background(), [2]string{"Zoë", "Points: 1234567"}); err != nil {
		t.Fatal(err)
	}
	want := "+------------+\n| Zoë        |\n| Points: 12 |\n+------------+\n"
	if buf.String() != want {
		t.Fatalf("got\n%s", buf.String())
	}
	if err := d.Brightness(context.Background(), 9); !errors.Is(err, display.ErrBrightness) {
		t.Fatal(err)
	}
}
