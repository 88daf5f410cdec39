package checkout_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/ledger"
)

// catalogOf is a Catalog holding the given SKUs.
type catalogOf map[string]bool

func (c catalogOf) Item(sku string) (checkout.Item, error) {
	if !c[sku] {
		return checkout.Item{}, errors.New("unknown item")
	}
	return checkout.Item{SKU: sku, Name: sku, Price: 100}, nil
}

func TestDeviceInputEvent(t *testing.T) {
	in := checkout.DeviceInput{
		Catalog: catalogOf{"2012345": true, "2098765000008": true},
		Weighed: []checkout.WeightLabel{{Prefix: "21", ArticleDigits: 5}, {Prefix: "230", ArticleDigits: 4}},
	}
	const dev = "scanner0"
	for _, tc := range []struct {
		name string
		ev   device.Event
		want checkout.Event
		ok   bool
	}{
		{"item", device.Event{Kind: device.KindItem, Payload: "4006381333931"},
			checkout.Event{Kind: checkout.EvItem, Code: "4006381333931"}, true},
		{"weight label: article under prefix and article digits", device.Event{Kind: device.KindItem, Payload: "2112345012346", Item: &device.ItemInfo{InStore: true, WeightGrams: 1234}},
			checkout.Event{Kind: checkout.EvItem, Code: "2112345", WeightGrams: 1234}, true},
		{"weight label: second layout", device.Event{Kind: device.KindItem, Payload: "2301234005009", Item: &device.ItemInfo{InStore: true, WeightGrams: 500}},
			checkout.Event{Kind: checkout.EvItem, Code: "2301234", WeightGrams: 500}, true},
		{"weight without a weight layout: the code as scanned", device.Event{Kind: device.KindItem, Payload: "2412345012340", Item: &device.ItemInfo{InStore: true, WeightGrams: 1234}},
			checkout.Event{Kind: checkout.EvItem, Code: "2412345012340"}, true},
		{"weight layout longer than the code", device.Event{Kind: device.KindItem, Payload: "2112", Item: &device.ItemInfo{InStore: true, WeightGrams: 10}},
			checkout.Event{Kind: checkout.EvItem, Code: "2112"}, true},
		{"price label, unknown article: priced by the label", device.Event{Kind: device.KindItem, Payload: "2012399012507", Item: &device.ItemInfo{InStore: true, PriceMinor: 1250}},
			checkout.Event{Kind: checkout.EvManualItem, Code: "2012399012507", Price: ledger.Money(1250)}, true},
		{"price label, article in the catalogue: catalogue price", device.Event{Kind: device.KindItem, Payload: "2098765000008", Item: &device.ItemInfo{InStore: true, PriceMinor: 1250}},
			checkout.Event{Kind: checkout.EvItem, Code: "2098765000008"}, true},
		{"in-store code without value", device.Event{Kind: device.KindItem, Payload: "2012345000007", Item: &device.ItemInfo{InStore: true}},
			checkout.Event{Kind: checkout.EvItem, Code: "2012345000007"}, true},
		{"member card", device.Event{Kind: device.KindMember, Payload: "2990000000002"},
			checkout.Event{Kind: checkout.EvCard, Code: "2990000000002"}, true},
		{"control TOTAL", device.Event{Kind: device.KindControl, Payload: "*TOTAL*", Action: "TOTAL"},
			checkout.Event{Kind: checkout.EvControl, Action: checkout.ActComplete}, true},
		{"button complete", device.Event{Kind: device.KindButton, Payload: "b1", Action: "complete"},
			checkout.Event{Kind: checkout.EvControl, Action: checkout.ActComplete}, true},
		{"button cancel", device.Event{Kind: device.KindButton, Action: "Cancel"},
			checkout.Event{Kind: checkout.EvControl, Action: checkout.ActCancel}, true},
		{"button redeem", device.Event{Kind: device.KindButton, Action: "redeem"},
			checkout.Event{Kind: checkout.EvControl, Action: checkout.ActRedeem}, true},
		{"button show_points", device.Event{Kind: device.KindButton, Action: "show_points"},
			checkout.Event{Kind: checkout.EvControl, Action: checkout.ActPoints}, true},
		{"control points", device.Event{Kind: device.KindControl, Action: "POINTS"},
			checkout.Event{Kind: checkout.EvControl, Action: checkout.ActPoints}, true},
		{"unknown action passed on for the machine to refuse", device.Event{Kind: device.KindControl, Action: "dance"},
			checkout.Event{Kind: checkout.EvControl, Action: "dance"}, true},
		{"payment card: fixed text, never the input", device.Event{Kind: device.KindReject, Reason: fmt.Errorf("%w: bank card", device.ErrNotMemberCard)},
			checkout.Event{Kind: checkout.EvReject, Code: "Not a member card"}, true},
		{"unknown code", device.Event{Kind: device.KindReject, Reason: device.ErrUnknownCode},
			checkout.Event{Kind: checkout.EvReject, Code: "Unknown code"}, true},
		{"bad check digit", device.Event{Kind: device.KindReject, Reason: device.ErrBadCheckDigit},
			checkout.Event{Kind: checkout.EvReject, Code: "Not read - try again"}, true},
		{"half swipe", device.Event{Kind: device.KindReject, Reason: device.ErrHalfSwipe},
			checkout.Event{Kind: checkout.EvReject, Code: "Not read - try again"}, true},
		{"wiegand parity", device.Event{Kind: device.KindReject, Reason: fmt.Errorf("%w: 26 bits", device.ErrParity)},
			checkout.Event{Kind: checkout.EvReject, Code: "Not read - try again"}, true},
		{"over-long frame", device.Event{Kind: device.KindReject, Reason: device.ErrTooLong},
			checkout.Event{Kind: checkout.EvReject, Code: "Not read - try again"}, true},
		{"line noise: scan again", device.Event{Kind: device.KindReject, Reason: device.ErrNoise},
			checkout.Event{Kind: checkout.EvReject, Code: "Not read - try again"}, true},
		{"missing AIM identifier", device.Event{Kind: device.KindReject, Reason: device.ErrMissingAIM},
			checkout.Event{Kind: checkout.EvReject, Code: "Check scanner setup"}, true},
		{"bad terminator", device.Event{Kind: device.KindReject, Reason: fmt.Errorf("%w (0x09)", device.ErrBadTerminator)},
			checkout.Event{Kind: checkout.EvReject, Code: "Check scanner setup"}, true},
		{"button bounce", device.Event{Kind: device.KindReject, Reason: device.ErrBounce}, checkout.Event{}, false},
		{"empty frame", device.Event{Kind: device.KindReject, Reason: device.ErrEmpty}, checkout.Event{}, false},
		{"unknown kind", device.Event{Kind: device.Kind(99), Payload: "x"}, checkout.Event{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ev.Device = dev
			got, ok := in.Event(tc.ev)
			if ok != tc.ok {
				t.Fatalf("Event(%+v) ok = %v, want %v", tc.ev, ok, tc.ok)
			}
			if ok {
				tc.want.Source = dev
			}
			if got != tc.want {
				t.Errorf("Event(%+v)\n got %+v\nwant %+v", tc.ev, got, tc.want)
			}
		})
	}
}
