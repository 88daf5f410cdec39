package frame_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/frame"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type chunk struct {
	b  string
	at time.Duration
}

func run(o frame.Options, chunks []chunk, flushAt time.Duration) ([]frame.Frame, []frame.Reject) {
	a := frame.New(o)
	var out []frame.Output
	for _, c := range chunks {
		out = a.Feed([]byte(c.b), t0.Add(c.at), out)
	}
	if flushAt > 0 {
		out = a.Flush(t0.Add(flushAt), out)
	}
	return frame.Split(out)
}

func TestAssembler(t *testing.T) {
	tests := []struct {
		name    string
		o       frame.Options
		chunks  []chunk
		flushAt time.Duration
		want    []string // frame data
		syms    []device.Symbology
		rejects []error
	}{
		{name: "one CR frame", chunks: []chunk{{"4006381333931\r", 0}}, want: []string{"4006381333931"}},
		{name: "CRLF frame", o: frame.Options{Terminator: frame.CRLF}, chunks: []chunk{{"4006381333931\r\n", 0}}, want: []string{"4006381333931"}},
		{name: "LF frame", o: frame.Options{Terminator: frame.LF}, chunks: []chunk{{"96385074\n", 0}}, want: []string{"96385074"}},
		{name: "split across three reads", o: frame.Options{Terminator: frame.CRLF},
			chunks: []chunk{{"4006", 0}, {"381333", time.Millisecond}, {"931\r", 2 * time.Millisecond}, {"\n", 3 * time.Millisecond}},
			want:   []string{"4006381333931"}},
		{name: "back to back in one read", o: frame.Options{Terminator: frame.CRLF},
			chunks: []chunk{{"4006381333931\r\n96385074\r\n036000291452\r\n", 0}},
			want:   []string{"4006381333931", "96385074", "036000291452"}},
		{name: "half frame waits", chunks: []chunk{{"40063813", 0}}, want: nil},
		{name: "leading noise dropped, frame kept, one reject per run", chunks: []chunk{{"\x00\xff4006381333931\r", 0}},
			want: []string{"4006381333931"}, rejects: []error{device.ErrNoise}},
		{name: "control byte inside a frame ends it; the rest is a new frame", chunks: []chunk{{"4006\x07381333931\r96385074\r", 0}},
			want: []string{"381333931", "96385074"}, rejects: []error{device.ErrBadTerminator}},
		// the sequences: a TAB-terminated scanner, then a good scan
		{name: "tab terminators refused, next good scan kept", chunks: []chunk{{"4006381333931\t", 0}, {"5901234123457\t", 300 * time.Millisecond},
			{"4000417025005\r", 600 * time.Millisecond}},
			want: []string{"4000417025005"}, rejects: []error{device.ErrBadTerminator, device.ErrBadTerminator}},
		{name: "tab terminators in one read", chunks: []chunk{{"4006381333931\t5901234123457\t4000417025005\r", 0}},
			want: []string{"4000417025005"}, rejects: []error{device.ErrBadTerminator, device.ErrBadTerminator}},
		{name: "A NUL then a good scan", chunks: []chunk{{"A\x00", 0}, {"4006381333931\r", 200 * time.Millisecond}},
			want: []string{"4006381333931"}, rejects: []error{device.ErrBadTerminator}},
		{name: "A NUL and a good scan in one read", chunks: []chunk{{"A\x004006381333931\r", 0}},
			want: []string{"4006381333931"}, rejects: []error{device.ErrBadTerminator}},
		{name: "a cut-off frame refused after a silence, next scan kept", chunks: []chunk{{"A", 0}, {"4006381333931\r", time.Second}},
			want: []string{"4006381333931"}, rejects: []error{device.ErrBadTerminator}},
		{name: "a cut-off frame refused on flush", chunks: []chunk{{"400638", 0}}, flushAt: time.Second,
			rejects: []error{device.ErrBadTerminator}},
		{name: "a split frame within the stale time is one frame", chunks: []chunk{{"400638", 0}, {"1333931\r", 400 * time.Millisecond}}, flushAt: 450 * time.Millisecond,
			want: []string{"4006381333931"}},
		{name: "over-long garbage dropped until terminator", o: frame.Options{MaxLen: 16},
			chunks: []chunk{{strings.Repeat("A", 40), 0}, {strings.Repeat("B", 40) + "\r96385074\r", time.Millisecond}},
			want:   []string{"96385074"}, rejects: []error{device.ErrTooLong}},
		{name: "frame of exactly max length accepted", o: frame.Options{MaxLen: 13},
			chunks: []chunk{{"4006381333931\r", 0}}, want: []string{"4006381333931"}},
		{name: "prefix stripped", o: frame.Options{Prefix: "S:"}, chunks: []chunk{{"S:96385074\r", 0}}, want: []string{"96385074"}},
		{name: "AIM identifiers", o: frame.Options{AIM: true, Terminator: frame.CRLF},
			chunks: []chunk{{"]E04006381333931\r\n]E496385074\r\n]C1ABC\r\n", 0}},
			want:   []string{"4006381333931", "96385074", "ABC"},
			syms:   []device.Symbology{device.SymEAN13, device.SymEAN8, device.SymGS1128}},
		{name: "AIM missing", o: frame.Options{AIM: true}, chunks: []chunk{{"4006381333931\r", 0}}, rejects: []error{device.ErrMissingAIM}},
		{name: "AIM without data", o: frame.Options{AIM: true}, chunks: []chunk{{"]E0\r", 0}}, rejects: []error{device.ErrEmpty}},
		{name: "idle gap ends frame on flush", o: frame.Options{Terminator: frame.IdleGap, IdleGap: 20 * time.Millisecond},
			chunks: []chunk{{"40063", 0}, {"81333931", 5 * time.Millisecond}}, flushAt: 30 * time.Millisecond,
			want: []string{"4006381333931"}},
		{name: "idle gap framing still ends at CR", o: frame.Options{Terminator: frame.IdleGap, IdleGap: 20 * time.Millisecond},
			chunks: []chunk{{"96385074\r4006381333931\r\n", 0}},
			want:   []string{"96385074", "4006381333931"}},
		{name: "idle gap not yet passed", o: frame.Options{Terminator: frame.IdleGap, IdleGap: 20 * time.Millisecond},
			chunks: []chunk{{"40063", 0}}, flushAt: 10 * time.Millisecond},
		{name: "idle gap splits two bursts", o: frame.Options{Terminator: frame.IdleGap, IdleGap: 20 * time.Millisecond},
			chunks: []chunk{{"96385074", 0}, {"4006381333931", 50 * time.Millisecond}}, flushAt: 100 * time.Millisecond,
			want: []string{"96385074", "4006381333931"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, rs := run(tt.o, tt.chunks, tt.flushAt)
			var got []string
			for i, f := range fs {
				got = append(got, f.Data)
				if tt.syms != nil && f.Symbology != tt.syms[i] {
					t.Errorf("frame %d symbology %q, want %q", i, f.Symbology, tt.syms[i])
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("frames %q, want %q", got, tt.want)
			}
			if len(rs) != len(tt.rejects) {
				t.Fatalf("rejects %v, want %v", rs, tt.rejects)
			}
			for i, r := range rs {
				if !errors.Is(r.Err, tt.rejects[i]) {
					t.Errorf("reject %d = %v, want %v", i, r.Err, tt.rejects[i])
				}
			}
		})
	}
}

func TestWireOrder(t *testing.T) {
	a := frame.New(frame.Options{})
	out := a.Feed([]byte("96385074\r\x00X\x01Y\r4006381333931\r"), t0, nil)
	var got []string
	for _, o := range out {
		if o.Reject.Err != nil {
			got = append(got, device.ReasonLabel(o.Reject.Err))
		} else {
			got = append(got, o.Frame.Data)
		}
	}
	if want := "96385074|noise|bad_terminator|Y|4006381333931"; strings.Join(got, "|") != want {
		t.Fatalf("order %q, want %s", got, want)
	}
}

func TestFrameTimeIsLastByte(t *testing.T) {
	fs, _ := run(frame.Options{}, []chunk{{"9638", 0}, {"5074\r", 7 * time.Millisecond}}, 0)
	if len(fs) != 1 || !fs[0].At.Equal(t0.Add(7*time.Millisecond)) {
		t.Fatalf("frames %+v", fs)
	}
}

func TestResetDropsHalfFrame(t *testing.T) {
	a := frame.New(frame.Options{})
	a.Feed([]byte("4006"), t0, nil)
	a.Reset()
	fs, _ := frame.Split(a.Feed([]byte("96385074\r"), t0, nil))
	if len(fs) != 1 || fs[0].Data != "96385074" {
		t.Fatalf("frames %+v", fs)
	}
}

func TestParseTerminator(t *testing.T) {
	for in, want := range map[string]frame.Terminator{"cr": frame.CR, "lf": frame.LF, "crlf": frame.CRLF, "none": frame.IdleGap} {
		if got, err := frame.ParseTerminator(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := frame.ParseTerminator("semicolon"); err == nil {
		t.Error("unknown terminator accepted")
	}
}

// TestRecordedStream replays a recorded scanner stream (see testdata/README).
func TestRecordedStream(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "scanner-crlf.bin"))
	if err != nil {
		t.Fatal(err)
	}
	a := frame.New(frame.Options{Terminator: frame.CRLF, MaxLen: 32})
	var out []frame.Output
	// Replay in uneven reads, as a USB CDC port delivers them.
	for i, n := 0, 1; i < len(b); i, n = i+n, n%7+1 {
		j := min(i+n, len(b))
		out = a.Feed(b[i:j], t0.Add(time.Duration(i)*time.Millisecond), out)
	}
	fs, rs := frame.Split(out)
	var got []string
	for _, f := range fs {
		got = append(got, f.Data)
	}
	// the ESC inside "0360<ESC>00291452" ends that frame; its tail is a
	// frame of its own (refused by classification: wrong check digit)
	want := "4006381333931|96385074|00291452|036000291452|4006381333931"
	if strings.Join(got, "|") != want {
		t.Errorf("frames %q, want %s", got, want)
	}
	reasons := map[string]int{}
	for _, r := range rs {
		reasons[device.ReasonLabel(r.Err)]++
	}
	if reasons["too_long"] != 1 || reasons["noise"] != 2 || reasons["bad_terminator"] != 1 {
		t.Errorf("rejects %v", reasons)
	}
}

func FuzzAssembler(f *testing.F) {
	f.Add([]byte("4006381333931\r\n"), uint8(2), false)
	f.Add([]byte("]E04006381333931\r"), uint8(0), true)
	f.Add([]byte("\x00\xff40063\r4111111111111111\r"), uint8(0), false)
	f.Add([]byte(strings.Repeat("9", 300)+"\n"), uint8(1), false)
	if b, err := os.ReadFile(filepath.Join("testdata", "scanner-crlf.bin")); err == nil {
		f.Add(b, uint8(2), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, term uint8, aim bool) {
		o := frame.Options{Terminator: frame.Terminator(term % 4), AIM: aim, MaxLen: 64, IdleGap: time.Millisecond}
		a := frame.New(o)
		var out []frame.Output
		for i := 0; i < len(b); i += 5 {
			out = a.Feed(b[i:min(i+5, len(b))], t0.Add(time.Duration(i)*time.Millisecond), out)
		}
		fs, rs := frame.Split(a.Flush(t0.Add(time.Hour), out))
		for _, f := range fs {
			if len(f.Data) == 0 || len(f.Data) > 64 {
				t.Fatalf("frame of length %d", len(f.Data))
			}
		}
		for _, r := range rs {
			if r.Err == nil || cardsafe.ContainsPAN(r.Err.Error()) {
				t.Fatalf("unsafe reject %v", r.Err)
			}
		}
	})
}
