package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/api"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/kiosk"
	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/display"
	"github.com/loyalty-terminal/loyalty/device/manager"
	"github.com/loyalty-terminal/loyalty/device/signal"
	"github.com/loyalty-terminal/loyalty/internal/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
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
}

// Errors.
var (
	ErrConfig = errors.New("daemon: unusable configuration")
)

type d struct {
	o       Options
	cfg     *config.Config
	log     *slog.Logger
	led     *ledger.Ledger
	drv     *checkout.Driver
	hub     *kiosk.Hub
	mgr     *manager.Manager
	disp    display.Display // never nil: a no-op when none is configured
	dispMu  sync.Mutex
	sigs    chan checkout.SignalKind
	outputs *signal.Outputs
	up      *uplink.Uplink
	hqcfg   *configState // versions of head office's config in force
	set     *metrics.Set
	start   time.Time
	syncErr error // why sync could not start; the register then runs offline
}

// Run starts loyaltyd and blocks until ctx is cancelled and shutdown is
// done.
func Run(ctx context.Context, o Options) (err error) {
	if o.Config == nil {
		return fmt.Errorf("%w: no config", ErrConfig)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	tc := &TrustedClock{}
	if o.Clock == nil {
		o.Clock = tc
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	cfg := o.Config
	if o.RunDir == "" {
		o.RunDir = filepath.Join(filepath.Dir(cfg.Ledger.Path), "dev")
	}
	x := &d{o: o, cfg: cfg, log: o.Logger, set: metrics.NewSet(), start: time.Now(),
		sigs: make(chan checkout.SignalKind, 8)}

	// Ledger first: nothing else is useful without it.
	if err := os.MkdirAll(filepath.Dir(cfg.Ledger.Path), 0o750); err != nil {
		return fmt.Errorf("ledger dir: %w", err)
	}
	x.led, err = ledger.Open(cfg.Ledger.Path, &ledger.Options{
		Register: cfg.Register.ID, LockTimeout: cfg.Ledger.LockTimeout, Clock: o.Clock, Rules: cfg.Rules,
		OfflineRedeemLimit: ledger.Points(cfg.Ledger.OfflineRedeemLimit), Logger: o.Logger.With("subsystem", "ledger"),
	})
	if err != nil {
		return fmt.Errorf("open ledger %s: %w", cfg.Ledger.Path, err)
	}
	defer func() {
		if cerr := x.led.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close ledger: %w", cerr)
		}
		x.log.Info("ledger closed", "path", cfg.Ledger.Path)
	}()
	if len(cfg.Catalogue.Items) > 0 {
		items := make([]ledger.Item, 0, len(cfg.Catalogue.Items))
		for _, it := range cfg.Catalogue.Items {
			items = append(items, ledger.Item{SKU: it.SKU, Name: it.Name, Price: ledger.Money(it.Price), Category: it.Category})
		}
		switch err := x.led.PutCatalogue(ctx, cfg.Catalogue.Version, items); {
		case errors.Is(err, ledger.ErrStaleVersion):
			// The ledger already holds this version (a restart) or a newer
			// one from head office: keep what is there.
			x.log.Debug("catalogue in the ledger is current", "config_version", cfg.Catalogue.Version)
		case err != nil:
			return fmt.Errorf("load catalogue: %w", err)
		}
	}

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var servers []*http.Server
	// On every way out (errors during start included): stop the goroutines
	// and wait for them, within the bound, before the ledger closes.
	defer func() {
		stop()
		for _, s := range servers {
			_ = s.Close()
		}
		if !waitBounded(&wg, o.ShutdownTimeout) {
			x.log.Warn("shutdown bound reached; closing the ledger with devices still stopping")
		}
	}()

	if err := x.openDevices(); err != nil {
		return err
	}
	if cfg.Sync.Enabled {
		// A broken sync setup (a missing password or certificate file)
		// must not stop sales: the register runs offline, says so on the
		// signal and in status, and keeps every event for later.
		if err := x.openUplink(); err != nil {
			x.syncErr = err
			x.log.Error("sync not started: running offline until the config is fixed", "err", err)
		}
	}

	var rewards []rules.Reward
	if cfg.Rules != nil {
		rewards = cfg.Rules.Rewards
	}
	if x.hqcfg != nil {
		if rs := x.hqcfg.Rules(); rs != nil {
			rewards = rs.Rewards // head office's rule set is the one in force
		}
	}
	x.hub = kiosk.New(kiosk.Options{Language: firstNonEmpty(cfg.Kiosk.Language, cfg.Register.Language)})
	m := checkout.New(checkout.Options{
		Register: cfg.Register.ID, Catalog: x.led, Members: x.led, Recorder: x.led,
		Rewards: checkout.SortRewards(rewards), Online: x.online, Width: cfg.Devices.Display.Width,
		Decimals:     decimals(cfg),
		AbandonAfter: cfg.Checkout.AbandonAfter, ReceiptHold: cfg.Checkout.ReceiptFor, PromptEvery: cfg.Checkout.PromptEvery,
		Prompt:   promptFunc(x.led, o.Clock, rewards, location(cfg.Register.TimeZone, x.log), x.log),
		NextTier: nextTierFunc(x.led, o.Clock, cfg.Rules),
		// the balance reaches the display before the history is read
		DeferPrompt: true,
	})
	x.drv = checkout.NewDriver(m, x.apply)
	if x.hqcfg != nil {
		x.hqcfg.OnRules = func(rs *rules.RuleSet) { x.drv.SetRewards(rs.Rewards) }
	}
	x.metrics()

	srv := api.New(api.Options{
		Ledger: x.led, Checkout: x.drv, Token: cfg.API.Token, MaxBody: cfg.API.MaxBody,
		Status: x.status, Online: x.online, Scan: x.scan, Clock: o.Clock, Rewards: rewards,
		Metrics: x.set, Logger: o.Logger.With("subsystem", "api"),
	})
	var extra http.Handler
	if cfg.Kiosk.Enabled {
		extra = x.hub.Handler()
	}
	handler := srv.Handler(extra)
	var listenAddr string
	if cfg.API.Listen != "" && cfg.API.Listen != "off" {
		ln, err := net.Listen("tcp", cfg.API.Listen)
		if err != nil {
			return fmt.Errorf("api listen %s: %w", cfg.API.Listen, err)
		}
		listenAddr = ln.Addr().String()
		servers = append(servers, serve(&wg, ln, handler, x.log))
	}
	if cfg.API.Socket != "" {
		_ = os.Remove(cfg.API.Socket) // a stale socket from a crash; the ledger lock already proves we are alone
		ln, err := net.Listen("unix", cfg.API.Socket)
		if err != nil {
			return fmt.Errorf("api socket %s: %w", cfg.API.Socket, err)
		}
		_ = os.Chmod(cfg.API.Socket, 0o660)
		servers = append(servers, serve(&wg, ln, handler, x.log))
		defer os.Remove(cfg.API.Socket)
	}

	// Devices, signals, sync, housekeeping.
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := x.mgr.Run(runCtx); err != nil {
			x.log.Error("devices stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-runCtx.Done():
				return
			case ev := <-x.mgr.Events():
				x.onDevice(ev)
			}
		}
	}()
	wg.Add(2)
	go func() { defer wg.Done(); x.signalLoop(runCtx) }()
	go func() { defer wg.Done(); x.tickLoop(runCtx) }()
	if x.up != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := x.up.Run(runCtx); err != nil {
				x.log.Error("sync stopped", "err", err)
			}
		}()
	}
	x.clearDisplay()
	_ = x.hub.Publish(x.drv.View())

	ready := time.Since(x.start)
	x.log.Info("loyaltyd ready", "register", cfg.Register.ID, "ledger", cfg.Ledger.Path, "api", listenAddr,
		"socket", cfg.API.Socket, "start_ms", ready.Milliseconds(), "clock_trusted", x.clockTrusted(), "version", o.Version)
	x.printHints(listenAddr)
	if ok, err := sd.SdNotify(false, sd.SdNotifyReady+"\nSTATUS=ready"); err != nil {
		x.log.Warn("systemd notify failed", "err", err)
	} else if !ok {
		x.log.Debug("not under systemd: no readiness notification sent")
	}
	wg.Add(1)
	go func() { defer wg.Done(); x.watchdog(runCtx) }()

	<-ctx.Done()
	x.log.Info("shutting down", "timeout", o.ShutdownTimeout)
	_, _ = sd.SdNotify(false, sd.SdNotifyStopping)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	// Stop taking requests; Shutdown waits for in-flight ones (a sale being
	// recorded finishes and is acknowledged) up to the bound.
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			x.log.Warn("api shutdown", "err", err)
			_ = s.Close()
		}
	}
	stop()
	if !waitBounded(&wg, time.Until(deadlineOf(sctx))) {
		x.log.Warn("shutdown bound reached; closing the ledger with devices still stopping")
	}
	return nil // the device manager closed the display and simulators
}

// waitBounded waits for wg at most d; it reports whether wg finished.
func waitBounded(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func serve(wg *sync.WaitGroup, ln net.Listener, h http.Handler, log *slog.Logger) *http.Server {
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api server stopped", "err", err)
		}
	}()
	return s
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func location(name string, log *slog.Logger) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		log.Warn("unknown time zone, using UTC", "timezone", name, "err", err)
		return time.UTC
	}
	return loc
}

func decimals(cfg *config.Config) int {
	if cfg.Rules == nil || cfg.Rules.Unit <= 0 {
		return 2
	}
	n, u := 0, cfg.Rules.Unit
	for u >= 10 {
		u /= 10
		n++
	}
	return n
}

func (x *d) clockTrusted() bool {
	_, trusted := x.o.Clock.Now()
	return trusted
}

func (x *d) online() bool {
	if x.syncErr != nil {
		return false
	}
	if x.up == nil {
		return true // standalone register: no head office to be away from
	}
	return x.up.Status().Online
}

// ctlCommand is how a person at this terminal runs loyaltyctl: the name
// when it is on PATH, else its path next to loyaltyd (bin/ after make).
func ctlCommand() string {
	if _, err := exec.LookPath("loyaltyctl"); err == nil {
		return "loyaltyctl"
	}
	exe, err := os.Executable()
	if err != nil {
		return "loyaltyctl"
	}
	p := filepath.Join(filepath.Dir(exe), "loyaltyctl")
	if _, err := os.Stat(p); err != nil {
		return "loyaltyctl"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}

func (x *d) printHints(addr string) {
	w := x.o.Out
	ctl := ctlCommand()
	if addr != "" && addr != "127.0.0.1:8080" {
		ctl += " -addr http://" + addr
	}
	fmt.Fprintf(w, "\nloyaltyd %s is ready (register %s, ledger %s)\n", x.o.Version, x.cfg.Register.ID, x.cfg.Ledger.Path)
	var first *manager.SimDevice
	for _, s := range x.mgr.Simulated() {
		if x.mgr.SimScanner(s.Name) != nil {
			first = &s
			break
		}
	}
	if first != nil {
		fmt.Fprintf(w, "Simulated scanner %q. In another terminal, scan an item:\n    %s scan 4006381333931\n", first.Name, ctl)
		fmt.Fprintf(w, "  (or: echo 4006381333931 > %s)\n", first.FIFO)
		fmt.Fprintf(w, "  enrol a member once:  %s member enrol -id 2990000000002 -name Dana\n", ctl)
		fmt.Fprintf(w, "  scan the member card: %s scan 2990000000002\n", ctl)
		fmt.Fprintf(w, "  complete the sale:    %s scan '*TOTAL*'\n", ctl)
	}
	for _, s := range x.mgr.Simulated() {
		if x.mgr.SimWiegand(s.Name) {
			fmt.Fprintf(w, "Simulated Wiegand reader %q: present a card (facility-number):\n    %s scan -device %s 123-45678\n", s.Name, ctl, s.Name)
		}
	}
	if addr != "" {
		if x.cfg.Kiosk.Enabled {
			fmt.Fprintf(w, "Kiosk page (customer screen): http://%s/\n", addr)
		}
		fmt.Fprintf(w, "Status: %s status   API: http://%s/v1/status\n\n", ctl, addr)
	}
}

func (x *d) openUplink() error {
	sc := x.cfg.Sync
	var pw string
	if sc.PasswordFile != "" {
		b, err := os.ReadFile(sc.PasswordFile)
		if err != nil {
			return fmt.Errorf("sync password: %w", err)
		}
		pw = strings.TrimSpace(string(b))
	}
	tlsCfg, err := tlsConfig(sc.CAFile, sc.CertFile, sc.KeyFile)
	if err != nil {
		return err
	}
	x.hqcfg, err = loadConfigState(x.led, x.log.With("subsystem", "config"))
	if err != nil {
		return err
	}
	up, err := uplink.New(x.led, &uplink.Options{
		Brokers: []string{sc.Broker}, Store: firstNonEmpty(sc.Store, x.cfg.Register.StoreID), Register: x.cfg.Register.ID,
		ClientID: sc.ClientID, Username: sc.Username, Password: pw, TLS: tlsCfg, Window: sc.Window, KeepAlive: sc.KeepAlive,
		Clock: x.o.Clock, Logger: x.log.With("subsystem", "sync"),
		OnMembers: uplink.ApplyMembersTo(x.led, x.cfg.Register.ID),
		// Rules and catalogues from head office; started with the versions
		// in force so the retained copies are recognised after a restart.
		OnConfig:       x.hqcfg.Apply,
		ConfigVersions: x.hqcfg.Versions(),
	})
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	x.up = up
	return nil
}

// ---- events and effects ----

func (x *d) onDevice(ev device.Event) {
	ctx := context.Background()
	var ce checkout.Event
	switch ev.Kind {
	case device.KindItem:
		ce = checkout.Event{Kind: checkout.EvItem, Code: ev.Payload}
		if ev.Item != nil && ev.Item.WeightGrams > 0 {
			// a weight-embedded label: the catalogue holds the article
			// (prefix + article digits) at its price per kilogram
			if sku, ok := x.weighedArticle(ev.Payload); ok {
				ce = checkout.Event{Kind: checkout.EvItem, Code: sku, WeightGrams: ev.Item.WeightGrams}
			}
		}
		if ev.Item != nil && ev.Item.PriceMinor > 0 {
			// a price-embedded label: priced by the label when the article is unknown
			if _, err := x.led.Item(ev.Payload); err != nil {
				ce = checkout.Event{Kind: checkout.EvManualItem, Code: ev.Payload, Price: ledger.Money(ev.Item.PriceMinor)}
			}
		}
	case device.KindMember:
		ce = checkout.Event{Kind: checkout.EvCard, Code: ev.Payload}
	case device.KindControl, device.KindButton:
		ce = checkout.Event{Kind: checkout.EvControl, Action: actionName(ev.Action)}
	case device.KindReject:
		x.log.Info("input refused", "device", ev.Device, "reason", device.ReasonLabel(ev.Reason), "err", ev.Reason)
		x.set.GetOrCreateCounter(fmt.Sprintf(`loyalty_input_rejects_total{reason=%q}`, device.ReasonLabel(ev.Reason))).Inc()
		msg := rejectMessage(ev.Reason)
		if msg == "" {
			return // line noise, a bounce: nothing a person did
		}
		ce = checkout.Event{Kind: checkout.EvReject, Code: msg}
	default:
		return
	}
	ce.Source = ev.Device
	start := time.Now()
	fx := x.drv.Do(ctx, ce)
	x.set.GetOrCreateHistogram(`loyalty_input_to_effect_seconds`).UpdateDuration(start)
	if fx.Err != nil {
		x.log.Info("checkout refused input", "device", ev.Device, "kind", ev.Kind.String(), "err", fx.Err)
	}
}

// weighedArticle is the catalogue SKU of a weight-embedded in-store label:
// its prefix and article digits (label 2112345012346 with prefix "21" and 5
// article digits: SKU "2112345").
func (x *d) weighedArticle(code string) (string, bool) {
	for _, p := range x.cfg.InstorePrefixes {
		n := len(p.Prefix) + p.ArticleDigits
		if p.Kind == "weight" && strings.HasPrefix(code, p.Prefix) && len(code) >= n {
			return code[:n], true
		}
	}
	return "", false
}

// rejectMessage is the fixed text shown for a refused input ("" for input
// no person produced). It never contains the input itself: a payment card
// number must not reach the display or the kiosk.
func rejectMessage(err error) string {
	switch {
	case errors.Is(err, device.ErrNotMemberCard):
		return "Not a member card"
	case errors.Is(err, device.ErrUnknownCode):
		return "Unknown code"
	case errors.Is(err, device.ErrBadCheckDigit), errors.Is(err, device.ErrHalfSwipe), errors.Is(err, device.ErrTrackError),
		errors.Is(err, device.ErrBadTrack), errors.Is(err, device.ErrBitCount), errors.Is(err, device.ErrParity), errors.Is(err, device.ErrTooLong):
		return "Not read - try again"
	}
	return ""
}

// actionName maps device/config action names onto checkout actions.
func actionName(a string) string {
	switch strings.ToLower(a) {
	case "complete", "total":
		return checkout.ActComplete
	case "cancel":
		return checkout.ActCancel
	case "redeem":
		return checkout.ActRedeem
	case "show_points", "points":
		return checkout.ActPoints
	}
	return a
}

// apply runs inside the checkout driver: the display is written before the
// next event is handled, signals and the kiosk never block it.
func (x *d) apply(ctx context.Context, fx checkout.Effects) {
	if fx.Display != nil {
		x.dispMu.Lock()
		var err error
		if *fx.Display == (checkout.Display{}) {
			err = x.disp.Clear(ctx)
		} else {
			err = x.disp.Show(ctx, [2]string{fx.Display.Line1, fx.Display.Line2})
		}
		x.dispMu.Unlock()
		if err != nil {
			x.log.Warn("customer display write failed", "err", err)
		}
	}
	for _, s := range fx.Signals {
		x.signal(s)
	}
	if fx.Sale != nil && !fx.Sale.Replayed {
		x.set.GetOrCreateCounter(`loyalty_sales_total{source="checkout"}`).Inc()
		x.log.Info("sale recorded", "sale", fx.Sale.Sale.ID, "member", fx.Sale.Sale.MemberID, "total", fx.Sale.Sale.Total,
			"earned", fx.Sale.Earned, "balance", fx.Sale.Balance)
	}
	_ = x.hub.Publish(fx.View)
}

func (x *d) clearDisplay() {
	x.dispMu.Lock()
	defer x.dispMu.Unlock()
	if err := x.disp.Clear(context.Background()); err != nil {
		x.log.Warn("customer display not reachable yet", "err", err)
	}
}

func (x *d) signal(s checkout.SignalKind) {
	select {
	case x.sigs <- s:
	default: // a burst of signals: the cashier hears the ones queued
	}
}

func (x *d) signalLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-x.sigs:
			x.set.GetOrCreateCounter(fmt.Sprintf(`loyalty_signals_total{kind=%q}`, s)).Inc()
			x.log.Debug("signal", "kind", string(s))
			if x.outputs == nil {
				continue
			}
			p := signal.OK
			switch s {
			case checkout.SignalError:
				p = signal.Error
			case checkout.SignalOffline:
				p = signal.Offline
			}
			if err := x.outputs.Play(ctx, p); err != nil && ctx.Err() == nil {
				x.log.Warn("signal failed", "err", err)
			}
		}
	}
}

func (x *d) tickLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	online := x.online()
	lastExpire := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		x.drv.Do(ctx, checkout.Event{Kind: checkout.EvTick})
		if on := x.online(); on != online {
			online = on
			x.drv.Do(ctx, checkout.Event{Kind: checkout.EvOnline, Online: on})
			x.log.Info("head office link", "online", on)
		}
		// Point expiry is a time-based decision: only with a trusted clock.
		if time.Since(lastExpire) > time.Hour && x.clockTrusted() {
			lastExpire = time.Now()
			if n, err := x.led.ExpireDue(ctx); err != nil {
				x.log.Warn("expiry run failed", "err", err)
			} else if n > 0 {
				x.log.Info("points expired", "lots", n)
			}
		}
	}
}

func (x *d) watchdog(ctx context.Context) {
	iv, err := sd.SdWatchdogEnabled(false)
	if err != nil || iv == 0 {
		x.log.Debug("no systemd watchdog", "err", err)
		return
	}
	t := time.NewTicker(iv / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Ping only while the ledger answers: a wedged register is
			// restarted by systemd instead of pretending to be alive.
			if _, err := x.led.Stats(); err != nil {
				x.log.Error("ledger not answering: withholding watchdog ping", "err", err)
				continue
			}
			_, _ = sd.SdNotify(false, sd.SdNotifyWatchdog)
		}
	}
}

func (x *d) scan(_ context.Context, dev, code string) error {
	sims := x.mgr.Simulated()
	if dev == "" {
		for _, s := range sims {
			if x.mgr.SimScanner(s.Name) != nil {
				dev = s.Name
				break
			}
		}
		if dev == "" {
			return errors.New("no simulated scanner configured")
		}
	}
	return x.mgr.Inject(dev, code)
}

// Status is the document of GET /v1/status.
type Status struct {
	Version      string             `json:"version"`
	Register     string             `json:"register"`
	Store        string             `json:"store"`
	UptimeS      int64              `json:"uptime_s"`
	ClockTrusted bool               `json:"clock_trusted"`
	Ledger       *api.LedgerStatus  `json:"ledger,omitempty"`
	LedgerError  string             `json:"ledger_error,omitempty"`
	Devices      []api.DeviceStatus `json:"devices"`
	Sync         SyncStatus         `json:"sync"`
	Checkout     string             `json:"checkout"`
	SimDevices   map[string]string  `json:"simulated_devices,omitempty"`
}

// SyncStatus is the sync part of Status: "online/offline, N pending,
// oldest T".
type SyncStatus struct {
	Enabled   bool      `json:"enabled"`
	Online    bool      `json:"online"`
	Pending   int       `json:"pending"`
	Oldest    time.Time `json:"oldest,omitzero"`
	LagS      int64     `json:"lag_s"`
	LastError string    `json:"last_error,omitempty"`
	Summary   string    `json:"summary"`
	// Config are head office's config versions in force (chain, store);
	// ConfigError is why the last config document was refused (the
	// previous one stays in force), empty after an accepted one.
	Config      *uplink.ConfigVersions `json:"config,omitempty"`
	ConfigError string                 `json:"config_error,omitempty"`
}

func (x *d) status(context.Context) any {
	st := Status{Version: x.o.Version, Register: x.cfg.Register.ID, Store: x.cfg.Register.StoreID,
		UptimeS: int64(time.Since(x.start).Seconds()), ClockTrusted: x.clockTrusted(), Devices: []api.DeviceStatus{}}
	if ls, err := x.led.Stats(); err != nil {
		st.LedgerError = err.Error()
	} else {
		l := api.NewLedgerStatus(ls)
		st.Ledger = &l
	}
	for _, d := range x.mgr.Health() {
		st.Devices = append(st.Devices, api.DeviceStatus{Name: d.Name, Path: d.Path, State: string(d.State), LastError: d.LastError,
			Reopens: d.Reopens, Frames: d.Frames, Rejects: d.Rejects, Faults: d.Faults})
	}
	if sims := x.mgr.Simulated(); len(sims) > 0 {
		st.SimDevices = map[string]string{}
		for _, s := range sims {
			st.SimDevices[s.Name] = s.Path
		}
	}
	st.Checkout = x.drv.View().State
	if x.up != nil {
		u := x.up.Status()
		st.Sync = SyncStatus{Enabled: true, Online: u.Online, Pending: u.Pending, Oldest: u.Oldest, LastError: u.LastError,
			Config: &u.Config, ConfigError: u.ConfigError}
		if !u.Oldest.IsZero() {
			st.Sync.LagS = int64(time.Since(u.Oldest).Seconds())
		}
	} else if ls, err := x.led.Stats(); err == nil {
		st.Sync = SyncStatus{Online: x.syncErr == nil, Pending: ls.OutboxPending, Enabled: x.syncErr != nil}
		if x.syncErr != nil {
			st.Sync.LastError = "sync not started: " + x.syncErr.Error()
		}
	}
	state := "online"
	if !st.Sync.Online {
		state = "offline"
	}
	if !st.Sync.Enabled {
		state = "disabled"
	}
	st.Sync.Summary = fmt.Sprintf("%s, %d pending", state, st.Sync.Pending)
	if !st.Sync.Oldest.IsZero() {
		st.Sync.Summary += ", oldest " + st.Sync.Oldest.UTC().Format(time.RFC3339)
	}
	return st
}

func (x *d) metrics() {
	x.set.NewGauge(`loyalty_clock_trusted`, func() float64 { return b2f(x.clockTrusted()) })
	x.set.NewGauge(`loyalty_sync_online`, func() float64 { return b2f(x.online()) })
	x.set.NewGauge(`loyalty_outbox_pending`, func() float64 {
		s, err := x.led.Stats()
		if err != nil {
			return -1
		}
		return float64(s.OutboxPending)
	})
	x.set.NewGauge(`loyalty_kiosk_clients`, func() float64 { return float64(x.hub.Clients()) })
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
