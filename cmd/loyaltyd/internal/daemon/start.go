package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// running is what start set going: the API servers and the goroutines,
// stopped together within one bound.
type running struct {
	ctx     context.Context // cancelled by stop
	stop    context.CancelFunc
	wg      sync.WaitGroup
	servers []*http.Server
	socket  string   // the API's unix socket, removed on the way out
	first   []func() // run before the servers shut down (end the kiosk's live streams)
	timeout time.Duration
	// deadline is when a graceful shutdown's bound ends; halt, which
	// follows it, waits only for what is left of it (one bound in all).
	deadline time.Time
	log      *slog.Logger
	// readTimeout is api.read_timeout (0: none).
	readTimeout time.Duration
}

func newRunning(timeout time.Duration, log *slog.Logger) *running {
	ctx, stop := context.WithCancel(context.Background())
	return &running{ctx: ctx, stop: stop, timeout: timeout, log: log}
}

// goRun runs fn in a goroutine that stop waits for.
func (g *running) goRun(fn func(ctx context.Context)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(g.ctx)
	}()
}

// serve serves h on ln until stopped.
func (g *running) serve(ln net.Listener, h http.Handler) {
	// ReadTimeout bounds reading a request (a slow or stuck client cannot
	// hold a connection); it does not cut the kiosk's event stream, which
	// only writes.
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: g.readTimeout, IdleTimeout: 60 * time.Second, ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)}
	g.servers = append(g.servers, s)
	g.goRun(func(context.Context) {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("api server stopped", "err", err)
		}
	})
}

// shutdown is the graceful way out: stop taking requests, let in-flight
// ones finish (a sale being recorded is acknowledged), then stop the loops,
// all within the bound.
func (g *running) shutdown() {
	g.log.Info("shutting down", "timeout", g.timeout)
	_, _ = sd.SdNotify(false, sd.SdNotifyStopping)
	g.deadline = time.Now().Add(g.timeout)
	sctx, cancel := context.WithDeadline(context.Background(), g.deadline)
	defer cancel()
	for _, f := range g.first {
		f()
	}
	for _, s := range g.servers {
		if err := s.Shutdown(sctx); err != nil {
			g.log.Warn("api shutdown", "err", err)
			_ = s.Close()
		}
	}
	g.stop()
	if !waitBounded(&g.wg, time.Until(g.deadline)) {
		g.log.Warn("shutdown bound reached; closing the ledger with devices still stopping")
	}
}

// halt runs on every way out, errors during start included: stop the
// goroutines, close the servers and wait for them within the bound.
func (g *running) halt() {
	if g.socket != "" {
		_ = os.Remove(g.socket)
	}
	g.stop()
	for _, s := range g.servers {
		_ = s.Close()
	}
	bound := g.timeout
	if !g.deadline.IsZero() {
		// after shutdown: what is left of its bound, not a second one
		// (systemd's TimeoutStopSec counts from the same SIGTERM)
		bound = time.Until(g.deadline)
	}
	if !waitBounded(&g.wg, bound) {
		g.log.Warn("shutdown bound reached; closing the ledger with devices still stopping")
	}
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

// startAll opens the API's listeners and starts the devices, the loops
// and the uplink; it returns the TCP address the API listens on ("" when
// none).
func (r *register) startAll(run *running, handler http.Handler) (string, error) {
	addr, err := r.listen(run, handler)
	if err != nil {
		return "", err
	}
	run.first = append(run.first, r.hub.Close) // open kiosk pages never hold the shutdown
	run.goRun(func(ctx context.Context) {
		if err := r.mgr.Run(ctx); err != nil {
			r.log.Error("devices stopped", "err", err)
		}
	})
	run.goRun(r.deviceLoop)
	run.goRun(r.signalLoop)
	run.goRun(r.tickLoop)
	if r.rep != nil {
		run.goRun(r.rep.Run)
	}
	if r.up != nil {
		run.goRun(func(ctx context.Context) {
			if err := r.up.Run(ctx); err != nil {
				r.log.Error("sync stopped", "err", err)
			}
		})
	}
	r.clearDisplay()
	r.restoreBasket() // the basket open before a restart, or word that it was lost
	_ = r.hub.Publish(r.drv.View())
	return addr, nil
}

// listen serves the API on its TCP address and unix socket, as configured.
func (r *register) listen(run *running, handler http.Handler) (string, error) {
	c := r.cfg.API
	run.readTimeout = c.ReadTimeout
	var addr string
	if c.Listen != "" && c.Listen != "off" {
		ln, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return "", fmt.Errorf("api listen %s: %w", c.Listen, err)
		}
		addr = ln.Addr().String()
		if c.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				ln.Close()
				return "", fmt.Errorf("api tls %s: %w", c.TLSCertFile, err)
			}
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
			r.log.Info("api speaks HTTPS only", "listen", addr, "cert", c.TLSCertFile)
		}
		run.serve(ln, handler)
	}
	if c.Socket != "" {
		_ = os.Remove(c.Socket) // a stale socket from a crash; the ledger lock already proves we are alone
		ln, err := net.Listen("unix", c.Socket)
		if err != nil {
			return "", fmt.Errorf("api socket %s: %w", c.Socket, err)
		}
		_ = os.Chmod(c.Socket, 0o660)
		run.socket = c.Socket
		run.serve(ln, handler)
	}
	return addr, nil
}

// ready says the register is ready: in the log, to the person at the
// terminal, and to systemd, whose watchdog it then pings.
func (r *register) ready(run *running, addr string) {
	cfg := r.cfg
	r.log.Info("loyaltyd ready", "register", cfg.Register.ID, "ledger", cfg.Ledger.Path, "api", addr,
		"socket", cfg.API.Socket, "start_ms", time.Since(r.start).Milliseconds(), "clock_trusted", r.clockTrusted(), "version", r.o.Version)
	r.printHints(addr)
	if ok, err := sd.SdNotify(false, sd.SdNotifyReady+"\nSTATUS=ready"); err != nil {
		r.log.Warn("systemd notify failed", "err", err)
	} else if !ok {
		r.log.Debug("not under systemd: no readiness notification sent")
	}
	run.goRun(r.watchdog)
}

func (r *register) watchdog(ctx context.Context) {
	iv, err := sd.SdWatchdogEnabled(false)
	if err != nil || iv == 0 {
		r.log.Debug("no systemd watchdog", "err", err)
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
			if _, err := r.led.Stats(); err != nil {
				r.log.Error("ledger not answering: withholding watchdog ping", "err", err)
				continue
			}
			_, _ = sd.SdNotify(false, sd.SdNotifyWatchdog)
		}
	}
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

func (r *register) printHints(addr string) {
	w := r.o.Out
	ctl := ctlCommand()
	// With api.tls_cert_file the listener speaks HTTPS only: the hints
	// said http:// (and their loyaltyctl -addr failed with http_400).
	scheme := "http"
	if r.cfg.API.TLSCertFile != "" {
		scheme = "https"
	}
	switch {
	case addr != "" && scheme == "https" && r.o.ConfigPath != "":
		// loyaltyctl trusts the certificate it reads in this config; its
		// default config may be another file.
		ctl += " -config " + r.o.ConfigPath + " -addr " + scheme + "://" + addr
	case addr != "" && (addr != "127.0.0.1:8080" || scheme == "https"):
		ctl += " -addr " + scheme + "://" + addr
	case addr == "" && r.cfg.API.Socket != "":
		// api.listen off: the hints' loyaltyctl went to 127.0.0.1:8080
		ctl += " -socket " + r.cfg.API.Socket
	}
	fmt.Fprintf(w, "\nloyaltyd %s is ready (register %s, ledger %s)\n", r.o.Version, r.cfg.Register.ID, r.cfg.Ledger.Path)
	switch _, trusted := r.o.Clock.Now(); {
	case r.cfg.Clock.TrustHost:
		fmt.Fprintf(w, "Clock: this machine's clock is trusted (clock.trust_host, a development setting): campaigns, expiry and prompts run.\n")
	case !trusted:
		fmt.Fprintf(w, "Clock: not synchronised by NTP yet, so campaigns, expiry and prompts wait (status shows when it is).\n")
	}
	if name, fifo, ok := r.firstSimScanner(); ok {
		fmt.Fprintf(w, "Simulated scanner %q. In another terminal, scan an item:\n    %s scan 4006381333931\n", name, ctl)
		fmt.Fprintf(w, "  (or: echo 4006381333931 > %s)\n", fifo)
		fmt.Fprintf(w, "  enrol a member once:  %s member enrol -id 2990000000002 -name Dana\n", ctl)
		fmt.Fprintf(w, "  scan the member card: %s scan 2990000000002\n", ctl)
		fmt.Fprintf(w, "  complete the sale:    %s scan '*TOTAL*'\n", ctl)
	}
	for _, s := range r.mgr.Simulated() {
		if r.mgr.SimWiegand(s.Name) {
			fmt.Fprintf(w, "Simulated Wiegand reader %q: present a card (facility-number):\n    %s scan -device %s 123-45678\n", s.Name, ctl, s.Name)
		}
	}
	if addr != "" {
		if r.cfg.Kiosk.Enabled {
			fmt.Fprintf(w, "Kiosk page (customer screen): %s://%s/\n", scheme, addr)
		}
		fmt.Fprintf(w, "Status: %s status   API: %s://%s/v1/status\n", ctl, scheme, addr)
		if scheme == "https" {
			fmt.Fprintf(w, "  (HTTPS only: loyaltyctl trusts %s when it reads this daemon's config: -config FILE or LOYALTY_CONFIG)\n", r.cfg.API.TLSCertFile)
		}
		fmt.Fprintln(w)
	} else if r.cfg.API.Socket != "" {
		fmt.Fprintf(w, "Status: %s status   API: unix socket %s\n\n", ctl, r.cfg.API.Socket)
	}
}

// firstSimScanner is the first simulated scanner: its name and FIFO.
func (r *register) firstSimScanner() (name, fifo string, ok bool) {
	for _, s := range r.mgr.Simulated() {
		if r.mgr.SimScanner(s.Name) != nil {
			return s.Name, s.FIFO, true
		}
	}
	return "", "", false
}
