package hqstore

import (
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestReviewTextKeepsTheCommand: a held-events notice is cut at
// protocol.MaxNoticeText bytes (sync/hq's acker); with store and register
// ids of the longest length accepted, the command it gives must still be
// whole in what is left.
func TestReviewTextKeepsTheCommand(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, protocol.MaxIDLen) }
	reg, st, bound := long("r"), long("s"), long("b")
	inc, boundInc := strings.Repeat("a", 32), strings.Repeat("c", 32)
	for _, tc := range []struct {
		h    Hold
		want string
	}{
		{Hold{Stream: Stream{Register: reg, Store: st, Incarnation: inc}, Reason: ReviewIncarnation, BoundIncarnation: boundInc}, "loyalty-hq register adopt -config FILE " + reg + " " + inc},
		{Hold{Stream: Stream{Register: reg, Store: st}, Reason: ReviewStore, BoundStore: bound}, "loyalty-hq register move -config FILE " + reg + " " + st},
		{Hold{Stream: Stream{Register: "r1", Store: "s1", Incarnation: inc}, Reason: ReviewIncarnation, BoundIncarnation: boundInc}, "loyalty-hq register adopt -config FILE r1 " + inc},
		{Hold{Stream: Stream{Register: "r1", Store: "s2"}, Reason: ReviewStore, BoundStore: "s1"}, "loyalty-hq register move -config FILE r1 s2"},
	} {
		text := reviewText(tc.h)
		if len(text) > protocol.MaxNoticeText {
			text = text[:protocol.MaxNoticeText]
		}
		if !strings.Contains(text, tc.want) {
			t.Errorf("%s notice cut at %d bytes lacks %q:\n%s", tc.h.Reason, protocol.MaxNoticeText, tc.want, text)
		}
	}
}
