package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	cdir := t.TempDir()
	cpath := filepath.Join(cdir, "l.db")
	copyFile(t, path, cpath)
	copyFile(t, saleLogName(path), saleLogName(cpath))

	c, err := Open(cpath, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := c.view(func(tx *bolt.Tx) error { got = dumpTx(t, tx); return nil }); err != nil {
		t.Fatal(err)
	}
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
		want []bool
	}{
		// The third record half written: its second half is what the
		// log held before (zeros).
		{"torn third", func(lg []byte) { clear(lg[ends[1]+(ends[2]-ends[1])/2 : ends[2]]) }, []bool{true, true, false}},
		// A byte of the second record's writes changed: its CRC fails.
		{"second changed", func(lg []byte) { lg[ends[0]+slHeader+3] ^= 0xff }, []bool{true, false, false}},
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
	crashed := t.TempDir()
	cpath := filepath.Join(crashed, "l.db")
	copyFile(t, path, cpath)
	copyFile(t, saleLogName(path), saleLogName(cpath))
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
// wait, and before a backup; a sale is acknowledged with one log append
// (no bbolt commit) in between.
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
