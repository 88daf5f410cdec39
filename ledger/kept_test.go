package ledger_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// keptSeqs is what the outbox still holds at or below the watermark.
func keptSeqs(t *testing.T, l *ledger.Ledger) (from, to uint64, bytes int64) {
	t.Helper()
	from, to, bytes, err := l.Kept()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.Outbox(from-1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if from <= to && (len(recs) == 0 || recs[0].Seq != from) {
		t.Fatalf("Kept says from %d, the outbox starts at %+v", from, recs)
	}
	return from, to, bytes
}

func TestConfirmedEventsKept(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		name  string
		keep  time.Duration
		bytes int64
		// untrusted records the sales on an untrusted clock.
		untrusted bool
		// after is how long after the sales they are confirmed.
		after    time.Duration
		wantFrom uint64 // first kept seq after confirming 1..10 (11: none)
	}{
		{"default keeps all", 0, 0, false, time.Hour, 1},
		{"forget at once", -1, 0, false, 0, 11},
		{"older than the window", day, 0, false, 2 * day, 11},
		{"inside the window", 3 * day, 0, false, 2 * day, 1},
		{"untrusted times wait for the byte bound", day, 0, true, 2 * day, 1},
		{"byte bound takes the oldest", 0, 200, false, 0, 0}, // wantFrom checked by size
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(o *ledger.Options) { o.KeepConfirmedFor, o.KeepConfirmedBytes = c.keep, c.bytes })
			if c.untrusted {
				f.clock.Set(t0, false)
			}
			for i := range 10 {
				f.sale(t, ledger.SaleRequest{ID: fmt.Sprintf("s%d", i)})
			}
			if c.untrusted {
				f.clock.Set(t0, true)
			}
			f.clock.Advance(c.after)
			if err := f.l.Confirm(10); err != nil {
				t.Fatal(err)
			}
			from, to, bytes := keptSeqs(t, f.l)
			if to != 10 {
				t.Fatalf("kept up to %d, want 10", to)
			}
			if c.bytes > 0 {
				if bytes > c.bytes || from == 1 || from > 10 {
					t.Fatalf("byte bound %d: kept %d..%d, %d bytes", c.bytes, from, to, bytes)
				}
				return
			}
			if from != c.wantFrom {
				t.Fatalf("kept from %d (%d bytes), want %d", from, bytes, c.wantFrom)
			}
			if pending, oldest, _ := f.l.OutboxStats(); pending != 0 || oldest.Seq != 0 {
				t.Fatalf("kept events count as pending: %d %+v", pending, oldest)
			}
			// A later sale and its confirmation keep the outbox whole
			// (Check runs when the test ends) and the window moves on.
			f.sale(t, ledger.SaleRequest{ID: "later"})
			if pending, oldest, _ := f.l.OutboxStats(); pending != 1 || oldest.Seq != 11 {
				t.Fatalf("pending after a later sale: %d %+v", pending, oldest)
			}
			f.reopen(t)
			if err := f.l.Confirm(11); err != nil {
				t.Fatal(err)
			}
			if from2, to2, _ := keptSeqs(t, f.l); to2 != 11 || (c.wantFrom == 1 && from2 != 1) {
				t.Fatalf("after the later confirm: kept %d..%d", from2, to2)
			}
		})
	}
}
