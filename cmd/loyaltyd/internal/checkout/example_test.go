package checkout_test

import (
	"context"
	"fmt"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
)

// A member buys a pen: item, card, complete. Each event returns the text
// for the customer display and the cashier's signals.
func Example() {
	f := newFake() // any Catalog, Members and Recorder, e.g. *ledger.Ledger
	m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: f,
		NewSaleID: func() string { return "r1-1" }})
	ctx := context.Background()
	for _, ev := range []checkout.Event{
		{Kind: checkout.EvItem, Code: "96385074"},
		{Kind: checkout.EvCard, Code: "2990000000002"},
		{Kind: checkout.EvControl, Action: checkout.ActComplete},
	} {
		fx := m.Handle(ctx, ev)
		fmt.Printf("%-8s %-20q %-20q %v\n", m.State(), fx.Display.Line1, fx.Display.Line2, fx.Signals)
	}
	// Output:
	// basket   "Notebook A5 with a l" "Total 10.00"        []
	// member   "Dana Levi"          "120 pts 10.00"      [ok]
	// receipt  "+10 pts"            "Balance 130"        [ok]
}
