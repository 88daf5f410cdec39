package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// TestRandomOperationSequences runs seeded random mixes of every operation
// (with restarts) and then checks that Check passes, that every balance
// equals the sum of its events, and that retrying any operation returns
// its first result. Each run draws new seeds and logs them; TEST_SEED=n
// runs the one seed n (go test ./ledger -run Random, with TEST_SEED=n in
// the environment).
func TestRandomOperationSequences(t *testing.T) {
	t.Parallel()
	seeds, steps := 4, 300
	if *long {
		seeds, steps = 20, 3000
	}
	base, fixed := testkit.Seed(t)
	if fixed {
		seeds = 1
	}
	for s := range seeds {
		seed := base + uint64(s)
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			t.Logf("seed %d (replay: %s=%d go test ./ledger -run Random)", seed, testkit.SeedEnv, seed)
			randomSequence(t, rand.New(rand.NewPCG(seed, 1)), steps)
		})
	}
}

func randomSequence(t *testing.T, rng *rand.Rand, steps int) {
	f := newFixture(t, func(o *ledger.Options) { o.OfflineRedeemLimit = 120 })
	ctx := context.Background()
	members := []string{"m0", "m1", "m2", "m3"}
	for _, m := range members {
		f.enrol(t, m, "card-"+m)
	}
	var sales []string
	type done struct {
		kind string
		sale ledger.SaleRequest
		ref  ledger.RefundRequest
		res  ledger.SaleResult
	}
	var history []done
	allowed := func(err error) bool {
		for _, e := range []error{ledger.ErrInsufficient, ledger.ErrOfflineLimit, ledger.ErrRefundExceeds, ledger.ErrClockUntrusted} {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
	for i := range steps {
		switch k := rng.IntN(100); {
		case k < 45:
			req := ledger.SaleRequest{ID: fmt.Sprintf("s%d", i), HQReachable: rng.IntN(2) == 0}
			if rng.IntN(5) > 0 {
				req.MemberID = members[rng.IntN(len(members))]
			}
			for n := range 1 + rng.IntN(4) {
				req.Lines = append(req.Lines, ledger.Line{No: n + 1, SKU: fmt.Sprintf("k%d", rng.IntN(9)), Quantity: 1 + rng.Int64N(5), UnitPrice: 1 + ledger.Money(rng.Int64N(5000)), Category: []string{"", "food", "toys"}[rng.IntN(3)]})
			}
			if req.MemberID != "" && rng.IntN(4) == 0 {
				req.Redemptions = []ledger.RedeemRequest{{RewardID: "coffee"}}
			}
			res, err := f.l.RecordSale(ctx, req)
			if err != nil && !allowed(err) && !errors.Is(err, ledger.ErrInvalid) && !errors.Is(err, ledger.ErrRewardExceedsSale) {
				t.Fatalf("step %d sale: %v", i, err)
			}
			if err == nil {
				sales = append(sales, req.ID)
				history = append(history, done{kind: "sale", sale: req, res: res})
			}
		case k < 65 && len(sales) > 0:
			saleID := sales[rng.IntN(len(sales))]
			s, err := f.l.Sale(saleID)
			if err != nil {
				t.Fatal(err)
			}
			req := ledger.RefundRequest{ID: fmt.Sprintf("rf%d", i), SaleID: saleID}
			if rng.IntN(3) > 0 {
				ln := s.Lines[rng.IntN(len(s.Lines))]
				req.Lines = []ledger.RefundLine{{No: ln.No, Quantity: 1 + rng.Int64N(ln.Quantity)}}
			}
			res, err := f.l.Refund(ctx, req)
			if err != nil && !allowed(err) {
				t.Fatalf("step %d refund: %v", i, err)
			}
			if err == nil {
				history = append(history, done{kind: "refund", ref: req, res: res})
			}
		case k < 70 && len(sales) > 0:
			if _, err := f.l.Void(ctx, fmt.Sprintf("v%d", i), sales[rng.IntN(len(sales))], "random"); err != nil && !allowed(err) {
				t.Fatalf("step %d void: %v", i, err)
			}
		case k < 78:
			pts := ledger.Points(rng.Int64N(200) - 100)
			if pts == 0 {
				pts = 1
			}
			if _, err := f.l.Adjust(ctx, fmt.Sprintf("a%d", i), members[rng.IntN(len(members))], pts, "random", "op"); err != nil && !allowed(err) {
				t.Fatalf("step %d adjust: %v", i, err)
			}
		case k < 83:
			f.clock.Advance(time.Duration(rng.IntN(90)) * 24 * time.Hour)
			if _, err := f.l.ExpireDue(ctx); err != nil {
				t.Fatalf("step %d expire: %v", i, err)
			}
		case k < 86:
			if _, err := f.l.SetConsent(ctx, members[rng.IntN(len(members))], ledger.Consent{Given: rng.IntN(2) == 0, Channel: "in-store"}); err != nil {
				t.Fatalf("step %d consent: %v", i, err)
			}
		case k < 90:
			st, _ := f.l.Stats()
			if st.LastSeq > 0 {
				if err := f.l.Confirm(rng.Uint64N(st.LastSeq + 1)); err != nil {
					t.Fatalf("step %d confirm: %v", i, err)
				}
			}
		case k < 92:
			f.reopen(t)
		}
	}
	if err := f.l.Check(); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if b, s := f.balance(t, m), f.sumEvents(t, m); b != s {
			t.Fatalf("%s: balance %d, events sum %d", m, b, s)
		}
		// Refunds never give back more money than a sale took.
		ps, err := f.l.Purchases(m)
		if err != nil {
			t.Fatal(err)
		}
		net := map[string]ledger.Money{}
		for _, p := range ps {
			net[p.SaleID] += p.Amount
		}
		for id, n := range net {
			if n < 0 {
				t.Fatalf("%s: sale %s refunded %d more than it took", m, id, -n)
			}
		}
	}
	for _, h := range history {
		var again ledger.SaleResult
		var err error
		if h.kind == "sale" {
			again, err = f.l.RecordSale(ctx, h.sale)
		} else {
			again, err = f.l.Refund(ctx, h.ref)
		}
		if err != nil || !again.Replayed || again.Earned != h.res.Earned || again.Balance != h.res.Balance || len(again.Events) != len(h.res.Events) {
			t.Fatalf("retry of %s %s%s: %+v %v, first %+v", h.kind, h.sale.ID, h.ref.ID, again, err, h.res)
		}
	}
	_, _ = ledger.OutboxIntoMatches(t, f.l)
	if err := f.l.Check(); err != nil {
		t.Fatal(err)
	}
}

// panicky is an engine that panics on SKU "boom": the op fails, the others
// of its batch are retried in a fresh transaction and still commit.
type panicky struct{ ledger.Engine }

func (p panicky) Evaluate(in rules.SaleInput) (rules.Outcome, error) {
	for _, ln := range in.Lines {
		if ln.SKU == "boom" {
			panic("boom")
		}
	}
	return p.Engine.Evaluate(in)
}

func TestGroupCommitConcurrentCallers(t *testing.T) {
	f := newFixture(t, func(o *ledger.Options) { o.Engine = panicky{testEngine()} })
	f.enrol(t, "m1")
	ctx := context.Background()
	const callers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for g := range callers {
		wg.Go(func() {
			for n := range each {
				id := fmt.Sprintf("g%d-%d", g, n)
				req := ledger.SaleRequest{ID: id, MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 1, UnitPrice: 100}}}
				bad := n%7 == 3
				boom := n%7 == 5
				switch {
				case bad:
					req.Lines[0].Quantity = 0
				case boom:
					req.Lines[0].SKU = "boom"
				}
				_, err := f.l.RecordSale(ctx, req)
				switch {
				case bad && !errors.Is(err, ledger.ErrInvalid):
					errs <- fmt.Errorf("%s: invalid sale gave %v", id, err)
				case boom && err == nil:
					errs <- fmt.Errorf("%s: panicking op succeeded", id)
				case !bad && !boom && err != nil:
					errs <- fmt.Errorf("%s: %w", id, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	good := 0
	for n := range each {
		if n%7 != 3 && n%7 != 5 {
			good++
		}
	}
	if b := f.balance(t, "m1"); b != ledger.Points(callers*good) {
		t.Fatalf("balance %d, want %d", b, callers*good)
	}
	if err := f.l.Check(); err != nil {
		t.Fatal(err)
	}
}
