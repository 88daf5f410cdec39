package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// OutboxIntoMatches: OutboxInto reads what Outbox returns, from every
// position and in batches of several sizes, reusing one batch (its IDs
// filled in from IDPrefix).
func OutboxIntoMatches(t *testing.T, l *Ledger) int {
	t.Helper()
	all, err := l.Outbox(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var b OutboxBatch
	for _, n := range []int{1, 64, 0} {
		for after := uint64(0); after <= uint64(len(all))+1 && after < 400; after++ {
			want, err := l.Outbox(after, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.OutboxInto(&b, after, n); err != nil {
				t.Fatal(err)
			}
			sameRecords(t, fmt.Sprintf("after %d max %d", after, n), b, want)
		}
	}
	return len(all)
}

// OutboxStampedIntoMatches: OutboxStampedInto reads what OutboxStamped
// returned.
func OutboxStampedIntoMatches(t *testing.T, x Wire, after uint64, max int, want []OutboxRecord, st Stamp) {
	t.Helper()
	var b OutboxBatch
	got, err := x.OutboxStampedInto(&b, after, max)
	if err != nil || got != st {
		t.Fatalf("OutboxStampedInto: %+v %v, OutboxStamped %+v", got, err, st)
	}
	sameRecords(t, fmt.Sprintf("stamped after %d", after), b, want)
}

// sameRecords compares a batch read with OutboxInto to Outbox's records.
func sameRecords(t *testing.T, what string, b OutboxBatch, want []OutboxRecord) {
	t.Helper()
	if len(b.Recs) != len(want) {
		t.Fatalf("%s: %d records, Outbox %d", what, len(b.Recs), len(want))
	}
	for i, r := range b.Recs {
		if r.ID == "" {
			r.ID = b.IDPrefix + strconv.FormatUint(r.Seq, 10)
		}
		w := want[i]
		if r.Seq != w.Seq || r.ID != w.ID || r.Type != w.Type || !r.WallTime.Equal(w.WallTime) || r.WallTime.String() != w.WallTime.String() ||
			r.ClockTrusted != w.ClockTrusted || !bytes.Equal(r.Data, w.Data) {
			t.Fatalf("%s: record %d\n%+v\n%s\nOutbox\n%+v\n%s", what, i, r, r.Data, w, w.Data)
		}
		if b.Compact(i) {
			// What json.Marshal writes: compact, and HTML-escaped.
			var c, e bytes.Buffer
			if err := json.Compact(&c, r.Data); err != nil || !bytes.Equal(c.Bytes(), r.Data) {
				t.Fatalf("%s: record %d marked compact, is not: %s (%v)", what, i, r.Data, err)
			}
			if json.HTMLEscape(&e, r.Data); !bytes.Equal(e.Bytes(), r.Data) {
				t.Fatalf("%s: record %d marked compact, holds what json.Marshal escapes: %s", what, i, r.Data)
			}
		}
	}
}

// TestOutboxIntoReadsOlderLedgers: the records of ledgers written by
// schema 4 and schema 6 code (JSON records, JSON event rows) read alike.
func TestOutboxIntoReadsOlderLedgers(t *testing.T) {
	for _, fx := range []string{"testdata/schema4.db.gz", "testdata/schema6.db.gz"} {
		t.Run(fx, func(t *testing.T) {
			l, err := Open(copyFixture(t, fx), &Options{Register: "store1-r1", Clock: fixedClock{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if n := OutboxIntoMatches(t, l); n == 0 {
				t.Fatal("no outbox records to read")
			} else {
				t.Logf("%d records", n)
			}
		})
	}
}
