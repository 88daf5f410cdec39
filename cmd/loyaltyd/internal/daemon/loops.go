package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/signal"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
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
		r.scans.done(ev.Device, scanResult(ev, checkout.Effects{}, false))
		return
	}
	start := time.Now()
	fx := r.drv.Do(context.Background(), ce)
	r.metrics.GetOrCreateHistogram(`loyalty_input_to_effect_seconds`).UpdateDuration(start)
	if fx.Err != nil {
		r.log.Info("checkout refused input", "device", ev.Device, "kind", ev.Kind.String(), "err", fx.Err)
	}
	r.scans.done(ev.Device, scanResult(ev, fx, true))
}

// apply runs inside the checkout driver: the display is written before the
// next event is handled, signals and the kiosk never block it.
func (r *register) apply(ctx context.Context, fx checkout.Effects) {
	if fx.Display != nil {
		r.dispMu.Lock()
		var err error
		if *fx.Display == (checkout.Display{}) {
			if f := r.faultDisplay(); f != nil {
				err = r.disp.Show(ctx, *f) // the cashier sees the clock fault when idle
			} else {
				err = r.disp.Clear(ctx)
			}
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
// and goes, and watches the clock (clockTick).
func (r *register) tickLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	online := r.online()
	var cw clockWatch
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
		r.clockTick(ctx, &cw)
		r.noticeTick()
	}
}

// clockWatch is what the tick loop remembers about the clock.
type clockWatch struct {
	lastExpire time.Time // monotonic: when expiry last ran
	trusted    bool
	fault      string
	wall       time.Time // the clock's reading at the last tick
	at         time.Time // monotonic time of that tick
}

// clockTick judges the clock through the ledger (trusted, or a fault
// against the trusted-time high-water mark), shows a fault to the cashier,
// corrects the times of events stamped while it was untrusted, and runs
// point expiry: hourly, and at once when the clock becomes trusted or is
// stepped. Expiry and corrections are time-based decisions: they wait
// while the clock is untrusted or in a fault.
func (r *register) clockTick(ctx context.Context, cw *clockWatch) {
	cs, err := r.led.ClockStatus()
	if err != nil {
		return
	}
	now := time.Now()
	stepped := !cw.at.IsZero() && (cs.Wall.Sub(cw.wall)-now.Sub(cw.at)).Abs() > time.Minute
	cw.wall, cw.at = cs.Wall, now
	if cs.Fault != cw.fault {
		if cs.Fault != "" {
			r.log.Warn("clock fault: the synchronised clock disagrees with the trusted time seen; expiry waits until it agrees again or a person confirms it (loyaltyctl clock confirm)",
				"fault", cs.Fault, "wall", cs.Wall, "high_water", cs.HighWater, "estimate", cs.Estimate)
		} else {
			r.log.Info("clock fault over", "wall", cs.Wall)
		}
		cw.fault = cs.Fault
		r.fault.Store(cs.Fault)
		r.redrawIdle()
	}
	became := cs.Trusted && !cw.trusted
	cw.trusted = cs.Trusted
	if !cs.Trusted {
		return
	}
	if cs.Uncorrected > 0 {
		if n, err := r.led.CorrectTimes(ctx); err != nil {
			r.log.Warn("time correction failed", "err", err)
		} else if n > 0 {
			r.log.Info("event times corrected", "events", n)
		}
	}
	if cw.lastExpire.IsZero() || time.Since(cw.lastExpire) > time.Hour || became || stepped {
		cw.lastExpire = time.Now()
		if n, err := r.led.ExpireDue(ctx); err != nil {
			r.log.Warn("expiry run failed", "err", err)
		} else if n > 0 {
			r.log.Info("points expired", "lots", n)
		}
	}
}

// faultDisplay is what the idle display shows during a clock fault, else
// the sync notice (noticeTick), else nothing.
func (r *register) faultDisplay() *[2]string {
	f, _ := r.fault.Load().(string)
	if f == "" {
		if n, _ := r.notice.Load().([2]string); n != ([2]string{}) {
			return &n
		}
		return nil
	}
	return &[2]string{"Clock fault: " + f, "Check date and time"}
}

// noticeTick shows on the idle display, in 20 columns, what the cashier
// should call support about (loyaltyctl status has the whole text).
func (r *register) noticeTick() {
	var n [2]string
	if r.up != nil {
		n = noticeLines(r.up.Status())
	}
	if n == ([2]string{}) && r.rep != nil && !r.rep.Status().OK {
		n = [2]string{"2nd copy failing", "Sales OK - call svc"}
	}
	if old, _ := r.notice.Load().([2]string); old == n {
		return
	}
	if r.up != nil {
		if f := r.up.Fault(); f != "" {
			r.log.Warn("head office link fault", "fault", f)
		}
	}
	r.notice.Store(n)
	r.redrawIdle()
}

// noticeLines maps the uplink's notices onto the display's two lines.
func noticeLines(st uplink.Status) [2]string {
	if st.Takeover != "" {
		return [2]string{"Register id in use", "twice - call support"}
	}
	switch st.Notice.Code {
	case protocol.NoticeIncarnation:
		return [2]string{"Sales held at HQ", "Same id elsewhere"}
	case protocol.NoticeStore:
		return [2]string{"Sales held at HQ", "Move: confirm at HQ"}
	case protocol.NoticeReused:
		return [2]string{"Sales held at HQ", "Restored ledger"}
	case uplink.NoticeLost:
		return [2]string{"HQ lost sales", "Gap - see status"}
	}
	if st.Fault != "" {
		// Connected, events sent, nothing acknowledged (uplink.Status.Fault).
		return [2]string{"No ack from HQ", "Check cert and ACL"}
	}
	return [2]string{}
}

// redrawIdle shows (or clears) the clock fault or notice on an idle display.
func (r *register) redrawIdle() {
	if r.drv.View().State != checkout.Idle.String() {
		return
	}
	r.dispMu.Lock()
	defer r.dispMu.Unlock()
	var err error
	if f := r.faultDisplay(); f != nil {
		err = r.disp.Show(context.Background(), *f)
	} else {
		err = r.disp.Clear(context.Background())
	}
	if err != nil {
		r.log.Warn("customer display write failed", "err", err)
	}
}

// scan injects code into a simulated device (loyaltyctl scan); no device
// named means the first simulated scanner.
