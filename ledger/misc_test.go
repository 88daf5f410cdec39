package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
)

func TestReadsOfUnknownThings(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"balance", func() error { _, err := f.l.Balance("x"); return err }, ledger.ErrUnknownMember},
		{"events", func() error { _, err := f.l.Events("x"); return err }, ledger.ErrUnknownMember},
		{"purchases", func() error { _, err := f.l.Purchases("x"); return err }, ledger.ErrUnknownMember},
		{"member", func() error { _, err := f.l.Member("x"); return err }, ledger.ErrUnknownMember},
		{"sale", func() error { _, err := f.l.Sale("x"); return err }, ledger.ErrUnknownSale},
		{"item", func() error { _, err := f.l.Item("x"); return err }, ledger.ErrUnknownItem},
		{"void", func() error { _, err := f.l.Void(context.Background(), "v", "x", "r"); return err }, ledger.ErrUnknownSale},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
		})
	}
}

func TestExportStatsAndClose(t *testing.T) {
	f := newFixture(t, nil)
	f.enrol(t, "m1", "c1")
	f.enrol(t, "m2")
	f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1"})
	f.sale(t, ledger.SaleRequest{ID: "s2"})
	var sales, members []string
	if err := f.l.ForEachSale(func(s ledger.Sale) error { sales = append(sales, s.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.l.ForEachMember(func(m ledger.Member) error { members = append(members, m.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(sales) != 2 || len(members) != 2 {
		t.Fatalf("export: %v %v", sales, members)
	}
	stop := errors.New("stop")
	if err := f.l.ForEachSale(func(ledger.Sale) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error not returned: %v", err)
	}
	st, err := f.l.Stats()
	if err != nil || st.Members != 2 || st.Sales != 2 || st.Events != 1 || st.LastSeq != 5 || st.OutboxPending != 5 || st.Commits == 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
	// A cancelled context before queueing writes nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.l.RecordSale(ctx, ledger.SaleRequest{ID: "s3", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1}}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := f.l.Sale("s3"); !errors.Is(err, ledger.ErrUnknownSale) {
		t.Fatalf("cancelled sale recorded: %v", err)
	}
	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.RecordSale(context.Background(), ledger.SaleRequest{ID: "s4", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1}}}); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if _, err := f.l.Balance("m1"); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := f.l.Close(); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// TestCloseWhileWriting: callers racing Close either get their sale
// recorded or ErrClosed, nobody hangs, and every success is on disk.
func TestCloseWhileWriting(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok []string
	for g := range 32 {
		wg.Go(func() {
			for n := 0; ; n++ {
				id := fmt.Sprintf("g%d-%d", g, n)
				_, err := f.l.RecordSale(ctx, ledger.SaleRequest{ID: id, Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1}}})
				if errors.Is(err, ledger.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ok = append(ok, id)
				n := len(ok)
				mu.Unlock()
				if n == 50 {
					go f.l.Close()
				}
			}
		})
	}
	wg.Wait()
	f.l = ledgertestOpen(t, f)
	for _, id := range ok {
		if _, err := f.l.Sale(id); err != nil {
			t.Fatalf("acknowledged %s lost: %v", id, err)
		}
	}
}
