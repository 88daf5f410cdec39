package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/signal"
)

// deviceLoop hands every device event to the checkout, one at a time.
func (r *register) deviceLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.mgr.Events():
			r.onDevice(ev)
		}
	}
}

func (r *register) onDevice(ev device.Event) {
	if ev.Kind == device.KindReject {
		r.log.Info("input refused", "device", ev.Device, "reason", device.ReasonLabel(ev.Reason), "err", ev.Reason)
		r.metrics.GetOrCreateCounter(fmt.Sprintf(`loyalty_input_rejects_total{reason=%q}`, device.ReasonLabel(ev.Reason))).Inc()
	}
	ce, ok := r.input.Event(ev)
	if !ok {
		return
	}
	start := time.Now()
	fx := r.drv.Do(context.Background(), ce)
	r.metrics.GetOrCreateHistogram(`loyalty_input_to_effect_seconds`).UpdateDuration(start)
	if fx.Err != nil {
		r.log.Info("checkout refused input", "device", ev.Device, "kind", ev.Kind.String(), "err", fx.Err)
	}
}

// apply runs inside the checkout driver: the display is written before the
// next event is handled, signals and the kiosk never block it.
func (r *register) apply(ctx context.Context, fx checkout.Effects) {
	if fx.Display != nil {
		r.dispMu.Lock()
		var err error
		if *fx.Display == (checkout.Display{}) {
			err = r.disp.Clear(ctx)
		} else {
			err = r.disp.Show(ctx, [2]string{fx.Display.Line1, fx.Display.Line2})
		}
		r.dispMu.Unlock()
		if err != nil {
			r.log.Warn("customer display write failed", "err", err)
		}
	}
	for _, s := range fx.Signals {
		r.signal(s)
	}
	if fx.Sale != nil && !fx.Sale.Replayed {
		r.metrics.GetOrCreateCounter(`loyalty_sales_total{source="checkout"}`).Inc()
		r.log.Info("sale recorded", "sale", fx.Sale.Sale.ID, "member", fx.Sale.Sale.MemberID, "total", fx.Sale.Sale.Total,
			"earned", fx.Sale.Earned, "balance", fx.Sale.Balance)
	}
	_ = r.hub.Publish(fx.View)
}

func (r *register) clearDisplay() {
	r.dispMu.Lock()
	defer r.dispMu.Unlock()
	if err := r.disp.Clear(context.Background()); err != nil {
		r.log.Warn("customer display not reachable yet", "err", err)
	}
}

func (r *register) signal(s checkout.SignalKind) {
	select {
	case r.sigs <- s:
	default: // a burst of signals: the cashier hears the ones queued
	}
}

func (r *register) signalLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-r.sigs:
			r.metrics.GetOrCreateCounter(fmt.Sprintf(`loyalty_signals_total{kind=%q}`, s)).Inc()
			r.log.Debug("signal", "kind", string(s))
			if r.outputs == nil {
				continue
			}
			p := signal.OK
			switch s {
			case checkout.SignalError:
				p = signal.Error
			case checkout.SignalOffline:
				p = signal.Offline
			}
			if err := r.outputs.Play(ctx, p); err != nil && ctx.Err() == nil {
				r.log.Warn("signal failed", "err", err)
			}
		}
	}
}

// tickLoop drives the checkout's timers, tells it when head office comes
// and goes, and runs point expiry hourly once the clock is trusted.
func (r *register) tickLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	online := r.online()
	lastExpire := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.drv.Do(ctx, checkout.Event{Kind: checkout.EvTick})
		if on := r.online(); on != online {
			online = on
			r.drv.Do(ctx, checkout.Event{Kind: checkout.EvOnline, Online: on})
			r.log.Info("head office link", "online", on)
		}
		// Point expiry is a time-based decision: only with a trusted clock.
		if time.Since(lastExpire) > time.Hour && r.clockTrusted() {
			lastExpire = time.Now()
			if n, err := r.led.ExpireDue(ctx); err != nil {
				r.log.Warn("expiry run failed", "err", err)
			} else if n > 0 {
				r.log.Info("points expired", "lots", n)
			}
		}
	}
}

// scan injects code into a simulated device (loyaltyctl scan); no device
// named means the first simulated scanner.
func (r *register) scan(_ context.Context, dev, code string) error {
	if dev == "" {
		name, _, ok := r.firstSimScanner()
		if !ok {
			return errors.New("no simulated scanner configured")
		}
		dev = name
	}
	return r.mgr.Inject(dev, code)
}
