// Command loyaltyd is the register daemon: it reads the scanners and card
// readers, runs the checkout, records sales and points in the local ledger,
// shows the customer display and kiosk page, serves the local API and syncs
// to head office. main only parses flags and wires; see
// cmd/loyaltyd/internal/daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/daemon"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/tlscheck"
)

var version = "dev"

func main() {
	os.Exit(run())
}

func run() int {
	cfgPath := flag.String("config", "/etc/loyalty/loyaltyd.yaml", "config file")
	check := flag.Bool("check", false, "validate the config, the API token files, the broker password file and certificates (expiry, key match, CA chain) and exit")
	flag.BoolVar(check, "check-config", false, "same as -check")
	showVersion := flag.Bool("version", false, "print the version and exit")
	shutdown := flag.Duration("shutdown-timeout", 5*time.Second, "bound on graceful shutdown")
	testClock := flag.String("test-clock", "", "TEST ONLY: read the wall clock, its trust flag and the boot from this JSON file\n(daemon.TestClockFile); refused unless "+daemon.TestClockEnv+"="+daemon.TestClockConsent+" is set")
	flag.Parse()
	if *showVersion {
		fmt.Println("loyaltyd", version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loyaltyd: %v\n", err)
		return 2
	}
	certs := tlscheck.Check(tlscheck.Files{Prefix: "sync.", CA: cfg.Sync.CAFile, Cert: cfg.Sync.CertFile, Key: cfg.Sync.KeyFile}, time.Now())
	if *check {
		if certs != nil {
			fmt.Fprintf(os.Stderr, "loyaltyd: %s: %v\n", *cfgPath, certs)
			return 2
		}
		// The daemon stops at start on a token or password file it cannot
		// use; -check said ok for them.
		if err := daemon.CheckFiles(*cfg); err != nil {
			fmt.Fprintf(os.Stderr, "loyaltyd: %s: %v\n", *cfgPath, err)
			return 2
		}
		fmt.Printf("%s: ok\n", *cfgPath)
		return 0
	}
	_, journal := os.LookupEnv("JOURNAL_STREAM")
	log := daemon.NewLogger(os.Stderr, cfg.Log.Level, cfg.Log.Format, journal)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// SIGHUP (a closed terminal, a habit of `kill -HUP` for reloads) would
	// otherwise end the daemon silently: it is logged and ignored.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Warn("SIGHUP ignored: loyaltyd does not reload; restart it (systemctl restart loyaltyd) to apply a new config")
		}
	}()
	if certs != nil {
		log.Error("the broker certificates will not work; the register records sales and keeps them until they do", "err", certs)
	}
	opts := daemon.Options{Config: cfg, Logger: log, Version: version, ShutdownTimeout: *shutdown}
	if *cfgPath != "" {
		if abs, err := filepath.Abs(*cfgPath); err == nil {
			opts.ConfigPath = abs
		}
	}
	if *testClock != "" {
		c, err := daemon.NewTestClock(*testClock, os.Getenv(daemon.TestClockEnv))
		if err != nil {
			fmt.Fprintf(os.Stderr, "loyaltyd: %v\n", err)
			return 2
		}
		log.Warn("TEST CLOCK in use: the wall clock comes from a file", "file", *testClock)
		opts.Clock = c
	}
	err = daemon.Run(ctx, opts)
	if err != nil {
		log.Error("loyaltyd stopped", "err", err)
		switch {
		case errors.Is(err, ledger.ErrLocked):
			fmt.Fprintf(os.Stderr, "loyaltyd: the ledger %s is in use by another loyaltyd; stop it first (systemctl stop loyaltyd)\n", cfg.Ledger.Path)
		case errors.Is(err, ledger.ErrCorrupt):
			fmt.Fprintf(os.Stderr, "loyaltyd: the ledger %s is damaged and was not touched; restore the last backup (loyaltyctl backup) or call support\n", cfg.Ledger.Path)
		case errors.Is(err, ledger.ErrSchemaTooNew):
			fmt.Fprintf(os.Stderr, "loyaltyd: the ledger %s was written by a newer loyaltyd; install that version\n", cfg.Ledger.Path)
		}
		return 1
	}
	return 0
}
