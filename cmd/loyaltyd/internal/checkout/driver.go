package checkout

import (
	"context"
	"sync"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Driver serialises events from every source (devices, buttons, the API,
// the timeout ticker) into one Machine and applies each event's effects
// before the next event is handled, so the display, the signals and the
// kiosk page always show effects in the order they happened.
type Driver struct {
	mu    sync.Mutex
	m     *Machine
	apply func(context.Context, Effects)
	save  func(*KeptBasket)
}

// NewDriver wraps m; apply (may be nil) is called with each event's effects
// while the driver is still held.
func NewDriver(m *Machine, apply func(context.Context, Effects)) *Driver {
	return &Driver{m: m, apply: apply}
}

// Do handles one event, applies its effects and returns them (the view
// as it is after a deferred prompt was worked out).
func (d *Driver) Do(ctx context.Context, ev Event) Effects {
	d.mu.Lock()
	defer d.mu.Unlock()
	fx := d.m.Handle(ctx, ev)
	if d.apply != nil {
		d.apply(ctx, fx)
	}
	if d.save != nil && ev.Kind != EvTick && ev.Kind != EvOnline {
		d.save(d.m.Kept())
	} else if d.save != nil && ev.Kind == EvTick && fx.Display != nil {
		d.save(d.m.Kept()) // a timeout may have ended the basket
	}
	if d.m.Enrich() {
		// the display is done; the kiosk gets the prompt and tier goal.
		// The caller still gets the event's own effects (what the display
		// showed: POST /v1/scan's message) with the enriched view.
		fx.View = d.m.Snapshot()
		if d.apply != nil {
			d.apply(ctx, Effects{View: fx.View})
		}
	}
	return fx
}

// View returns the current view.
func (d *Driver) View() View {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m.Snapshot()
}

// SetRewards replaces the rewards catalogue (a rule set from head office)
// between two events; a reward already chosen for the basket stays chosen.
func (d *Driver) SetRewards(rs []rules.Reward) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m.o.Rewards = SortRewards(rs)
}
