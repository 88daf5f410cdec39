package checkout_test

import (
	"context"
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/ledger"
)

// TestKeptBasketRoundTrip: the open basket is handed to the saver after
// every change and nil once recorded; a kept basket restores the same sale
// id, lines, member and rewards, with a display line saying so.
func TestKeptBasketRoundTrip(t *testing.T) {
	m, _, _ := setup()
	d := checkout.NewDriver(m, nil)
	var kept *checkout.KeptBasket
	saves := 0
	d.SetBasketSaver(func(b *checkout.KeptBasket) { kept, saves = b, saves+1 })
	ctx := context.Background()
	d.Do(ctx, item(notebook))
	d.Do(ctx, card(danaCard))
	d.Do(ctx, pick("coffee"))
	if kept == nil || kept.SaleID != "r1-1" || len(kept.Lines) != 1 || kept.Member != "m1" || len(kept.Rewards) != 1 || saves != 3 {
		t.Fatalf("kept %+v after %d saves", kept, saves)
	}
	saved := *kept

	m2, f2, _ := setup()
	d2 := checkout.NewDriver(m2, nil)
	fx := d2.Restore(ctx, &saved, nil)
	if fx.Err != nil || fx.Display == nil || fx.Display.Line1 != "Basket restored" || fx.Display.Line2 != "Total 9.50" ||
		fx.View.State != "member" || fx.View.SaleID != "r1-1" || fx.View.MemberID != "m1" || fx.View.Message != "Basket restored" {
		t.Fatalf("restore: %+v", fx)
	}
	fx = d2.Do(ctx, ctl(checkout.ActComplete))
	if fx.Sale == nil || fx.Sale.Sale.ID != "r1-1" || len(f2.sales) != 1 {
		t.Fatalf("complete after restore: %+v", fx)
	}

	d.Do(ctx, ctl(checkout.ActComplete))
	if kept != nil {
		t.Fatalf("a recorded sale is still kept: %+v", kept)
	}
}

// TestBadKeptBasketChangesNothing: a damaged kept basket is refused, the
// checkout stays idle, and the cashier is told the basket is lost.
func TestBadKeptBasketChangesNothing(t *testing.T) {
	good := func() checkout.KeptBasket {
		return checkout.KeptBasket{SaleID: "r1-9", Lines: []ledger.Line{{No: 1, SKU: pencil, Quantity: 1, UnitPrice: 250}}, Names: map[string]string{pencil: "Pencil HB"}}
	}
	for name, mutate := range map[string]func(*checkout.KeptBasket){
		"no sale id":        func(b *checkout.KeptBasket) { b.SaleID = "" },
		"no lines":          func(b *checkout.KeptBasket) { b.Lines = nil },
		"zero quantity":     func(b *checkout.KeptBasket) { b.Lines[0].Quantity = 0 },
		"negative price":    func(b *checkout.KeptBasket) { b.Lines[0].UnitPrice = -1 },
		"line numbers":      func(b *checkout.KeptBasket) { b.Lines[0].No = 2 },
		"card number sku":   func(b *checkout.KeptBasket) { b.Lines[0].SKU = "4111111111111111" },
		"card number name":  func(b *checkout.KeptBasket) { b.Names[pencil] = "4111111111111111" },
		"unknown member":    func(b *checkout.KeptBasket) { b.Member = "m404" },
		"unknown reward":    func(b *checkout.KeptBasket) { b.Member, b.Rewards = "m1", []string{"yacht"} },
		"reward, no member": func(b *checkout.KeptBasket) { b.Rewards = []string{"coffee"} },
	} {
		t.Run(name, func(t *testing.T) {
			m, _, _ := setup()
			d := checkout.NewDriver(m, nil)
			b := good()
			mutate(&b)
			fx := d.Restore(context.Background(), &b, nil)
			if !errors.Is(fx.Err, checkout.ErrBadBasket) || fx.Display == nil || fx.Display.Line1 != "Basket lost - rescan" ||
				fx.View.State != "idle" || len(fx.View.Lines) != 0 || fx.View.Message != "Basket lost - rescan" {
				t.Fatalf("restore of a bad basket: %+v", fx)
			}
		})
	}
	m, _, _ := setup()
	d := checkout.NewDriver(m, nil)
	if fx := d.Restore(context.Background(), nil, errors.New("unreadable")); fx.Display == nil || fx.Display.Line1 != "Basket lost - rescan" {
		t.Fatalf("lost basket: %+v", fx)
	}
	if fx := d.Restore(context.Background(), nil, nil); fx.Display != nil || fx.Err != nil {
		t.Fatalf("nothing kept: %+v", fx)
	}
}

// Member finds a member by id, as *ledger.Ledger does (a kept basket names
// its member by id).
func (f *fakeLedger) Member(id string) (ledger.Member, error) {
	for _, m := range f.members {
		if m.ID == id {
			return m, nil
		}
	}
	return ledger.Member{}, ledger.ErrUnknownMember
}
