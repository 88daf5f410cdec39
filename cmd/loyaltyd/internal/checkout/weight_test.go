package checkout_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/ledger"
)

func TestWeightPrice(t *testing.T) {
	tests := []struct {
		name   string
		perKg  ledger.Money
		grams  int64
		want   ledger.Money
		wantEr bool
	}{
		{"exact kilogram", 999, 1000, 999, false},
		{"rounds half up", 999, 1234, 1233, false}, // 1232.766
		{"exact half goes up", 100, 5, 1, false},   // 0.5
		{"below half goes down", 1000, 1234, 1234, false},
		{"tiny weight never free", 10, 1, 1, false}, // 0.01
		{"heavy", 2599, 12345, 32085, false},        // 32084.655
		{"zero weight", 999, 0, 0, true},
		{"negative weight", 999, -5, 0, true},
		{"zero unit price", 0, 100, 0, true},
		{"overflow", math.MaxInt64 / 10, 1000, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkout.WeightPrice(tt.perKg, tt.grams)
			if tt.wantEr {
				if !errors.Is(err, checkout.ErrWeight) {
					t.Fatalf("WeightPrice(%d, %d) = %d, %v; want ErrWeight", tt.perKg, tt.grams, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("WeightPrice(%d, %d) = %d, %v; want %d", tt.perKg, tt.grams, got, err, tt.want)
			}
		})
	}
}

func TestWeighedItem(t *testing.T) {
	m, _, _ := setup()
	ctx := context.Background()
	// "96385074" is 10.00 in the fake catalogue: 0.750 kg costs 7.50
	fx := m.Handle(ctx, checkout.Event{Kind: checkout.EvItem, Code: "96385074", WeightGrams: 750})
	if fx.Err != nil || fx.View.Total != 750 || len(fx.View.Lines) != 1 {
		t.Fatalf("weighed item: err %v, view %+v", fx.Err, fx.View)
	}
	bad := []struct {
		name string
		ev   checkout.Event
	}{
		{"negative weight", checkout.Event{Kind: checkout.EvItem, Code: "96385074", WeightGrams: -1}},
		{"weight with a quantity", checkout.Event{Kind: checkout.EvItem, Code: "96385074", WeightGrams: 100, Quantity: 3}},
		{"unknown article", checkout.Event{Kind: checkout.EvItem, Code: "2199999", WeightGrams: 100}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			fx := m.Handle(ctx, b.ev)
			if fx.Err == nil || fx.View.Total != 750 || len(fx.View.Lines) != 1 {
				t.Fatalf("accepted or changed the basket: err %v, view %+v", fx.Err, fx.View)
			}
		})
	}
}
