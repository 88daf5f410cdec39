package daemon

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/api"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/device/manager"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// verdictClock is the wall clock as the ledger judges it: trusted only
// when synchronised and agreeing with the trusted-time high-water mark, so
// prompts and tier hints say nothing time-based during a clock fault.
type verdictClock struct {
	led *ledger.Ledger
	c   clock.Clock
}

func (v verdictClock) Now() (time.Time, bool) {
	cs, err := v.led.ClockStatus()
	if err != nil {
		return v.c.Now()
	}
	return cs.Wall, cs.Trusted
}

// clockTrusted is the ledger's verdict: synchronised and agreeing with
// the trusted-time high-water mark.
func (r *register) clockTrusted() bool {
	cs, err := r.led.ClockStatus()
	if err != nil {
		_, trusted := r.o.Clock.Now()
		return trusted
	}
	return cs.Trusted
}

func (r *register) online() bool {
	if r.syncErr != nil {
		return false
	}
	if r.up == nil {
		return true // standalone register: no head office to be away from
	}
	return r.up.Status().Online
}

// status reads the parts for the status document (api.NewStatus).
func (r *register) status(context.Context) api.Status {
	in := api.StatusInput{Version: r.o.Version, Register: r.cfg.Register.ID, Store: r.cfg.Register.StoreID,
		Now: time.Now(), Uptime: time.Since(r.start), ClockTrusted: r.clockTrusted(),
		Devices: r.mgr.Health(), Checkout: r.drv.View().State, SyncErr: r.syncErr}
	in.Ledger, in.LedgerErr = r.led.Stats()
	if cs, err := r.led.ClockStatus(); err == nil {
		in.Clock, in.ClockTrusted = &cs, cs.Trusted
	}
	if sims := r.mgr.Simulated(); len(sims) > 0 {
		in.Simulated = map[string]string{}
		for _, s := range sims {
			in.Simulated[s.Name] = s.Path
		}
	}
	if r.rep != nil {
		rs := r.rep.Status()
		in.Replica = &rs
	}
	if r.up != nil {
		u := r.up.Status()
		in.Sync = &u
	} else if _, oldest, err := r.led.OutboxStats(); err == nil {
		in.OutboxOldest = oldest.WallTime // pending with no uplink: how long they wait
	}
	return api.NewStatus(in)
}

func (r *register) registerMetrics() {
	r.metrics.NewGauge(`loyalty_clock_trusted`, func() float64 { return b2f(r.clockTrusted()) })
	// Disabled sync is not "online" (nothing reaches head office), even
	// though a standalone register redeems as if head office were
	// reachable (r.online).
	r.metrics.NewGauge(`loyalty_sync_enabled`, func() float64 { return b2f(r.up != nil || r.syncErr != nil) })
	r.metrics.NewGauge(`loyalty_sync_online`, func() float64 { return b2f(r.up != nil && r.online()) })
	r.metrics.NewGauge(`loyalty_outbox_pending`, func() float64 {
		s, err := r.led.Stats()
		if err != nil {
			return -1
		}
		return float64(s.OutboxPending)
	})
	// Events head office holds for review instead of applying them
	// (docs/operations.md): 1 in held_reason while it does, per reason.
	r.metrics.NewGauge(`loyalty_sync_held_events`, func() float64 {
		if r.up == nil {
			return 0
		}
		return float64(r.up.Status().Notice.Held)
	})
	for _, reason := range []string{protocol.NoticeIncarnation, protocol.NoticeStore, protocol.NoticeReused, uplink.NoticeLost} {
		r.metrics.NewGauge(fmt.Sprintf(`loyalty_sync_held{reason=%q}`, reason), func() float64 {
			return b2f(r.up != nil && r.up.Status().Notice.Code == reason)
		})
	}
	r.metrics.NewGauge(`loyalty_sync_other_ledger_acks`, func() float64 {
		if r.up == nil {
			return 0
		}
		return float64(r.up.Status().OtherAcks)
	})
	// Runs of broker connections lost soon after connecting (another
	// register with this register id, most likely).
	r.metrics.NewGauge(`loyalty_sync_takeovers`, func() float64 {
		if r.up == nil {
			return 0
		}
		return float64(r.up.Status().Takeovers)
	})
	// The second copy (ledger.replica_dir): 1 while it works, and the
	// events a card death would lose now.
	r.metrics.NewGauge(`loyalty_replica_ok`, func() float64 { return b2f(r.rep != nil && r.rep.Status().OK) })
	r.metrics.NewGauge(`loyalty_replica_behind`, func() float64 {
		if r.rep == nil {
			return 0
		}
		return float64(r.rep.Status().Behind)
	})
	r.metrics.NewGauge(`loyalty_kiosk_clients`, func() float64 { return float64(r.hub.Clients()) })
	r.metrics.RegisterMetricsWriter(func(w io.Writer) { manager.WriteMetrics(w, r.mgr.Health()) })
	syncRefusedMetrics(r.metrics, func() *uplink.Uplink { return r.up })
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
