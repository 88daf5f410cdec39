package daemon

import (
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestNoticeLines: every notice the cashier should call support about has
// its two display lines, each within a 20-column display; no notice shows
// nothing; a takeover comes first.
func TestNoticeLines(t *testing.T) {
	cases := []struct {
		st    uplink.Status
		first string
	}{
		{uplink.Status{}, ""},
		{uplink.Status{Notice: uplink.Notice{Code: protocol.NoticeIncarnation}}, "Sales held at HQ"},
		{uplink.Status{Notice: uplink.Notice{Code: protocol.NoticeStore}}, "Sales held at HQ"},
		{uplink.Status{Notice: uplink.Notice{Code: protocol.NoticeReused}}, "Sales held at HQ"},
		{uplink.Status{Notice: uplink.Notice{Code: uplink.NoticeLost}}, "HQ lost sales"},
		{uplink.Status{Takeover: "taken over", Notice: uplink.Notice{Code: protocol.NoticeIncarnation}}, "Register id in use"},
	}
	for _, c := range cases {
		got := noticeLines(c.st)
		if got[0] != c.first || (c.first != "" && got[1] == "") {
			t.Errorf("%+v: %q, want first line %q", c.st, got, c.first)
		}
		for _, l := range got {
			if len(l) > 20 {
				t.Errorf("%q is wider than 20 columns", l)
			}
		}
	}
}
