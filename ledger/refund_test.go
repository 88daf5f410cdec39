package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// saleOf3 records a sale of 3 units at 1000 (30 points) plus one unit at
// 700 (7 points) for m1.
func saleOf3(t *testing.T, f *fixture, id string) ledger.SaleResult {
	return f.sale(t, ledger.SaleRequest{ID: id, MemberID: "m1", HQReachable: true, Lines: []ledger.Line{
		{No: 1, SKU: "A", Quantity: 3, UnitPrice: 1000},
		{No: 2, SKU: "B", Quantity: 1, UnitPrice: 700},
	}})
}

func TestRefundPartialSequences(t *testing.T) {
	cases := []struct {
		name     string
		earnPer  int64 // PerPoint of the engine
		refunds  [][]ledger.RefundLine
		reversed []ledger.Points // points reversed by each refund
		amounts  []ledger.Money
	}{
		{"whole sale", 100, [][]ledger.RefundLine{nil}, []ledger.Points{37}, []ledger.Money{3700}},
		{"one unit at a time", 100, [][]ledger.RefundLine{{{No: 1, Quantity: 1}}, {{No: 1, Quantity: 1}}, {{No: 1, Quantity: 1}}, {{No: 2, Quantity: 1}}}, []ledger.Points{10, 10, 10, 7}, []ledger.Money{1000, 1000, 1000, 700}},
		// 3 units earning 10 points (per 300): floor(10/3)=3, floor(20/3)=6 (3 more), last gets 4.
		{"rounding never exceeds what was earned", 300, [][]ledger.RefundLine{{{No: 1, Quantity: 1}}, {{No: 1, Quantity: 1}}, {{No: 1, Quantity: 1}, {No: 2, Quantity: 1}}}, []ledger.Points{3, 3, 4 + 2}, []ledger.Money{1000, 1000, 1700}},
		{"two lines then the rest", 100, [][]ledger.RefundLine{{{No: 1, Quantity: 2}, {No: 2, Quantity: 1}}, nil}, []ledger.Points{27, 10}, []ledger.Money{2700, 1000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *ledger.Options) { e := testEngine(); e.PerPoint = tc.earnPer; o.Engine = e })
			f.enrol(t, "m1")
			s := saleOf3(t, f, "s1")
			var total ledger.Points
			for i, lines := range tc.refunds {
				res, err := f.l.Refund(context.Background(), ledger.RefundRequest{ID: "rf" + fmtUint(uint64(i)), SaleID: "s1", Lines: lines})
				if err != nil {
					t.Fatalf("refund %d: %v", i, err)
				}
				if -res.Earned != tc.reversed[i] || res.Refund.Amount != tc.amounts[i] {
					t.Fatalf("refund %d reversed %d amount %d, want %d %d", i, -res.Earned, res.Refund.Amount, tc.reversed[i], tc.amounts[i])
				}
				total += -res.Earned
			}
			if total != s.Earned || f.balance(t, "m1") != 0 || f.sumEvents(t, "m1") != 0 {
				t.Fatalf("reversed %d of %d, balance %d", total, s.Earned, f.balance(t, "m1"))
			}
			_, err := f.l.Refund(context.Background(), ledger.RefundRequest{ID: "more", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 1}}})
			if !errors.Is(err, ledger.ErrRefundExceeds) {
				t.Fatalf("refund after everything refunded: %v", err)
			}
		})
	}
}

func TestRefundRetryAndBadInput(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.enrol(t, "m1")
	saleOf3(t, f, "s1")
	req := ledger.RefundRequest{ID: "rf1", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 2}}}
	first, err := f.l.Refund(ctx, req)
	if err != nil || first.Earned != -20 {
		t.Fatalf("refund: %+v %v", first, err)
	}
	f.reopen(t)
	again, err := f.l.Refund(ctx, req)
	if err != nil || !again.Replayed || again.Earned != -20 || f.balance(t, "m1") != 17 {
		t.Fatalf("retried refund: %+v %v balance %d", again, err, f.balance(t, "m1"))
	}
	cases := []struct {
		name string
		req  ledger.RefundRequest
		want error
	}{
		{"same refund id other lines", ledger.RefundRequest{ID: "rf1", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 1}}}, ledger.ErrConflict},
		{"beyond what is left", ledger.RefundRequest{ID: "rf2", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 2}}}, ledger.ErrRefundExceeds},
		{"beyond what was sold", ledger.RefundRequest{ID: "rf2", SaleID: "s1", Lines: []ledger.RefundLine{{No: 2, Quantity: 5}}}, ledger.ErrRefundExceeds},
		{"unknown line", ledger.RefundRequest{ID: "rf2", SaleID: "s1", Lines: []ledger.RefundLine{{No: 9, Quantity: 1}}}, ledger.ErrInvalid},
		{"zero quantity", ledger.RefundRequest{ID: "rf2", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 0}}}, ledger.ErrInvalid},
		{"negative quantity", ledger.RefundRequest{ID: "rf2", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: -1}}}, ledger.ErrInvalid},
		{"line twice", ledger.RefundRequest{ID: "rf2", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 1}, {No: 1, Quantity: 1}}}, ledger.ErrInvalid},
		{"unknown sale", ledger.RefundRequest{ID: "rf2", SaleID: "nope"}, ledger.ErrUnknownSale},
		{"empty id", ledger.RefundRequest{SaleID: "s1"}, ledger.ErrInvalid},
	}
	pending, _, _ := f.l.OutboxStats()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.l.Refund(ctx, tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
			if p, _, _ := f.l.OutboxStats(); p != pending || f.balance(t, "m1") != 17 {
				t.Fatalf("bad refund changed the ledger")
			}
		})
	}
	// Void takes the rest; a second void id finds nothing left.
	v, err := f.l.Void(ctx, "v1", "s1", "customer changed mind")
	if err != nil || v.Earned != -17 || v.Refund == nil || !v.Refund.Void {
		t.Fatalf("void %+v %v", v, err)
	}
	if _, err := f.l.Void(ctx, "v2", "s1", "again"); !errors.Is(err, ledger.ErrRefundExceeds) {
		t.Fatalf("second void: %v", err)
	}
	if r, err := f.l.Void(ctx, "v1", "s1", "customer changed mind"); err != nil || !r.Replayed {
		t.Fatalf("void retry: %+v %v", r, err)
	}
	ps, _ := f.l.Purchases("m1")
	var net ledger.Money
	for _, p := range ps {
		net += p.Amount
	}
	if len(ps) != 3 || net != 0 {
		t.Fatalf("purchase index after refund and void: %+v", ps)
	}
}

func TestRefundGivesBackRedeemedPointsOnce(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.enrol(t, "m1")
	f.sale(t, ledger.SaleRequest{ID: "s0", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 10000}}}) // 100 pts
	s := f.sale(t, ledger.SaleRequest{ID: "s1", MemberID: "m1", HQReachable: true,
		Lines:       []ledger.Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 1000}},
		Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}})
	if s.Redeemed != 50 || s.Sale.Total != 1700 || s.Balance != 100-50+20 {
		t.Fatalf("sale with redemption: %+v", s)
	}
	r1, err := f.l.Refund(ctx, ledger.RefundRequest{ID: "r1", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 1}}})
	if err != nil || r1.Redeemed != 0 || r1.Earned != -10 {
		t.Fatalf("partial refund must not give back yet: %+v %v", r1, err)
	}
	r2, err := f.l.Refund(ctx, ledger.RefundRequest{ID: "r2", SaleID: "s1"})
	if err != nil || r2.Redeemed != -50 || r2.Earned != -10 || r2.Balance != 100 {
		t.Fatalf("last refund gives back the 50 points: %+v %v", r2, err)
	}
	if got := r1.Refund.Amount + r2.Refund.Amount; got != s.Sale.Total {
		t.Fatalf("refunds returned %d, customer paid %d", got, s.Sale.Total)
	}
	if r, _ := f.l.Refund(ctx, ledger.RefundRequest{ID: "r2", SaleID: "s1"}); !r.Replayed || f.balance(t, "m1") != 100 {
		t.Fatalf("retry gave back twice: balance %d", f.balance(t, "m1"))
	}
}

func TestOfflineRedeemLimit(t *testing.T) {
	f := newFixture(t, func(o *ledger.Options) { o.OfflineRedeemLimit = 100 })
	ctx := context.Background()
	f.enrol(t, "m1")
	f.sale(t, ledger.SaleRequest{ID: "s0", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 100000}}}) // 1000 pts
	redeem := func(id string, online bool) error {
		_, err := f.l.RecordSale(ctx, ledger.SaleRequest{ID: id, MemberID: "m1", HQReachable: online,
			Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1000}}, Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}})
		return err
	}
	steps := []struct {
		name   string
		online bool
		want   error
	}{
		{"first offline 50", false, nil},
		{"second offline 50 reaches the limit", false, nil},
		{"third offline refused", false, ledger.ErrOfflineLimit},
		{"online is not limited", true, nil},
	}
	for i, st := range steps {
		if err := redeem("r"+fmtUint(uint64(i)), st.online); !errors.Is(err, st.want) {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	// A head-office summary that covers the offline redemptions frees the
	// allowance.
	stats, _ := f.l.Stats()
	if err := f.l.ApplyMemberSummary(ctx, ledger.MemberSummary{Member: ledger.Member{ID: "m1"}, Balance: 5000, Covered: stats.LastSeq, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := redeem("r9", false); err != nil {
		t.Fatalf("after summary: %v", err)
	}
}
