package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/kiosk"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/device/display"
	"github.com/loyalty-terminal/loyalty/device/manager"
	"github.com/loyalty-terminal/loyalty/device/signal"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/replica"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// Options configures Run. Zero values mean the defaults.
type Options struct {
	Config *config.Config // required
	Logger *slog.Logger   // default: discard
	// Clock is the wall clock with its trust flag; default TrustedClock.
	Clock clock.Clock
	// Out receives the start-up hints and the "log" display; default
	// os.Stdout.
	Out io.Writer
	// RunDir holds the links and FIFOs of simulated devices; default
	// "<ledger dir>/dev".
	RunDir string
	// ShutdownTimeout bounds the graceful shutdown; default 5s.
	ShutdownTimeout time.Duration
	// Version is reported in status.
	Version string
	// ConfigPath is the config file the daemon was started with (empty:
	// embedded defaults). With HTTPS the start-up hints give it to
	// loyaltyctl, which finds the certificate to trust only there.
	ConfigPath string
}

// Errors.
var (
	ErrConfig = errors.New("daemon: unusable configuration")
)

func (o Options) withDefaults() (Options, error) {
	if o.Config == nil {
		return o, fmt.Errorf("%w: no config", ErrConfig)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = &TrustedClock{SyncedFile: o.Config.Clock.SyncedFile, TrustHost: o.Config.Clock.TrustHost}
		if o.Config.Clock.TrustHost {
			o.Logger.Warn("clock.trust_host is set: this machine's clock is trusted as if NTP had synchronised it (a development setting; never on a register)")
		}
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.RunDir == "" {
		o.RunDir = filepath.Join(filepath.Dir(o.Config.Ledger.Path), "dev")
	}
	return o, nil
}

// register is loyaltyd's parts, wired by open (open.go) and set going by
// start (start.go); the event loops (loops.go) and the status document and
// metrics (status.go) read them.
type register struct {
	o     Options
	cfg   *config.Config
	log   *slog.Logger
	start time.Time

	led *ledger.Ledger
	rep *replica.Replica // the second copy; nil when ledger.replica_dir is not set

	mgr     *manager.Manager
	input   checkout.DeviceInput // device events -> checkout events
	disp    display.Display      // never nil: a no-op when none is configured
	dispMu  sync.Mutex
	scans   scanWaiters // outcomes of injected scans (loyaltyctl scan)
	outputs *signal.Outputs
	sigs    chan checkout.SignalKind

	up      *uplink.Uplink
	hqcfg   *configState // versions of head office's config in force
	syncErr error        // why sync could not start; the register then runs offline

	drv     *checkout.Driver
	hub     *kiosk.Hub
	metrics *metrics.Set

	fault atomic.Value // string: the clock fault shown to the cashier
	// notice is what else the idle display shows ([2]string, empty: none):
	// head office holding this register's sales, a session takeover.
	notice atomic.Value
}

// Run starts loyaltyd and blocks until ctx is cancelled and shutdown is
// done: open the parts (ledger first), start the listeners and loops, say
// ready, and on cancellation stop them within the bound before the ledger
// closes.
func Run(ctx context.Context, o Options) (err error) {
	if o, err = o.withDefaults(); err != nil {
		return err
	}
	r := &register{o: o, cfg: o.Config, log: o.Logger, start: time.Now(), metrics: metrics.NewSet(),
		sigs: make(chan checkout.SignalKind, 8)}
	if err := r.openLedger(ctx); err != nil {
		return err
	}
	defer r.closeLedger(&err)

	run := newRunning(o.ShutdownTimeout, r.log)
	// On every way out (errors during start included): stop the goroutines
	// and wait for them, within the bound, before the ledger closes.
	defer run.halt()
	handler, err := r.open()
	if err != nil {
		return err
	}
	addr, err := r.startAll(run, handler)
	if err != nil {
		return err
	}
	r.ready(run, addr)

	<-ctx.Done()
	run.shutdown()
	return nil // the device manager closed the display and simulators
}
