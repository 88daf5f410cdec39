package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

var sentinels = []error{ledger.ErrInvalid, ledger.ErrUnknownMember, ledger.ErrUnknownSale, ledger.ErrConflict,
	ledger.ErrInsufficient, ledger.ErrOfflineLimit, ledger.ErrRefundExceeds, ledger.ErrAliasTaken}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzOperations feeds requests decoded from outside bytes (as a daemon or
// the sync link would hand them over) to the ledger: every one either
// succeeds or fails with a documented sentinel and changes nothing, and
// the ledger stays consistent.
func FuzzOperations(f *testing.F) {
	seeds := []string{
		`{"op":"sale","sale":{"ID":"s1","MemberID":"m1","Lines":[{"no":1,"sku":"A","quantity":2,"unit_price":1000}]}}`,
		`{"op":"sale","sale":{"ID":"s2","MemberID":"m1","HQReachable":true,"Lines":[{"no":1,"sku":"A","quantity":1,"unit_price":9000}],"Redemptions":[{"RewardID":"coffee"}]}}`,
		`{"op":"sale","sale":{"ID":"s3","Lines":[{"no":1,"sku":"A","quantity":9223372036854775807,"unit_price":2}]}}`,
		`{"op":"sale","sale":{"ID":"s4","Lines":[{"no":1,"sku":"A","quantity":1,"unit_price":5}],"Tenders":[{"kind":"cash","amount":5}]}}`,
		`{"op":"refund","refund":{"ID":"r1","SaleID":"s1","Lines":[{"No":1,"Quantity":1}]}}`,
		`{"op":"refund","refund":{"ID":"r2","SaleID":"s1"}}`,
		`{"op":"summary","summary":{"member":{"id":"m2","aliases":["c2"]},"balance":40,"covered":1,"version":1}}`,
		`{"op":"adjust","adjust":{"ID":"a1","Member":"m1","Points":-5}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "fuzz.db")
	l := ledgertest.OpenAt(f, path, &ledger.Options{Engine: testEngine(), OfflineRedeemLimit: 100})
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1", Aliases: []string{"c1"}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in struct {
			Op      string
			Sale    ledger.SaleRequest
			Refund  ledger.RefundRequest
			Summary ledger.MemberSummary
			Adjust  struct {
				ID, Member string
				Points     ledger.Points
			}
		}
		if json.Unmarshal(data, &in) != nil {
			return
		}
		before, _, _ := l.OutboxStats()
		var err error
		switch in.Op {
		case "sale":
			_, err = l.RecordSale(ctx, in.Sale)
		case "refund":
			_, err = l.Refund(ctx, in.Refund)
		case "summary":
			err = l.ApplyMemberSummary(ctx, in.Summary)
		case "adjust":
			_, err = l.Adjust(ctx, in.Adjust.ID, in.Adjust.Member, in.Adjust.Points, "fuzz", "fuzz")
		default:
			return
		}
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("%s: error without a sentinel: %v", in.Op, err)
			}
			if after, _, _ := l.OutboxStats(); after != before {
				t.Fatalf("%s failed (%v) but wrote %d outbox records", in.Op, err, after-before)
			}
		}
		if err := l.Check(); err != nil {
			t.Fatal(err)
		}
	})
}
