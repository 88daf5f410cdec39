package magstripe_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/device/frame"
	"github.com/loyalty-terminal/loyalty/device/magstripe"
)

const visa = "4111111111111111"

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		number string
		track  int
		bad    int
		err    error
	}{
		{name: "member on track 2", in: ";9901234567890120?", number: "9901234567890120", track: 2},
		{name: "member with field separator", in: ";9901234567890120=0000?", number: "9901234567890120", track: 2},
		{name: "member track 1 and 2", in: "%M12345678?;9901234567890120?", number: "9901234567890120", track: 2},
		{name: "track 1 only", in: "%M12345678?", number: "12345678", track: 1},
		{name: "track 1 unreadable, track 2 fine", in: "%E?;9901234567890120?", number: "9901234567890120", track: 2, bad: 1},
		{name: "track 2 unreadable falls back to track 1", in: "%M12345678?;E?", number: "12345678", track: 1, bad: 1},
		{name: "three tracks", in: "%E?;E?;12345?", number: "12345", track: 3, bad: 2},
		{name: "LRC after end sentinel", in: ";9901234567890120?x", number: "9901234567890120", track: 2},
		{name: "all tracks unreadable", in: "%E?;E?", err: device.ErrTrackError},
		{name: "half swipe no end sentinel", in: ";99012345", err: device.ErrHalfSwipe},
		{name: "half swipe track cut short", in: "%M1234;9901234567890120?", err: device.ErrHalfSwipe},
		{name: "bank track 1 layout", in: "%B" + visa + "^DOE/JOHN^2512101000000000?;" + visa + "=25121010000000000?", err: device.ErrNotMemberCard},
		{name: "bank track 2 only", in: ";" + visa + "=25121010000000000?", err: device.ErrNotMemberCard},
		{name: "bank half swipe still refused as bank", in: "%B" + visa + "^DOE", err: device.ErrNotMemberCard},
		{name: "Amex track 2", in: ";378282246310005=2512?", err: device.ErrNotMemberCard},
		{name: "garbage outside tracks", in: "hello", err: device.ErrBadTrack},
		{name: "non-numeric track 2", in: ";12AB?", err: device.ErrBadTrack},
		{name: "track 2 too long", in: ";" + strings.Repeat("9", 45) + "?", err: device.ErrBadTrack},
		{name: "two track 1", in: "%M1?%M2?", err: device.ErrBadTrack},
		{name: "empty", in: "", err: device.ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sw, err := magstripe.Parse(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				if sw.Number != "" {
					t.Fatalf("refused swipe carries a number")
				}
				assertSafe(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sw.Number != tt.number || sw.Track != tt.track || sw.BadTracks != tt.bad {
				t.Fatalf("got %+v", sw)
			}
		})
	}
}

// assertSafe checks every common formatting of err for card numbers.
func assertSafe(t *testing.T, err error) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		s := fmt.Sprintf(verb, err)
		if cardsafe.ContainsPAN(s) || strings.Contains(s, "DOE") {
			t.Fatalf("%s leaks: %s", verb, s)
		}
	}
	var me *magstripe.Error
	if errors.As(err, &me) {
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			if s := fmt.Sprintf(verb, *me); cardsafe.ContainsPAN(s) {
				t.Fatalf("value %s leaks: %s", verb, s)
			}
		}
	}
	if strings.Contains(fmt.Sprintf("%v", err), visa[6:12]) {
		t.Fatalf("middle digits leak: %v", err)
	}
}

func TestHandlerMemberPatterns(t *testing.T) {
	c, err := classify.New(classify.Options{Members: []classify.MemberPattern{{Prefix: "990", Length: 16, Check: classify.CheckLuhn}}})
	if err != nil {
		t.Fatal(err)
	}
	h := magstripe.Handler(c)
	// The recorded swipes file holds one reader frame per line with the
	// expected outcome (see testdata/README.md).
	f, err := os.Open(filepath.Join("testdata", "swipes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		want, in, _ := strings.Cut(line, " ")
		ev := h(frame.Frame{Data: in})
		got := ev.Kind.String()
		if ev.Kind == device.KindReject {
			got = device.ReasonLabel(ev.Reason)
			if ev.Payload != "" {
				t.Errorf("reject with payload for %q", want)
			}
		}
		if got != want {
			t.Errorf("line %d: got %s (%v), want %s", n+1, got, ev.Reason, want)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("only %d recorded swipes", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{";9901234567890120?", "%B" + visa + "^DOE/JOHN^2512101?;" + visa + "=2512?",
		"%E?;E?", ";990", "%M123?;E?;77?", ";" + visa + "?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sw, err := magstripe.Parse(in)
		if err != nil {
			if sw.Number != "" {
				t.Fatal("number on error")
			}
			for _, verb := range []string{"%v", "%+v", "%#v"} {
				if cardsafe.ContainsPAN(fmt.Sprintf(verb, err)) {
					t.Fatalf("error leaks a PAN")
				}
			}
			return
		}
		if cardsafe.ContainsPAN(sw.Number) {
			t.Fatalf("PAN returned as member number")
		}
	})
}
