package ledger_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func testEngine() *ledgertest.Engine {
	return &ledgertest.Engine{
		Version: 1, PerPoint: 100, ExpiryMonths: 12,
		Rewards: []rules.Reward{{ID: "coffee", Name: "Free coffee", Points: 50, Discount: 300}, {ID: "big", Points: 1000, Discount: 100}},
	}
}

type fixture struct {
	l     *ledger.Ledger
	clock *ledgertest.Clock
	path  string
	opts  *ledger.Options
}

func newFixture(t *testing.T, mod func(*ledger.Options)) *fixture {
	t.Helper()
	clock := ledgertest.NewClock(t0, true)
	opts := &ledger.Options{Register: "r1", Clock: clock, Engine: testEngine(), OfflineRedeemLimit: 100}
	if mod != nil {
		mod(opts)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	return &fixture{l: ledgertest.OpenAt(t, path, opts), clock: clock, path: path, opts: opts}
}

// reopen closes and reopens the ledger file (a daemon restart).
func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	f.l = ledgertest.OpenAt(t, f.path, f.opts)
}

func (f *fixture) enrol(t *testing.T, id string, aliases ...string) {
	t.Helper()
	if _, err := f.l.Enrol(context.Background(), ledger.Member{ID: id, Name: "M " + id, Aliases: aliases}); err != nil {
		t.Fatalf("enrol %s: %v", id, err)
	}
}

func (f *fixture) sale(t *testing.T, req ledger.SaleRequest) ledger.SaleResult {
	t.Helper()
	if req.Lines == nil {
		req.Lines = []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1000}}
	}
	res, err := f.l.RecordSale(context.Background(), req)
	if err != nil {
		t.Fatalf("sale %s: %v", req.ID, err)
	}
	return res
}

func (f *fixture) balance(t *testing.T, id string) ledger.Points {
	t.Helper()
	b, err := f.l.Balance(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sumEvents checks that the balance equals the sum of the member's events.
func (f *fixture) sumEvents(t *testing.T, id string) ledger.Points {
	t.Helper()
	evs, err := f.l.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	var s ledger.Points
	for _, e := range evs {
		s += e.Points
	}
	return s
}

func TestRecordSaleEarnsAndReplays(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.enrol(t, "m1", "card-1")
	req := ledger.SaleRequest{ID: "s1", MemberID: "m1", Lines: []ledger.Line{
		{No: 1, SKU: "A", Quantity: 2, UnitPrice: 1250},
		{No: 2, SKU: "B", Quantity: 1, UnitPrice: 999, Discount: 99, Category: "food"},
	}, Tenders: []ledger.Tender{{Kind: "cash", Amount: 3400}}}
	first := f.sale(t, req)
	if first.Earned != 25+9 || first.Balance != 34 || first.Sale.Total != 3400 || first.Replayed {
		t.Fatalf("first result: earned %d balance %d total %d replayed %v", first.Earned, first.Balance, first.Sale.Total, first.Replayed)
	}
	if first.Sale.Seq == 0 || first.Sale.Register != "r1" || !first.Sale.ClockTrusted || !first.Sale.WallTime.Equal(t0) || first.Sale.RuleVersion != 1 {
		t.Fatalf("sale fields: %+v", first.Sale)
	}
	for _, ev := range first.Events {
		if ev.SaleID != "s1" || ev.Line == 0 || ev.ID != "r1-"+itoa(ev.Seq) {
			t.Fatalf("event %+v", ev)
		}
	}
	again := f.sale(t, req)
	if !again.Replayed || again.Balance != 34 || again.Sale.Seq != first.Sale.Seq {
		t.Fatalf("replay: %+v", again)
	}
	f.reopen(t)
	req.HQReachable = true // not part of the content
	after := f.sale(t, req)
	if !after.Replayed || after.Earned != 34 || f.balance(t, "m1") != 34 || f.sumEvents(t, "m1") != 34 {
		t.Fatalf("replay after reopen: %+v balance %d", after, f.balance(t, "m1"))
	}
	changed := req
	changed.Lines = []ledger.Line{{No: 1, SKU: "A", Quantity: 3, UnitPrice: 1250}}
	if _, err := f.l.RecordSale(ctx, changed); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("same id other content: %v", err)
	}
	ps, err := f.l.Purchases("m1")
	if err != nil || len(ps) != 1 || ps[0].Amount != 3400 || ps[0].SaleID != "s1" || len(ps[0].Categories) != 1 {
		t.Fatalf("purchases %+v %v", ps, err)
	}
}

func itoa(u uint64) string { return fmtUint(u) }

func TestBadSalesChangeNothing(t *testing.T) {
	f := newFixture(t, nil)
	f.enrol(t, "m1")
	f.sale(t, ledger.SaleRequest{ID: "base", MemberID: "m1"}) // 10 points
	line := func(q int64, p ledger.Money) []ledger.Line {
		return []ledger.Line{{No: 1, SKU: "A", Quantity: q, UnitPrice: p}}
	}
	cases := []struct {
		name string
		req  ledger.SaleRequest
		want error
	}{
		{"empty id", ledger.SaleRequest{Lines: line(1, 100)}, ledger.ErrInvalid},
		{"no lines", ledger.SaleRequest{ID: "x"}, ledger.ErrInvalid},
		{"zero quantity", ledger.SaleRequest{ID: "x", Lines: line(0, 100)}, ledger.ErrInvalid},
		{"negative quantity", ledger.SaleRequest{ID: "x", Lines: line(-1, 100)}, ledger.ErrInvalid},
		{"zero price", ledger.SaleRequest{ID: "x", Lines: line(1, 0)}, ledger.ErrInvalid},
		{"negative price", ledger.SaleRequest{ID: "x", Lines: line(1, -5)}, ledger.ErrInvalid},
		{"quantity times price overflows", ledger.SaleRequest{ID: "x", Lines: line(math.MaxInt64/2, 3)}, ledger.ErrInvalid},
		{"sum overflows", ledger.SaleRequest{ID: "x", Lines: []ledger.Line{
			{No: 1, SKU: "A", Quantity: 1, UnitPrice: math.MaxInt64 - 1}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 2}}}, ledger.ErrInvalid},
		{"duplicate line numbers", ledger.SaleRequest{ID: "x", Lines: []ledger.Line{
			{No: 1, SKU: "A", Quantity: 1, UnitPrice: 1}, {No: 1, SKU: "B", Quantity: 1, UnitPrice: 2}}}, ledger.ErrInvalid},
		{"discount above amount", ledger.SaleRequest{ID: "x", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 100, Discount: 101}}}, ledger.ErrInvalid},
		{"negative discount", ledger.SaleRequest{ID: "x", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 100, Discount: -1}}}, ledger.ErrInvalid},
		{"tenders do not add up", ledger.SaleRequest{ID: "x", Lines: line(1, 100), Tenders: []ledger.Tender{{Kind: "cash", Amount: 99}}}, ledger.ErrInvalid},
		{"negative tender", ledger.SaleRequest{ID: "x", Lines: line(1, 100), Tenders: []ledger.Tender{{Kind: "cash", Amount: 200}, {Kind: "card", Amount: -100}}}, ledger.ErrInvalid},
		{"unknown member", ledger.SaleRequest{ID: "x", MemberID: "nobody", Lines: line(1, 100)}, ledger.ErrUnknownMember},
		{"redeem without member", ledger.SaleRequest{ID: "x", Lines: line(1, 1000), Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}}, ledger.ErrInvalid},
		{"unknown reward", ledger.SaleRequest{ID: "x", MemberID: "m1", Lines: line(1, 1000), Redemptions: []ledger.RedeemRequest{{RewardID: "nope"}}}, ledger.ErrUnknownReward},
		{"not enough points", ledger.SaleRequest{ID: "x", MemberID: "m1", HQReachable: true, Lines: line(1, 1000), Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}}, ledger.ErrInsufficient},
		{"discount above sale", ledger.SaleRequest{ID: "x", MemberID: "m1", HQReachable: true, Lines: line(1, 100), Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}}, ledger.ErrRewardExceedsSale},
		{"existing id other content", ledger.SaleRequest{ID: "base", MemberID: "m1", Lines: line(1, 999)}, ledger.ErrConflict},
	}
	before, _, _ := f.l.OutboxStats()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.l.RecordSale(context.Background(), tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			after, _, _ := f.l.OutboxStats()
			if after != before || f.balance(t, "m1") != 10 {
				t.Fatalf("bad input changed the ledger: outbox %d->%d balance %d", before, after, f.balance(t, "m1"))
			}
		})
	}
}

func ledgertestOpen(t *testing.T, f *fixture) *ledger.Ledger {
	return ledgertest.OpenAt(t, f.path, f.opts)
}

// TestSaleEarningNothingReplaysAlike: a member's sale whose lines earn no
// points gives the same events on its first result and on its replay
// (nil, no point event), as before a9c0fe5 sized the slice up front
// (found in review: an empty, non-nil slice first, nil on replay).
func TestSaleEarningNothingReplaysAlike(t *testing.T) {
	f := newFixture(t, nil)
	f.enrol(t, "m1", "card-1")
	req := ledger.SaleRequest{ID: "s0", MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 50}},
		Tenders: []ledger.Tender{{Kind: "cash", Amount: 50}}}
	first := f.sale(t, req)
	again := f.sale(t, req)
	if first.Earned != 0 || !again.Replayed {
		t.Fatalf("first earned %d, replayed %v: the case needs a sale that earns nothing", first.Earned, again.Replayed)
	}
	if !reflect.DeepEqual(first.Events, again.Events) {
		t.Fatalf("events %#v first, %#v on replay", first.Events, again.Events)
	}
}
