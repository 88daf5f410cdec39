package uplink

import (
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// An ack naming another incarnation covers nothing of this ledger; one
// naming none (a head office older than incarnations) or ours does, and
// its notice (or none) is what status shows.
func TestAckForUs(t *testing.T) {
	id := &identity{inc: "aaaa"}
	held := &protocol.Notice{Code: protocol.NoticeIncarnation, Held: 3, Text: "x"}
	steps := []struct {
		ack    protocol.Ack
		forUs  bool
		notice string
		other  string
	}{
		{protocol.Ack{Register: "r1", Watermark: 5}, true, "", ""},
		{protocol.Ack{Register: "r1", Incarnation: "bbbb", Watermark: 9}, false, "", "bbbb"},
		{protocol.Ack{Register: "r1", Incarnation: "aaaa", Notice: held}, true, protocol.NoticeIncarnation, "bbbb"},
		{protocol.Ack{Register: "r1", Incarnation: "aaaa", Watermark: 6}, true, "", "bbbb"},
	}
	for i, s := range steps {
		if got := id.forUs(s.ack); got != s.forUs {
			t.Fatalf("step %d: forUs %v", i, got)
		}
		var st Status
		id.status(&st)
		if st.Notice.Code != s.notice || st.OtherIncarnation != s.other || st.Incarnation != "aaaa" {
			t.Fatalf("step %d: status %+v", i, st)
		}
	}
}

// A watermark for this incarnation beyond the ledger's last event (a
// ledger restored from an older backup) is a notice until a confirm
// succeeds; head office's own notice goes first.
func TestBehindNotice(t *testing.T) {
	id := &identity{inc: "aaaa"}
	id.behind(13)
	var st Status
	id.status(&st)
	if st.Notice.Code != protocol.NoticeReused || st.Notice.Text == "" {
		t.Fatalf("behind: %+v", st.Notice)
	}
	id.forUs(protocol.Ack{Register: "r1", Incarnation: "aaaa", Notice: &protocol.Notice{Code: protocol.NoticeStore, Text: "moved"}})
	st = Status{}
	id.status(&st)
	if st.Notice.Code != protocol.NoticeStore {
		t.Fatalf("head office's notice: %+v", st.Notice)
	}
	id.forUs(protocol.Ack{Register: "r1", Incarnation: "aaaa"})
	id.caughtUp()
	st = Status{}
	id.status(&st)
	if st.Notice.Code != "" {
		t.Fatalf("after catching up: %+v", st.Notice)
	}
}

// A resend request below the confirmed watermark (head office restored
// from a backup) is a "lost" notice naming the numbers, until head
// office's watermark is back above them. The command it names runs as
// printed but for the file (it lacked -config, a usage error).
func TestLostNotice(t *testing.T) {
	id := &identity{inc: "aaaa", reg: "r1"}
	id.lost(12, 21)
	var st Status
	id.status(&st)
	if st.Notice.Code != NoticeLost || st.Notice.Held != 10 || !strings.Contains(st.Notice.Text, "12..21") || !strings.Contains(st.Notice.Text, "loyalty-hq register gap -config FILE r1 12 21") {
		t.Fatalf("lost: %+v", st.Notice)
	}
	id.forUs(protocol.Ack{Register: "r1", Incarnation: "aaaa", Watermark: 15})
	st = Status{}
	id.status(&st)
	if st.Notice.Code != NoticeLost {
		t.Fatalf("cleared too early: %+v", st.Notice)
	}
	id.forUs(protocol.Ack{Register: "r1", Incarnation: "aaaa", Watermark: 21})
	st = Status{}
	id.status(&st)
	if st.Notice.Code != "" {
		t.Fatalf("not cleared: %+v", st.Notice)
	}
}

// TestReplacedClearedOnAdoption: a new ledger that continues a replaced
// one's stream says so (and the adopt command) while head office holds its
// events, and no longer once head office acknowledges it plainly (the
// adoption succeeded); the line stayed after the adoption.
func TestReplacedClearedOnAdoption(t *testing.T) {
	id := &identity{inc: "bbbb", reg: "r1"}
	id.rebased("aaaa", 10)
	replaced := func() string {
		var st Status
		id.status(&st)
		return st.Replaced
	}
	if replaced() != "aaaa" {
		t.Fatal("no replaced after the rebase")
	}
	id.forUs(protocol.Ack{Register: "r1", Incarnation: "bbbb", Watermark: 10, Notice: &protocol.Notice{Code: protocol.NoticeIncarnation, Held: 2, Text: "adopt it"}})
	if replaced() != "aaaa" {
		t.Fatal("replaced cleared while head office still holds the events")
	}
	id.forUs(protocol.Ack{Register: "r1", Incarnation: "aaaa", Watermark: 10})
	if replaced() != "aaaa" {
		t.Fatal("replaced cleared by an ack to the old ledger")
	}
	id.forUs(protocol.Ack{Register: "r1", Incarnation: "bbbb", Watermark: 12})
	if r := replaced(); r != "" {
		t.Fatalf("replaced still %q after head office follows this ledger", r)
	}
}
