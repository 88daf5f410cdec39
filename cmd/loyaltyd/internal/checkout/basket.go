package checkout

import (
	"context"
	"errors"
	"fmt"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// KeptBasket is an open basket as it is kept across a restart of the daemon:
// the sale id fixed when it opened (so a sale recorded before the restart
// is never recorded twice), the lines, the member and the rewards chosen.
type KeptBasket struct {
	SaleID  string            `json:"sale_id"`
	Lines   []ledger.Line     `json:"lines"`
	Names   map[string]string `json:"names,omitempty"` // sku -> display name
	Member  string            `json:"member,omitempty"`
	Rewards []string          `json:"rewards,omitempty"` // reward ids chosen
}

// ErrBadBasket: a kept basket that cannot be restored (damaged, or from
// another catalogue of rewards); it is dropped and the cashier told.
var ErrBadBasket = errors.New("checkout: kept basket not usable")

// Kept returns the open basket (items scanned or a member attached, not
// yet recorded), or nil when there is none.
func (m *Machine) Kept() *KeptBasket {
	if m.state != Basket && m.state != Member && m.state != Redeem {
		return nil
	}
	b := &KeptBasket{SaleID: m.saleID, Lines: append([]ledger.Line(nil), m.lines...), Names: map[string]string{}}
	for _, l := range m.lines {
		b.Names[l.SKU] = m.names[l.SKU]
	}
	if m.member != nil {
		b.Member = m.member.ID
	}
	for _, r := range m.redeem {
		b.Rewards = append(b.Rewards, r.ID)
	}
	return b
}

// restore reopens a kept basket at idle. Everything in it is checked as
// input from outside: a bad basket changes nothing.
func (m *Machine) restore(b KeptBasket) error {
	if m.state != Idle || m.showing {
		return fmt.Errorf("%w: the checkout is busy", ErrWrongState)
	}
	if b.SaleID == "" || len(b.SaleID) > 128 || cardsafe.ContainsPAN(b.SaleID) || len(b.Lines) > MaxLines || (len(b.Lines) == 0 && b.Member == "") {
		return fmt.Errorf("%w: sale id or size", ErrBadBasket)
	}
	for i, l := range b.Lines {
		if l.No != i+1 || l.SKU == "" || l.Quantity <= 0 || l.Quantity > 9999 || l.UnitPrice <= 0 || l.Discount < 0 ||
			cardsafe.ContainsPAN(l.SKU) || cardsafe.ContainsPAN(b.Names[l.SKU]) {
			return fmt.Errorf("%w: line %d", ErrBadBasket, i+1)
		}
	}
	var mem *ledger.Member
	var bal ledger.Points
	if b.Member != "" {
		// by id where the store can (a *ledger.Ledger), else as an alias
		var got ledger.Member
		var err error
		if byID, ok := m.o.Members.(membersByID); ok {
			got, err = byID.Member(b.Member)
		} else {
			got, err = m.o.Members.LookupAlias(b.Member)
		}
		if err != nil || got.ID != b.Member {
			return fmt.Errorf("%w: member: %v", ErrBadBasket, err)
		}
		if bal, err = m.o.Members.Balance(got.ID); err != nil {
			return fmt.Errorf("%w: balance: %w", ErrBadBasket, err)
		}
		mem = &got
	}
	var chosen []rules.Reward
	for _, id := range b.Rewards {
		found := false
		for _, r := range m.o.Rewards {
			if r.ID == id {
				chosen, found = append(chosen, r), true
				break
			}
		}
		if !found || mem == nil {
			return fmt.Errorf("%w: reward %q", ErrBadBasket, id)
		}
	}
	m.reset()
	m.saleID, m.lines, m.state = b.SaleID, append([]ledger.Line(nil), b.Lines...), Basket
	for _, l := range b.Lines {
		m.names[l.SKU] = b.Names[l.SKU]
	}
	if mem != nil {
		m.member, m.balance, m.state = mem, bal, Member
		m.redeem = chosen
	}
	return nil
}

// Restore reopens the basket kept from before a restart and tells the
// cashier and the kiosk: "Basket restored" with its total. When the kept
// basket could not be read or used (lost is its error), nothing is
// restored and they are told "Basket lost - rescan" instead. A nil basket
// with a nil error does nothing.
func (d *Driver) Restore(ctx context.Context, b *KeptBasket, lost error) Effects {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.m
	var fx Effects
	if lost == nil && b != nil {
		lost = m.restore(*b)
	}
	switch {
	case lost != nil:
		m.message = "Basket lost - rescan"
		fx = Effects{Err: lost, Signals: []SignalKind{SignalError}, Display: &Display{Line1: m.message, Line2: "after a restart"}}
	case b != nil:
		m.message = "Basket restored"
		m.last = clock.Wall(m.o.Clock)
		fx = Effects{Signals: []SignalKind{SignalOK}, Display: &Display{Line1: m.message, Line2: m.clip(m.totalText())}}
	default:
		return Effects{View: m.view()}
	}
	fx.View = m.view()
	if d.apply != nil {
		d.apply(ctx, fx)
	}
	return fx
}

// SetBasketSaver has save called, after every event, with the open basket
// (nil when there is none) while the driver is still held, so the basket
// can be kept across a restart. save should skip a basket equal to the
// last one it kept.
func (d *Driver) SetBasketSaver(save func(*KeptBasket)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.save = save
}
