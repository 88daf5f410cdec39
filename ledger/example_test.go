package ledger_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

func Example() {
	dir, _ := os.MkdirTemp("", "ledger-example")
	defer os.RemoveAll(dir)
	rs, err := rules.Decode([]byte(`{"version":1,"earn":{"points_per_unit":"1"},"rewards":[{"id":"coffee","name":"Coffee","points":20,"discount":300}]}`))
	if err != nil {
		panic(err)
	}
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), &ledger.Options{Register: "store1-r1", Rules: rs})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m-1", Name: "Dana", Aliases: []string{"card-0001"}}); err != nil {
		panic(err)
	}
	m, _ := l.LookupAlias("card-0001")
	res, err := l.RecordSale(ctx, ledger.SaleRequest{ID: "store1-r1-0001", MemberID: m.ID,
		Lines:   []ledger.Line{{No: 1, SKU: "7290000066318", Quantity: 2, UnitPrice: 1250}},
		Tenders: []ledger.Tender{{Kind: "cash", Amount: 2500}}})
	if err != nil {
		panic(err)
	}
	fmt.Println("earned", res.Earned, "balance", res.Balance)
	again, _ := l.RecordSale(ctx, ledger.SaleRequest{ID: "store1-r1-0001", MemberID: m.ID,
		Lines:   []ledger.Line{{No: 1, SKU: "7290000066318", Quantity: 2, UnitPrice: 1250}},
		Tenders: []ledger.Tender{{Kind: "cash", Amount: 2500}}})
	fmt.Println("retry replayed", again.Replayed, "balance", again.Balance)
	ref, _ := l.Refund(ctx, ledger.RefundRequest{ID: "ref-1", SaleID: "store1-r1-0001", Lines: []ledger.RefundLine{{No: 1, Quantity: 1}}})
	fmt.Println("refund reversed", -ref.Earned, "balance", ref.Balance)
	recs, _ := l.Outbox(0, 100)
	for _, r := range recs {
		fmt.Println(r.Seq, r.ID, r.Type)
	}
	// Output:
	// earned 25 balance 25
	// retry replayed true balance 25
	// refund reversed 12 balance 13
	// 1 store1-r1-1 member.upserted
	// 2 store1-r1-2 sale.recorded
	// 3 store1-r1-3 points.event
	// 4 store1-r1-4 sale.refunded
	// 5 store1-r1-5 points.event
}
