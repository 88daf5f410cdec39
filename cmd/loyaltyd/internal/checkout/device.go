package checkout

import (
	"errors"
	"strings"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/ledger"
)

// WeightLabel is the layout of an in-store weight label as far as the
// checkout needs it: the catalogue holds the article under its prefix and
// article digits (label 2112345012346 with prefix "21" and 5 article digits
// is SKU "2112345") at its price per kilogram.
type WeightLabel struct {
	Prefix        string
	ArticleDigits int
}

// DeviceInput turns classified device events into checkout events.
type DeviceInput struct {
	// Catalog decides how a price-embedded label is sold: at the catalogue
	// price when the article is known, else at the price on the label.
	Catalog Catalog
	// Weighed are the in-store weight label layouts.
	Weighed []WeightLabel
}

// Event maps one device event onto a checkout event; false means there is
// nothing for the checkout to do (line noise, a bounce, an unknown kind).
// A rejected input becomes EvReject with a fixed message that never holds
// the input itself: a payment card number must not reach the display or
// the kiosk.
func (d DeviceInput) Event(ev device.Event) (Event, bool) {
	var ce Event
	switch ev.Kind {
	case device.KindItem:
		ce = d.item(ev)
	case device.KindMember:
		ce = Event{Kind: EvCard, Code: ev.Payload}
	case device.KindControl, device.KindButton:
		ce = Event{Kind: EvControl, Action: actionName(ev.Action)}
	case device.KindReject:
		msg := rejectMessage(ev.Reason)
		if msg == "" {
			return Event{}, false // nothing a person did
		}
		ce = Event{Kind: EvReject, Code: msg}
	default:
		return Event{}, false
	}
	ce.Source = ev.Device
	return ce, true
}

func (d DeviceInput) item(ev device.Event) Event {
	ce := Event{Kind: EvItem, Code: ev.Payload}
	if ev.Item == nil {
		return ce
	}
	if ev.Item.WeightGrams > 0 {
		if sku, ok := d.weighedArticle(ev.Payload); ok {
			ce = Event{Kind: EvItem, Code: sku, WeightGrams: ev.Item.WeightGrams}
		}
	}
	if ev.Item.PriceMinor > 0 && d.Catalog != nil {
		if _, err := d.Catalog.Item(ev.Payload); err != nil {
			ce = Event{Kind: EvManualItem, Code: ev.Payload, Price: ledger.Money(ev.Item.PriceMinor)}
		}
	}
	return ce
}

// weighedArticle is the catalogue SKU of a weight label: its prefix and
// article digits.
func (d DeviceInput) weighedArticle(code string) (string, bool) {
	for _, w := range d.Weighed {
		n := len(w.Prefix) + w.ArticleDigits
		if strings.HasPrefix(code, w.Prefix) && len(code) >= n {
			return code[:n], true
		}
	}
	return "", false
}

// rejectMessage is the fixed text shown for a refused input ("" for input
// no person produced: a bounce, an empty frame). Every refused frame is
// visible: line noise and cut-off scans ask for the scan again, frames
// the scanner's setup makes wrong (no AIM identifier, another
// terminator) say so.
func rejectMessage(reason error) string {
	switch {
	case errors.Is(reason, device.ErrMissingAIM), errors.Is(reason, device.ErrBadTerminator):
		return "Check scanner setup"
	case errors.Is(reason, device.ErrNoise):
		return "Not read - try again"
	case errors.Is(reason, device.ErrNotMemberCard):
		return "Not a member card"
	case errors.Is(reason, device.ErrUnknownCode):
		return "Unknown code"
	case errors.Is(reason, device.ErrBadCheckDigit), errors.Is(reason, device.ErrHalfSwipe), errors.Is(reason, device.ErrTrackError),
		errors.Is(reason, device.ErrBadTrack), errors.Is(reason, device.ErrBitCount), errors.Is(reason, device.ErrParity), errors.Is(reason, device.ErrTooLong):
		return "Not read - try again"
	}
	return ""
}

// actionName maps device and config action names onto checkout actions;
// an unknown name is passed on as it is (the machine refuses it).
func actionName(a string) string {
	switch strings.ToLower(a) {
	case "complete", "total":
		return ActComplete
	case "cancel":
		return ActCancel
	case "redeem":
		return ActRedeem
	case "show_points", "points":
		return ActPoints
	}
	return a
}
