package checkout_test

import (
	"context"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
)

// FuzzEvents drives the machine with arbitrary event sequences (codes come
// from scanners, i.e. outside bytes). It must never panic, a sale is
// recorded only by an accepted complete, and a rejected event never records.
func FuzzEvents(f *testing.F) {
	f.Add([]byte{1, 2, 4, 0}, "4006381333931", "2990000000002")
	f.Add([]byte{1, 1, 2, 4, 3, 5, 4, 4, 6}, "96385074", "+972500000001")
	f.Add([]byte{2, 7, 4, 4, 6, 0, 1}, "", "\x00\xff")
	f.Fuzz(func(t *testing.T, ops []byte, code, cardCode string) {
		m, fk, _ := setup()
		ctx := context.Background()
		for _, op := range ops {
			var ev checkout.Event
			switch op % 9 {
			case 0:
				ev = item(code)
			case 1:
				ev = item(pencil)
			case 2:
				ev = card(cardCode)
			case 3:
				ev = ctl(checkout.ActRedeem)
			case 4:
				ev = ctl(checkout.ActComplete)
			case 5:
				ev = pick("coffee")
			case 6:
				ev = ctl(checkout.ActCancel)
			case 7:
				ev = checkout.Event{Kind: checkout.EvManualItem, Code: code, Price: 1}
			case 8:
				ev = card(danaCard)
			}
			before := len(fk.sales)
			fx := m.Handle(ctx, ev)
			after := len(fk.sales)
			if fx.Err != nil && after != before {
				t.Fatalf("rejected %+v recorded a sale", ev)
			}
			if after != before && (ev.Action != checkout.ActComplete || fx.Sale == nil) {
				t.Fatalf("%+v recorded a sale", ev)
			}
			if fk.balances["m1"] < 0 {
				t.Fatalf("negative balance")
			}
		}
	})
}
