package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutboxIntoMatches: OutboxInto reads what Outbox returns, from every
// position and in batches of several sizes, reusing one batch (its IDs
// filled in from IDPrefix). It returns the number of records and how many
// of them a read of them all marks compact (payloads written from binary
// rows, which the uplink copies unchecked).
func OutboxIntoMatches(t *testing.T, l *Ledger) (records, compact int) {
	t.Helper()
	all, err := l.Outbox(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var b OutboxBatch
	if err := l.OutboxInto(&b, 0, 0); err != nil {
		t.Fatal(err)
	}
	for i := range b.Recs {
		if b.Compact(i) {
			compact++
		}
	}
	// Part: every run of the records read, with their marks.
	var p OutboxBatch
	for i := 0; i <= len(b.Recs); i++ {
		for j := i; j <= len(b.Recs); j++ {
			b.Part(&p, i, j)
			sameRecords(t, fmt.Sprintf("part %d:%d", i, j), p, all[i:j])
			for k := range p.Recs {
				if p.Compact(k) != b.Compact(i+k) {
					t.Fatalf("part %d:%d: record %d compact %v, batch %v", i, j, k, p.Compact(k), b.Compact(i+k))
				}
			}
		}
	}
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
	return len(all), compact
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
			if n, _ := OutboxIntoMatches(t, l); n == 0 {
				t.Fatal("no outbox records to read")
			} else {
				t.Logf("%d records", n)
			}
		})
	}
}

// TestOutboxIntoRefusesAnEmptyEventRow: an event row stored empty (a
// damaged ledger) is an inconsistency OutboxInto and Outbox report, as
// they do a missing row; it used to index the row's first byte and panic, which
// killed the daemon on every start (the uplink reads it at once).
func TestOutboxIntoRefusesAnEmptyEventRow(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Engine: benchEngine{}, Clock: fixedClock{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Enrol(ctx, Member{ID: "m0", Name: "Dana"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, typicalSale("s1", 0)); err != nil {
		t.Fatal(err)
	}
	var b OutboxBatch
	if err := l.OutboxInto(&b, 0, 0); err != nil {
		t.Fatalf("before: %v", err)
	}
	prefix := rowPrefix(rowEvent, "m0")
	if err := l.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRows).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			return tx.Bucket(bRows).Put(append([]byte(nil), k...), []byte{})
		}
		return errors.New("no event row")
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.OutboxInto(&b, 0, 0); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("OutboxInto over an empty event row: %v, want ErrInconsistent", err)
	}
	if _, err := l.Outbox(0, 0); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("Outbox over an empty event row: %v, want ErrInconsistent, as OutboxInto", err)
	}
}

// TestDefaultID holds defaultID, which compares digits without writing
// them, to the prefix plus strconv's decimal.
func TestDefaultID(t *testing.T) {
	r := outboxReader{prefix: "r1-"}
	seqs := []uint64{0, 1, 9, 10, 11, 99, 100, 101, 12345, 1<<64 - 1}
	ids := []string{"", "r1-", "r1", "r2-1", "r1-0", "r1-00", "r1-01", "r1-1", "r1-9", "r1-10", "r1-010", "r1-11", "r1-99",
		"r1-100", "r1-101", "r1-1001", "r1-12345", "r1-2345", "r1-x2345", "r1-18446744073709551615", "r1-118446744073709551615", "r1--1"}
	for _, seq := range seqs {
		for _, id := range ids {
			want := id == "r1-"+strconv.FormatUint(seq, 10)
			if got := r.defaultID([]byte(id), seq); got != want {
				t.Errorf("defaultID(%q, %d) = %v, want %v", id, seq, got, want)
			}
		}
	}
}
