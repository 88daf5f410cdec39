package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dumpTx is every key and value of tx, nested buckets included.
func dumpTx(t *testing.T, tx *bolt.Tx) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket)
	walk = func(prefix string, b *bolt.Bucket) {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					walk(prefix+string(k)+"/", nb)
					continue
				}
			}
			out[prefix+string(k)] = string(v)
		}
	}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		walk(string(name)+"/", b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// crashCopy copies the ledger file at path and its sale log, as they are
// now, into a new folder (what a power cut leaves: bbolt writes the file
// only at a checkpoint) and returns the copy's path.
func crashCopy(t *testing.T, path string) string {
	t.Helper()
	cpath := filepath.Join(t.TempDir(), "l.db")
	copyFile(t, path, cpath)
	copyFile(t, saleLogName(path), saleLogName(cpath))
	return cpath
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// saleLogWorkload writes what a register writes, in many batches: members,
// sales, a refund, a void, an adjustment, consent, confirmations, and ops
// that fail half-way (their batch is rolled back and the pending batches
// are written into a fresh transaction again).
func saleLogWorkload(t *testing.T, l *Ledger, round int) {
	t.Helper()
	ctx := context.Background()
	for i := range 5 {
		id := fmt.Sprintf("m%d-%d", round, i)
		if _, err := l.Enrol(ctx, Member{ID: id, Name: "Name " + id, Aliases: []string{"card-" + id}}); err != nil {
			t.Fatal(err)
		}
		for j := range 4 {
			req := typicalSale(fmt.Sprintf("s%d-%d-%d", round, i, j), i)
			req.MemberID = id
			if _, err := l.RecordSale(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
	}
	sale := func(id, member string) SaleRequest {
		return SaleRequest{ID: id, MemberID: member, Lines: []Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 700}},
			Tenders: []Tender{{Kind: "card", Amount: 1400}}}
	}
	m := fmt.Sprintf("m%d-0", round)
	if _, err := l.RecordSale(ctx, sale(fmt.Sprintf("r%d", round), m)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Refund(ctx, RefundRequest{ID: fmt.Sprintf("rf%d", round), SaleID: fmt.Sprintf("r%d", round), Lines: []RefundLine{{No: 1, Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, sale(fmt.Sprintf("v%d", round), m)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Void(ctx, fmt.Sprintf("vd%d", round), fmt.Sprintf("v%d", round), "wrong member"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Adjust(ctx, fmt.Sprintf("adj%d", round), m, 25, "goodwill", "op1"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SetConsent(ctx, m, Consent{Given: true, Channel: "in-store"}); err != nil {
		t.Fatal(err)
	}
	// Refused ops: one refused before it writes, one (an unknown member's
	// refund of a sale that does not exist) likewise; both change nothing.
	if _, err := l.RecordSale(ctx, SaleRequest{ID: "bad", MemberID: m}); err == nil {
		t.Fatal("a sale without lines was taken")
	}
	if _, err := l.Refund(ctx, RefundRequest{ID: "rf-none", SaleID: "none"}); err == nil {
		t.Fatal("a refund of no sale was taken")
	}
	// A config that replaces the catalogue (it drops and creates buckets:
	// committed, not logged) between logged batches.
	items := []Item{{SKU: fmt.Sprintf("K%d", round), Name: "kept", Price: 100}}
	if round == 0 {
		items = append(items, Item{SKU: "GONE", Name: "removed by the next config", Price: 200})
	}
	if _, err := l.ApplyConfig(ctx, ConfigDoc{Version: uint64(round + 1), Catalogue: items}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, sale(fmt.Sprintf("after-config%d", round), m)); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Confirm(st.LastSeq / 2); err != nil {
		t.Fatal(err)
	}
}

// TestSaleLogReplayIsTheLedger: the sale log holds every write of the
// acknowledged batches. The ledger file and its log copied while batches
// are pending (what a power cut leaves: bbolt writes the file only at a
// checkpoint) open to exactly what the live ledger shows, key by key,
// and pass Check; the log is then spent (not applied twice).
func TestSaleLogReplayIsTheLedger(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l.db")
	l, err := Open(path, &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for round := range 3 {
		saleLogWorkload(t, l, round)
		if round == 0 {
			// A checkpoint in the middle: the next cycle continues it.
			if err := l.exclusive(nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if l.pendingN.Load() == 0 {
		t.Fatal("nothing pending: the test would prove nothing")
	}
	var live map[string]string
	if err := l.view(func(tx *bolt.Tx) error { live = dumpTx(t, tx); return nil }); err != nil {
		t.Fatal(err)
	}
	var committed map[string]string
	if err := l.db.View(func(tx *bolt.Tx) error { committed = dumpTx(t, tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(committed) >= len(live) {
		t.Fatalf("the file holds %d keys, the live ledger %d: nothing pending", len(committed), len(live))
	}
	cpath := crashCopy(t, path)

	c, err := Open(cpath, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := c.view(func(tx *bolt.Tx) error { got = dumpTx(t, tx); return nil }); err != nil {
		t.Fatal(err)
	}
	// (Every Open writes a new commit id: stateID.)
	delete(live, "state/"+string(kCommitID))
	delete(got, "state/"+string(kCommitID))
	for k, v := range live {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("key %q: after replay %q (present %v), live %q", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := live[k]; !ok {
			t.Errorf("key %q after replay only", k)
		}
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Opened again: the log's records continue a file state that no
	// longer exists, so nothing is applied twice.
	c, err = Open(cpath, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.view(func(tx *bolt.Tx) error { got = dumpTx(t, tx); return nil }); err != nil {
		t.Fatal(err)
	}
	delete(got, "state/"+string(kCommitID))
	if len(got) != len(live) {
		t.Fatalf("second open: %d keys, want %d", len(got), len(live))
	}
}

// TestSaleLogTornRecord: an append cut short (the power failed during the
// write, so its sale was never acknowledged) ends the replay: the batches
// before it are applied, it and anything after are not.
func TestSaleLogTornRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l.db")
	l, err := Open(path, &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Enrol(ctx, Member{ID: "m0"}); err != nil {
		t.Fatal(err)
	}
	if err := l.exclusive(nil); err != nil { // m0 in the file
		t.Fatal(err)
	}
	var ends []int64
	for i := range 3 {
		if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("s%d", i), 0)); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, l.slog.off)
	}
	lg, err := os.ReadFile(saleLogName(path))
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path) // the file as a crash would leave it
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for _, tc := range []struct {
		name string
		harm func(lg []byte)
		want []bool // nil: Open refuses with ErrCorrupt
	}{
		// The third record half written: the rest of its block is what
		// the log held before (zeros). It was never acknowledged.
		{"torn third", func(lg []byte) { clear(lg[ends[1]+slHeader+10 : ends[2]]) }, []bool{true, true, false}},
		// A byte of the second record's writes changed: its CRC fails,
		// and the intact third record shows it had been acknowledged.
		// Open refuses instead of dropping both.
		{"second changed", func(lg []byte) { lg[ends[0]+slHeader+3] ^= 0xff }, nil},
		// The last record's byte changed: no later record says it was
		// acknowledged, so it reads as an append cut short.
		{"third changed", func(lg []byte) { lg[ends[1]+slHeader+3] ^= 0xff }, []bool{true, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpath := filepath.Join(t.TempDir(), "l.db")
			if err := os.WriteFile(cpath, file, 0o600); err != nil {
				t.Fatal(err)
			}
			harmed := bytes.Clone(lg)
			tc.harm(harmed)
			if err := os.WriteFile(saleLogName(cpath), harmed, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Open(cpath, &Options{Register: "r1", Engine: benchEngine{}})
			if tc.want == nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("open with a damaged acknowledged record: %v, want ErrCorrupt", err)
				}
				after, rerr := os.ReadFile(saleLogName(cpath))
				if rerr != nil || !bytes.Equal(after, harmed) {
					t.Fatalf("the refused open changed the log (%v)", rerr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i, want := range tc.want {
				_, err := c.Sale(fmt.Sprintf("s%d", i))
				if got := err == nil; got != want {
					t.Errorf("sale s%d present %v (%v), want %v", i, got, err, want)
				}
			}
			if err := c.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSaleLogOnlyContinuesItsFile: a log is applied only to the file
// state it continues: to a backup of exactly that state (the sales after
// it are the log's), never to another ledger dropped in its place; a
// read-only open of a file with a pending log refuses (it would show a
// ledger without acknowledged sales).
func TestSaleLogOnlyContinuesItsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l.db")
	l, err := Open(path, &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Enrol(ctx, Member{ID: "m0"}); err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if _, err := l.Backup(&backup); err != nil { // a checkpoint, then the file
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, typicalSale("s1", 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, typicalSale("s2", 0)); err != nil {
		t.Fatal(err)
	}
	// The crash: the file and the log as they are now.
	cpath := crashCopy(t, path)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Read-only: refused, with the way out in the message.
	if _, err := Open(cpath, &Options{ReadOnly: true}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only open with a pending log: %v, want ErrReadOnly", err)
	}

	// The backup (the file as it was before s1) restored beside the log:
	// it is the state the log continues, so the log's batches are the
	// sales made after it and are applied: nothing acknowledged is lost.
	rpath := filepath.Join(t.TempDir(), "l.db")
	if err := os.WriteFile(rpath, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	copyFile(t, saleLogName(cpath), saleLogName(rpath))
	r, err := Open(rpath, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s1", "s2"} {
		if _, err := r.Sale(id); err != nil {
			t.Fatalf("backup of the state the log continues: sale %s: %v", id, err)
		}
	}
	r.Close()

	// Another ledger (another incarnation; its transaction ids may well
	// match) dropped in place beside the log: not applied.
	opath := filepath.Join(t.TempDir(), "l.db")
	o, err := Open(opath, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Enrol(ctx, Member{ID: "m0"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, saleLogName(cpath), saleLogName(opath))
	o, err = Open(opath, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.Sale("s1"); !errors.Is(err, ErrUnknownSale) {
		t.Fatalf("another ledger got the log's sale: %v", err)
	}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}

	// The crashed file itself opens with both sales.
	c, err := Open(cpath, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range []string{"s1", "s2"} {
		if _, err := c.Sale(id); err != nil {
			t.Fatalf("after the crash: sale %s: %v", id, err)
		}
	}
}

// TestSaleLogCheckpoints: the pending batches reach the file at the
// latest SaleLogInterval after the first, when saleLogMaxPending batches
// or saleLogMaxWrites rows wait, and before a backup; a sale is
// acknowledged with one log append (no bbolt commit) in between.
func TestSaleLogCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	l, err := Open(path, &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Enrol(ctx, Member{ID: "m0"}); err != nil {
		t.Fatal(err)
	}
	tx0 := fileTxID(t, l)
	for i := range 3 {
		if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("s%d", i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if l.pendingN.Load() == 0 {
		// The interval may have run out on a slow machine; the sales
		// must then be in the file.
		t.Log("checkpointed already")
	} else if got := fileTxID(t, l); got != tx0 && l.pendingN.Load() == 4 {
		t.Fatalf("the file moved from tx %d to %d with every batch pending", tx0, got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.pendingN.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches still pending 10 s after an interval of 50 ms", l.pendingN.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bSales).Get([]byte("s2")) == nil {
			return errors.New("s2 not in the file after the checkpoint")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The batch bound: saleLogMaxPending batches make a checkpoint.
	l2, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for i := range saleLogMaxPending + 1 {
		if _, err := l2.Enrol(ctx, Member{ID: fmt.Sprintf("m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := l2.checkpoints.Load(); n != 1 {
		t.Fatalf("%d checkpoints after %d enrolments, want 1", n, saleLogMaxPending+1)
	}
	if n := l2.pendingN.Load(); n != 1 {
		t.Fatalf("%d pending after the checkpoint, want 1", n)
	}
	// The row bound: sales (about ten rows each) make a checkpoint once
	// their rows reach saleLogMaxWrites, long before 512 batches.
	l3, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	if _, err := l3.Enrol(ctx, Member{ID: "m0"}); err != nil {
		t.Fatal(err)
	}
	if err := l3.exclusive(nil); err != nil { // start from an empty log
		t.Fatal(err)
	}
	// pendingW as the committer sees it between batches (a caller is
	// answered before its batch's checkpoint).
	rows := func() (n int) {
		r := &readReq{fn: func(*bolt.Tx) error { n = l3.pendingW; return nil }, done: make(chan error, 1)}
		l3.reads <- r
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
		return n
	}
	sales, before, now := 0, 0, rows()
	for now > 0 || sales == 0 {
		if sales == saleLogMaxPending {
			t.Fatalf("no checkpoint after %d sales (%d rows pending)", sales, now)
		}
		before = now
		if _, err := l3.RecordSale(ctx, typicalSale(fmt.Sprintf("w%d", sales), 0)); err != nil {
			t.Fatal(err)
		}
		sales++
		now = rows()
	}
	if before >= saleLogMaxWrites || sales < 2 {
		t.Fatalf("checkpoint after %d sales with %d rows pending before the last: want the sale that reached %d rows", sales, before, saleLogMaxWrites)
	}
	if l3.pendingN.Load() != 0 {
		t.Fatalf("%d batches pending after the checkpoint", l3.pendingN.Load())
	}
	t.Logf("row bound: checkpoint after %d sales", sales)

	var b bytes.Buffer
	if _, err := l2.Backup(&b); err != nil {
		t.Fatal(err)
	}
	if l2.pendingN.Load() != 0 {
		t.Fatal("a backup left batches pending: it would miss them")
	}
	bp := filepath.Join(t.TempDir(), "b.db")
	if err := os.WriteFile(bp, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	bl, err := Open(bp, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	if _, err := bl.Member(fmt.Sprintf("m%d", saleLogMaxPending)); err != nil {
		t.Fatalf("the backup lacks the last enrolment: %v", err)
	}
}

func fileTxID(t *testing.T, l *Ledger) int {
	t.Helper()
	id := 0
	if err := l.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSaleLogStaleCycleAfterRestoredBackup: a ledger restored from its own
// backup reuses the bbolt transaction ids (and keeps the incarnation) of
// the timeline it replaced, and the log beside it still holds records of
// that timeline's cycles. After a crash of the restored ledger, none of
// them is applied (a sale the restore discarded would come back and the
// ledger fail Check): every commit writes a random commit id
// (stateID), and every Open a new one, so no cycle of the new timeline
// continues the state one of the old did.
func TestSaleLogStaleCycleAfterRestoredBackup(t *testing.T) {
	t.Run("after a crash", func(t *testing.T) { saleLogStaleCycle(t, false) })
	t.Run("after a clean stop", func(t *testing.T) { saleLogStaleCycle(t, true) })
}

func saleLogStaleCycle(t *testing.T, clean bool) {
	ctx := context.Background()
	clk := &stepClock{t: time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC), step: time.Second} // (every time written the same length)
	opts := func() *Options {
		return &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour, Clock: clk}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "l.db")
	l, err := Open(path, opts())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"m0", "m1", "m2"} {
		if _, err := l.Enrol(ctx, Member{ID: m}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a1", "a2", "a3", "a4"} { // sequence numbers in the 20s from here on
		if _, err := l.RecordSale(ctx, typicalSale(id, 2)); err != nil {
			t.Fatal(err)
		}
	}
	var backup bytes.Buffer
	if _, err := l.Backup(&backup); err != nil { // checkpoint: the file at txid T
		t.Fatal(err)
	}
	// Timeline X: cycle T (a sale of m1), checkpoint (T+1), cycle T+1: x6, x7.
	if _, err := l.RecordSale(ctx, typicalSale("x4", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Backup(io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"x6", "x7"} {
		if _, err := l.RecordSale(ctx, typicalSale(id, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Crash of X (its log as it is now), or a clean stop (the log as
	// Close leaves it: spent).
	xlog, err := os.ReadFile(saleLogName(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if clean {
		if xlog, err = os.ReadFile(saleLogName(path)); err != nil {
			t.Fatal(err)
		}
	}

	// The backup restored over the ledger, beside X's log (as after the
	// crash): the log does not continue it, so nothing is applied.
	rdir := t.TempDir()
	rpath := filepath.Join(rdir, "l.db")
	if err := os.WriteFile(rpath, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(saleLogName(rpath), xlog, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(rpath, opts())
	if err != nil {
		t.Fatal(err)
	}
	// Timeline Y: a small batch in cycle T (does not reach x7's record),
	// checkpoint (T+1 again), then y6: the same size as x6.
	if _, err := r.SetConsent(ctx, "m1", Consent{Given: true, Channel: "in-store"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RecordSale(ctx, typicalSale("y6", 0)); err != nil {
		t.Fatal(err)
	}
	// Crash of Y: the file and the log as they are now.
	cpath := crashCopy(t, rpath)
	r.Close()

	c, err := Open(cpath, opts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Sale("y6"); err != nil {
		t.Fatalf("y6, acknowledged on the restored ledger: %v", err)
	}
	if _, err := c.Sale("x7"); !errors.Is(err, ErrUnknownSale) {
		t.Errorf("x7, a sale of the timeline the restore replaced, is in the restored ledger after its crash: %v", err)
	}
	if err := c.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestSaleLogRestartFromRestoredState: the same file state continued by
// two runs. A backup restored after a clean stop is the state an earlier
// cycle continued (x4, x5, its records in the log's first two blocks,
// the first since overwritten and spent). A run of the restored ledger
// that logs one record and crashes must not pick up the old cycle's
// second record (x5) after its own: each Open writes a new commit id, so
// the run's cycles continue a state no earlier run did.
func TestSaleLogRestartFromRestoredState(t *testing.T) {
	ctx := context.Background()
	clk := &stepClock{t: time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC), step: time.Second}
	opts := func() *Options {
		return &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour, Clock: clk}
	}
	path := filepath.Join(t.TempDir(), "l.db")
	l, err := Open(path, opts())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"m0", "m1"} {
		if _, err := l.Enrol(ctx, Member{ID: m}); err != nil {
			t.Fatal(err)
		}
	}
	var backup bytes.Buffer
	if _, err := l.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"x4", "x5"} { // the cycle continuing the backup's state
		if _, err := l.RecordSale(ctx, typicalSale(id, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Backup(io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, typicalSale("x6", 0)); err != nil { // block 0 again
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // spends block 0
		t.Fatal(err)
	}
	rpath := filepath.Join(t.TempDir(), "l.db")
	if err := os.WriteFile(rpath, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	copyFile(t, saleLogName(path), saleLogName(rpath))
	r, err := Open(rpath, opts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RecordSale(ctx, typicalSale("y4", 1)); err != nil {
		t.Fatal(err)
	}
	cpath := crashCopy(t, rpath)
	r.Close()
	c, err := Open(cpath, opts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Sale("y4"); err != nil {
		t.Fatalf("y4, acknowledged on the restored ledger: %v", err)
	}
	for _, id := range []string{"x4", "x5", "x6"} {
		if _, err := c.Sale(id); !errors.Is(err, ErrUnknownSale) {
			t.Errorf("%s, a sale of the timeline the restore replaced, is in the restored ledger after its crash: %v", id, err)
		}
	}
	if err := c.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestSaleLogDamagedFileIsCorrupt: a ledger whose root page is damaged is
// ErrCorrupt with NoSaleLog; with the sale log beside it (always there
// after the first Open), replaySaleLog reads the meta bucket outside
// init's recover and Open panics instead.
func TestSaleLogDamagedFileIsCorrupt(t *testing.T) {
	for _, noLog := range []bool{true, false} {
		t.Run(fmt.Sprintf("NoSaleLog=%v", noLog), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "l.db")
			l, err := Open(path, &Options{Register: "r1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.RecordSale(context.Background(), SaleRequest{ID: "s1", Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 5}}}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if noLog {
				os.Remove(saleLogName(path))
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// The current meta page (higher txid) and its root bucket page.
			meta := 0
			if binary.LittleEndian.Uint64(b[4096+64:]) > binary.LittleEndian.Uint64(b[64:]) {
				meta = 4096
			}
			root := binary.LittleEndian.Uint64(b[meta+32:])
			fh, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fh.WriteAt(bytes.Repeat([]byte{0xA5}, 64), int64(root)*4096+16); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("Open panicked on a damaged file (want ErrCorrupt): %v", p)
					}
				}()
				l, err := Open(path, &Options{Register: "r1"})
				if err == nil {
					l.Close()
					t.Fatal("opened a damaged file")
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("got %v, want ErrCorrupt", err)
				}
			}()
		})
	}
}

// TestSaleLogOtherRegisterUntouched: init promises "a file of another
// register is left untouched"; the sale log is applied (and spent) before
// that check.
func TestSaleLogOtherRegisterUntouched(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l.db")
	l, err := Open(path, &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.RecordSale(context.Background(), SaleRequest{ID: "s1", Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 5}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(context.Background(), SaleRequest{ID: "s2", Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 5}}}); err != nil {
		t.Fatal(err)
	}
	cpath := crashCopy(t, path)
	before, _ := os.ReadFile(cpath)
	_, err = Open(cpath, &Options{Register: "r2"})
	if !errors.Is(err, ErrOtherRegister) {
		t.Fatalf("got %v, want ErrOtherRegister", err)
	}
	after, _ := os.ReadFile(cpath)
	if !bytes.Equal(before, after) {
		t.Errorf("the refused file of another register was modified (the sale log was applied before the owner check)")
	}
}

// TestSaleLogApplyConfigRollback: the same without a crash: an op that
// fails half-way rolls back the open transaction, and the pending batches
// are written again from memory (puts only).
func TestSaleLogApplyConfigRollback(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l.db")
	l, err := Open(path, &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if err := l.PutCatalogue(ctx, 1, []Item{{SKU: "A", Name: "a", Price: 100}, {SKU: "B", Name: "b", Price: 200}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ApplyConfig(ctx, ConfigDoc{Version: 2, Catalogue: []Item{{SKU: "A", Name: "a", Price: 150}}}); err != nil {
		t.Fatal(err)
	}
	// An op that writes and then fails: its batch is rolled back.
	_, err = l.submit(ctx, func(w *wtx) (any, error) {
		w.put(bMeta, []byte("x"), []byte("y"))
		return nil, errors.New("half-way")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if it, err := l.Item("B"); !errors.Is(err, ErrUnknownItem) {
		t.Errorf("after a rolled-back op: item B, removed by catalogue 2, is back: %+v, %v", it, err)
	}
}

// update writes into the file directly (a test damaging or rewriting
// rows), after a checkpoint, on the committer: bbolt has one writer, and
// the committer holds it while batches are pending.
func (l *Ledger) update(fn func(*bolt.Tx) error) error {
	return l.exclusive(func() error { return l.db.Update(fn) })
}

// TestSaleLogRestoredBackupTornAppend: a backup taken at a checkpoint,
// two sales logged in the cycle that continues it and checkpointed; the
// next cycle's first append is torn by a power cut, and the operator
// restores the backup beside the log. The torn record names its own
// cycle: the backup's cycle ended there, and the backup opens (before,
// its second record read as proof that the first was damaged: ErrCorrupt,
// and loyaltyd would not start).
func TestSaleLogRestoredBackupTornAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l.db")
	l, err := Open(path, &Options{Register: "r1", Engine: benchEngine{}, SaleLogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Enrol(ctx, Member{ID: "m0"}); err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if _, err := l.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s1", "s2"} {
		if _, err := l.RecordSale(ctx, typicalSale(id, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.exclusive(nil); err != nil { // checkpoint
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, typicalSale("s3", 0)); err != nil {
		t.Fatal(err)
	}
	logb, err := os.ReadFile(saleLogName(path))
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	logb[slHeader+10] ^= 0xff // s3's append torn: never answered in reality
	rdir := t.TempDir()
	rpath := filepath.Join(rdir, "l.db")
	if err := os.WriteFile(rpath, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(saleLogName(rpath), logb, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(rpath, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatalf("restored backup refused: %v", err)
	}
	defer r.Close()
	for _, id := range []string{"s1", "s2", "s3"} {
		if _, err := r.Sale(id); !errors.Is(err, ErrUnknownSale) {
			t.Errorf("%s after restoring the backup taken before it: %v", id, err)
		}
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}
