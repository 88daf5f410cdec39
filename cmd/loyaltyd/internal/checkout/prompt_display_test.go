package checkout_test

import (
	"context"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

// TestPromptOnPoleDisplay: the member's name and balance come first, then
// the prompt word-wrapped over the two lines, in turn every PromptEvery,
// until another event takes the display.
func TestPromptOnPoleDisplay(t *testing.T) {
	tick := checkout.Event{Kind: checkout.EvTick}
	cases := []struct {
		name   string
		prompt string
		want   checkout.Display
	}{
		{"two lines at word boundaries", "First return visit: give the welcome-back reward",
			checkout.Display{Line1: "First return visit:", Line2: "give the welcome-bac"}},
		{"short", "Birthday today", checkout.Display{Line1: "Birthday today"}},
		{"one long word clipped", "Geburtstagsüberraschungsgutschein heute",
			checkout.Display{Line1: "Geburtstagsüberrasch", Line2: "heute"}},
		{"close to reward", "12 points to the next reward", checkout.Display{Line1: "12 points to the", Line2: "next reward"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			clk := ledgertest.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), true)
			m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: f, Clock: clk,
				Prompt: func(ledger.Member, ledger.Points) string { return tc.prompt }})
			ctx := context.Background()
			m.Handle(ctx, item("4006381333931"))
			fx := m.Handle(ctx, card(danaCard))
			if fx.Display == nil || fx.Display.Line1 != "Dana Levi" {
				t.Fatalf("first display %+v, want the member", fx.Display)
			}
			balance := *fx.Display
			clk.Advance(2 * time.Second)
			if fx := m.Handle(ctx, tick); fx.Display != nil {
				t.Fatalf("switched before PromptEvery: %+v", fx.Display)
			}
			clk.Advance(time.Second)
			fx = m.Handle(ctx, tick)
			if fx.Display == nil || *fx.Display != tc.want {
				t.Fatalf("prompt display %+v, want %+v", fx.Display, tc.want)
			}
			clk.Advance(3 * time.Second)
			if fx := m.Handle(ctx, tick); fx.Display == nil || *fx.Display != balance {
				t.Fatalf("back to the balance: %+v, want %+v", fx.Display, balance)
			}
			m.Handle(ctx, item("4006381333931"))
			clk.Advance(10 * time.Second)
			if fx := m.Handle(ctx, tick); fx.Display != nil {
				t.Fatalf("prompt over an item scan: %+v", fx.Display)
			}
		})
	}
}

// TestNoPromptNoAlternation: without a prompt the balance stays.
func TestNoPromptNoAlternation(t *testing.T) {
	f := newFake()
	clk := ledgertest.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), true)
	m := checkout.New(checkout.Options{Register: "r1", Catalog: f, Members: f, Recorder: f, Clock: clk})
	m.Handle(context.Background(), card(danaCard))
	clk.Advance(5 * time.Second)
	if fx := m.Handle(context.Background(), checkout.Event{Kind: checkout.EvTick}); fx.Display != nil {
		t.Fatalf("display changed without a prompt: %+v", fx.Display)
	}
}
