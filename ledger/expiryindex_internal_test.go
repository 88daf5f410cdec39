package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// indexEntries lists the expiry index: member -> time of its entry.
func indexEntries(t *testing.T, l *Ledger) map[string]time.Time {
	t.Helper()
	got := map[string]time.Time{}
	err := l.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRows).Cursor()
		for k, _ := c.Seek([]byte{0}); k != nil && k[0] == 0; k, _ = c.Next() {
			at, ok := indexedExpiry(tx.Bucket(bRows), string(k[9:]))
			if !ok {
				t.Errorf("index entry %q without the member's row", k)
			}
			got[string(k[9:])] = at
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestExpiryIndexPerMember: the index holds one entry per member at its
// earliest expiry; a later sale of the member writes no entry (the sale
// leaves the index's leaf alone); a redemption that uses the earliest lot
// up leaves the entry early, and ExpireDue, finding nothing due there,
// moves it to the next lot's expiry.
func TestExpiryIndexPerMember(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clk := &settableClock{t: t0}
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Engine: expiryEngine{}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for _, m := range []string{"m1", "m2"} {
		if _, err := l.Enrol(ctx, Member{ID: m}); err != nil {
			t.Fatal(err)
		}
	}
	sale := func(id, member string, amount Money, redeem bool) {
		t.Helper()
		req := SaleRequest{ID: id, MemberID: member, HQReachable: true, Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: amount}}}
		if redeem {
			req.Redemptions = []RedeemRequest{{RewardID: "r100"}}
		}
		if _, err := l.RecordSale(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	sale("a", "m1", 10000, false) // 100 points expiring t0+30d
	first := t0.AddDate(0, 0, 30)
	if got := indexEntries(t, l); len(got) != 1 || !got["m1"].Equal(first) {
		t.Fatalf("index after the first sale: %v", got)
	}
	clk.set(t0.Add(24 * time.Hour))
	sale("b", "m1", 5000, false) // 50 points expiring t0+31d: no index write
	if got := indexEntries(t, l); len(got) != 1 || !got["m1"].Equal(first) {
		t.Fatalf("index after the second sale: %v", got)
	}
	sale("c", "m2", 2000, false)
	sale("d", "m1", 100, true) // redeems 100: the first lot is used up
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	if got := indexEntries(t, l); len(got) != 2 || !got["m1"].Equal(first) {
		t.Fatalf("index after the redemption: %v", got)
	}
	clk.set(first.Add(time.Hour))
	n, err := l.ExpireDue(ctx)
	if err != nil || n != 0 {
		t.Fatalf("expire at the stale entry: %d %v", n, err)
	}
	if got := indexEntries(t, l); !got["m1"].Equal(t0.Add(24*time.Hour).AddDate(0, 0, 30)) {
		t.Fatalf("index after the stale entry was visited: %v", got)
	}
	clk.set(t0.AddDate(0, 0, 40))
	if n, err = l.ExpireDue(ctx); err != nil || n != 3 { // m1: b and d's earn; m2: c
		t.Fatalf("expire: %d %v", n, err)
	}
	if got := indexEntries(t, l); len(got) != 0 {
		t.Fatalf("index after everything expired: %v", got)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
}

type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() (time.Time, bool) { c.mu.Lock(); defer c.mu.Unlock(); return c.t, true }
func (c *settableClock) set(t time.Time)        { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// expiryEngine: a point per 100 minor units, expiring 30 days after the
// sale; reward r100 costs 100 points.
type expiryEngine struct{}

func (expiryEngine) RuleVersion() int { return 1 }
func (expiryEngine) Evaluate(in rules.SaleInput) (rules.Outcome, error) {
	out := rules.Outcome{ExpiresAt: in.At.AddDate(0, 0, 30)}
	for _, ln := range in.Lines {
		out.Lines = append(out.Lines, rules.LinePoints{No: ln.No, Points: ln.Amount / 100})
	}
	return out, nil
}
func (expiryEngine) Reward(id string) (rules.Reward, bool) {
	return rules.Reward{ID: id, Points: 100}, id == "r100"
}
func (expiryEngine) ExpiryFor(t time.Time) time.Time { return t.AddDate(0, 0, 30) }

// TestExpireDuePastStaleEntries: a round that meets only entries left
// early (more of them than one round visits) does not end ExpireDue
// while a lot due behind them waits.
func TestExpireDuePastStaleEntries(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clk := &settableClock{t: t0}
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), &Options{Register: "r1", Engine: expiryEngine{}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	// expireBatch+1 members whose entries name no lot any more (as a
	// redemption that used their lots up leaves them), due before m-last.
	_, err = l.submit(ctx, func(w *wtx) (any, error) {
		for i := range expireBatch + 1 {
			id := fmt.Sprintf("a%05d", i)
			w.saveMember(&memberRec{Member: Member{ID: id}})
			w.delta.Members++
			w.setExpiryIndex(id, t0.AddDate(0, 0, 29))
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Enrol(ctx, Member{ID: "m-last"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, SaleRequest{ID: "s", MemberID: "m-last", HQReachable: true, Lines: []Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1000}}}); err != nil {
		t.Fatal(err)
	}
	clk.set(t0.AddDate(0, 0, 31))
	if n, err := l.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("expired %d lots (%v), want m-last's one", n, err)
	}
	if b, err := l.LocalBalance("m-last"); err != nil || b != 0 {
		t.Fatalf("m-last's balance %d %v", b, err)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
}
