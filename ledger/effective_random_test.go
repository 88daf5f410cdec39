package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// TestEffectiveBalanceRandom: random sales (online and offline, some
// redeeming), refunds, adjustments, head-office summaries (newer and
// older, covering any seq so far), expiry, untrusted clocks, confirmations
// and reopens; after every step each member's Balance is head office's
// balance plus this register's events after the seq it covered (or the
// local sum), from the member's statement, whatever schema 9's summary
// base says; Check passes at the end.
func TestEffectiveBalanceRandom(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { t.Parallel(); effectiveRandom(t, rand.New(rand.NewPCG(seed, 7)), 400) })
	}
}

func effectiveRandom(t *testing.T, rng *rand.Rand, steps int) {
	f := newFixture(t, func(o *ledger.Options) { o.OfflineRedeemLimit = 120 })
	ctx := context.Background()
	members := []string{"m0", "m1", "m2"}
	for _, m := range members {
		f.enrol(t, m, "card-"+m)
	}
	version := map[string]uint64{}
	var sales []string
	ok := func(err error) bool {
		for _, e := range []error{ledger.ErrInsufficient, ledger.ErrOfflineLimit, ledger.ErrRefundExceeds, ledger.ErrClockUntrusted, ledger.ErrInvalid, ledger.ErrRewardExceedsSale, ledger.ErrClockFault} {
			if errors.Is(err, e) {
				return true
			}
		}
		return err == nil
	}
	check := func(i int, what string) {
		for _, m := range members {
			st, err := f.l.Statement(m)
			if err != nil {
				t.Fatal(err)
			}
			want := st.Local
			if st.HQBalance != nil {
				want = *st.HQBalance
				for _, ln := range st.Lines {
					if ln.Seq > st.HQCovered {
						want += ln.Points
					}
				}
			}
			if st.Balance != want {
				t.Fatalf("step %d (%s) %s: Balance %d, summary formula %d (hq %v covered %d)", i, what, m, st.Balance, want, st.HQBalance, st.HQCovered)
			}
		}
	}
	for i := range steps {
		what := ""
		switch k := rng.IntN(100); {
		case k < 35:
			what = "sale"
			req := ledger.SaleRequest{ID: fmt.Sprintf("s%d", i), HQReachable: rng.IntN(2) == 0, MemberID: members[rng.IntN(len(members))]}
			for n := range 1 + rng.IntN(3) {
				req.Lines = append(req.Lines, ledger.Line{No: n + 1, SKU: fmt.Sprintf("k%d", rng.IntN(9)), Quantity: 1 + rng.Int64N(3), UnitPrice: 1 + ledger.Money(rng.Int64N(5000))})
			}
			if rng.IntN(4) == 0 {
				req.Redemptions = []ledger.RedeemRequest{{RewardID: "coffee"}}
			}
			if _, err := f.l.RecordSale(ctx, req); !ok(err) {
				t.Fatalf("step %d sale: %v", i, err)
			} else if err == nil {
				sales = append(sales, req.ID)
			}
		case k < 50 && len(sales) > 0:
			what = "refund"
			if _, err := f.l.Refund(ctx, ledger.RefundRequest{ID: fmt.Sprintf("rf%d", i), SaleID: sales[rng.IntN(len(sales))]}); !ok(err) {
				t.Fatalf("step %d refund: %v", i, err)
			}
		case k < 60:
			what = "adjust"
			pts := ledger.Points(rng.Int64N(200) - 100)
			if pts == 0 {
				pts = 1
			}
			if _, err := f.l.Adjust(ctx, fmt.Sprintf("a%d", i), members[rng.IntN(len(members))], pts, "random", "op"); !ok(err) {
				t.Fatalf("step %d adjust: %v", i, err)
			}
		case k < 80:
			what = "summary"
			st, _ := f.l.Stats()
			m := members[rng.IntN(len(members))]
			version[m]++
			s := ledger.MemberSummary{Member: ledger.Member{ID: m, Aliases: []string{"card-" + m}}, Balance: ledger.Points(rng.Int64N(1000)), Covered: rng.Uint64N(st.LastSeq + 1), Version: version[m]}
			if rng.IntN(6) == 0 && version[m] > 1 {
				s.Version = version[m] - 1 // an older one: ignored
			}
			if err := f.l.ApplyMemberSummary(ctx, s); err != nil {
				t.Fatalf("step %d summary: %v", i, err)
			}
		case k < 86:
			what = "expire"
			f.clock.Advance(time.Duration(rng.IntN(120)) * 24 * time.Hour)
			if _, err := f.l.ExpireDue(ctx); !ok(err) {
				t.Fatalf("step %d expire: %v", i, err)
			}
		case k < 90:
			what = "untrusted"
			now, _ := f.clock.Now()
			f.clock.Set(now, rng.IntN(2) == 0)
			if _, err := f.l.CorrectTimes(ctx); err != nil && !ok(err) {
				t.Fatalf("step %d correct: %v", i, err)
			}
		case k < 94:
			what = "confirm"
			st, _ := f.l.Stats()
			_ = f.l.Confirm(rng.Uint64N(st.LastSeq + 1))
		case k < 97:
			what = "reopen"
			f.reopen(t)
		}
		check(i, what)
	}
	if err := f.l.Check(); err != nil {
		t.Fatal(err)
	}
}
