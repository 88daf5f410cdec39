package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/api"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/kiosk"
	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/phone"
	"github.com/loyalty-terminal/loyalty/ledger/replica"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// openLedger opens the ledger and loads the configured catalogue: nothing
// else is useful without them.
func (r *register) openLedger(ctx context.Context) error {
	cfg := r.cfg
	if err := os.MkdirAll(filepath.Dir(cfg.Ledger.Path), 0o750); err != nil {
		return fmt.Errorf("ledger dir: %w", err)
	}
	led, err := ledger.Open(cfg.Ledger.Path, &ledger.Options{
		Register: cfg.Register.ID, LockTimeout: cfg.Ledger.LockTimeout, Clock: r.o.Clock, Rules: cfg.Rules,
		OfflineRedeemLimit: ledger.Points(cfg.Ledger.OfflineRedeemLimit), Logger: r.log.With("subsystem", "ledger"),
		KeepConfirmedFor: keepFor(cfg.Ledger.KeepConfirmedDays), KeepConfirmedBytes: cfg.Ledger.KeepConfirmedMB << 20,
	})
	if err != nil {
		return fmt.Errorf("open ledger %s: %w", cfg.Ledger.Path, err)
	}
	r.led = led
	if d := cfg.Ledger.ReplicaDir; d != "" {
		if r.rep, err = replica.New(led, replica.Options{Dir: d, Logger: r.log}); err != nil {
			r.closeLedger(&err)
			return err
		}
	}
	if err := r.loadCatalogue(ctx); err != nil {
		r.closeLedger(&err)
		return err
	}
	return nil
}

func (r *register) loadCatalogue(ctx context.Context) error {
	c := r.cfg.Catalogue
	if len(c.Items) == 0 {
		return nil
	}
	items := make([]ledger.Item, 0, len(c.Items))
	for _, it := range c.Items {
		items = append(items, ledger.Item{SKU: it.SKU, Name: it.Name, Price: ledger.Money(it.Price), Category: it.Category})
	}
	switch err := r.led.PutCatalogue(ctx, c.Version, items); {
	case errors.Is(err, ledger.ErrStaleVersion):
		// The ledger already holds this version (a restart) or a newer
		// one from head office: keep what is there.
		r.log.Debug("catalogue in the ledger is current", "config_version", c.Version)
	case err != nil:
		return fmt.Errorf("load catalogue: %w", err)
	}
	return nil
}

// closeLedger closes the ledger; a close error becomes *err unless there
// is one already.
func (r *register) closeLedger(err *error) {
	if cerr := r.led.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close ledger: %w", cerr)
	}
	r.log.Info("ledger closed", "path", r.cfg.Ledger.Path)
}

// open wires the parts around the ledger: devices, the uplink (a broken
// sync setup leaves the register offline, not stopped), the checkout, the
// metrics and the API. It starts nothing.
func (r *register) open() (http.Handler, error) {
	if err := r.openDevices(); err != nil {
		return nil, err
	}
	if r.cfg.Sync.Enabled {
		// A broken sync setup (a missing password or certificate file)
		// must not stop sales: the register runs offline, says so on the
		// signal and in status, and keeps every event for later.
		if err := r.openUplink(); err != nil {
			r.syncErr = err
			r.log.Error("sync not started: running offline until the config is fixed", "err", err)
		}
	}
	rewards := r.rewards()
	r.hub = kiosk.New(kiosk.Options{Language: firstNonEmpty(r.cfg.Kiosk.Language, r.cfg.Register.Language),
		Unit: r.unit(), Currency: r.cfg.Kiosk.Currency})
	r.drv = checkout.NewDriver(r.newMachine(rewards), r.apply)
	if r.hqcfg != nil {
		r.hqcfg.OnRules = func(rs *rules.RuleSet) { r.drv.SetRewards(rs.Rewards) }
	}
	r.registerMetrics()
	return r.newAPI(rewards)
}

// rewards is the rewards catalogue of the rule set in force in the ledger
// (head office's latest, or the configured one).
func (r *register) rewards() []rules.Reward {
	if rs := r.led.Rules(); rs != nil {
		return rs.Rewards
	}
	return nil
}

func (r *register) newMachine(rewards []rules.Reward) *checkout.Machine {
	cfg := r.cfg
	return checkout.New(checkout.Options{
		Register: cfg.Register.ID, Catalog: r.led, Members: r.askingMembers(), Recorder: r.led,
		Rewards: checkout.SortRewards(rewards), Online: r.online, Width: cfg.Devices.Display.Width,
		Decimals:     kiosk.Decimals(r.unit()),
		AbandonAfter: cfg.Checkout.AbandonAfter, ReceiptHold: cfg.Checkout.ReceiptFor, PromptEvery: cfg.Checkout.PromptEvery,
		CardFirstFor: cardFirstFor(cfg.Checkout.CardFirstFor),
		Prompt:       promptFunc(r.led, verdictClock{r.led, r.o.Clock}, location(cfg.Register.TimeZone, r.log), r.log),
		NextTier:     nextTierFunc(r.led),
		// the balance reaches the display before the history is read
		DeferPrompt: true,
	})
}

// newAPI is the local API's handler, with the kiosk page under "/" when
// it is enabled.
func (r *register) newAPI(rewards []rules.Reward) (http.Handler, error) {
	sec, err := apiSecrets(r.cfg.API)
	if err != nil {
		return nil, err
	}
	srv := api.New(api.Options{
		Ledger: r.askingMembers(), Checkout: r.drv, CheckAlias: r.checkAlias(), MaxBody: r.cfg.API.MaxBody,
		Token: sec.token, MetricsToken: sec.metricsToken, Hosts: sec.hosts,
		Status: r.status, Online: r.online, Scan: r.scan, Clock: verdictClock{r.led, r.o.Clock},
		Metrics: r.metrics, Logger: r.log.With("subsystem", "api"), Degraded: r.degraded,
		Restore: r.restore(),
	})
	var extra http.Handler
	if r.cfg.Kiosk.Enabled {
		extra = r.hub.Handler()
	}
	return srv.Handler(extra), nil
}

func (r *register) openUplink() error {
	sc := r.cfg.Sync
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
	r.hqcfg, err = loadConfigState(r.led, r.log.With("subsystem", "config"))
	if err != nil {
		return err
	}
	keys, err := signing.ParseKeyring(sc.HQKeys)
	if err != nil {
		return fmt.Errorf("sync.hq_keys: %w", err)
	}
	up, err := uplink.New(ledger.Wire{Ledger: r.led}, &uplink.Options{
		Brokers: []string{sc.Broker}, Store: firstNonEmpty(sc.Store, r.cfg.Register.StoreID), Register: r.cfg.Register.ID,
		ClientID: sc.ClientID, Username: sc.Username, Password: pw, TLS: tlsCfg, Window: sc.Window, KeepAlive: sc.KeepAlive,
		BackoffMax: sc.ReconnectMax, StatusInterval: sc.StatusInterval, AckTimeout: sc.AckTimeout,
		Clock: verdictClock{r.led, r.o.Clock}, Logger: r.log.With("subsystem", "sync"),
		OnMembers: uplink.ApplyMembersTo(r.led, r.cfg.Register.ID),
		// Head office's erasures (docs/protocol.md "Member erasure").
		OnErase: r.led.EraseMember,
		// Rules and catalogues from head office; started with the versions
		// in force so the retained copies are recognised after a restart.
		OnConfig:       r.hqcfg.Apply,
		OnPiecedConfig: r.hqcfg.ApplyPieced,
		OnPiece:        r.hqcfg.ApplyPiece,
		ConfigVersions: r.hqcfg.Versions(),
		Keys:           keys,
		NoAckFault:     sc.NoAckFaultAfter,
		Software:       r.o.Version,
	})
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	r.up = up
	return nil
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

// unit is the minor units per currency unit of the rule set in force
// (100 when there is none).
func (r *register) unit() int64 {
	if rs := r.led.Rules(); rs != nil && rs.Unit > 0 {
		return rs.Unit
	}
	return 100
}

// members is the ledger as the checkout and the API see it: member lookups
// and enrolments understand phone numbers in any spelling (E.164 stored,
// register.phone_region for numbers without a country code).
func (r *register) members() phone.Members {
	n, err := phone.NewNormalizer(r.cfg.Register.PhoneRegion)
	if err != nil { // config validation refused it already
		r.log.Warn("register.phone_region ignored", "err", err)
	}
	return phone.Members{Ledger: r.led, N: n}
}

// checkAlias refuses a member card the register's readers would refuse for
// its check digit (config member_cards), so an enrolment never creates a
// card that can never be scanned.
func (r *register) checkAlias() func(string) error {
	cc := managerConfig(r.cfg, r.o.RunDir).Classify
	cl, err := classify.New(classify.Options{Members: cc.Members, Embedded: cc.Embedded, Controls: cc.Controls})
	if err != nil {
		return nil // the device manager refuses the same config with its reason
	}
	return func(alias string) error {
		if _, err := cl.Member(device.SymUnknown, alias); errors.Is(err, device.ErrBadCheckDigit) {
			return fmt.Errorf("the member card's check digit is wrong (config member_cards), so scanners would refuse it")
		}
		return nil
	}
}

// keepFor is the ledger's keep window for confirmed events: days, or
// forget at once (negative) for 0.
func keepFor(days int64) time.Duration {
	if days <= 0 {
		return -1
	}
	return time.Duration(days) * 24 * time.Hour
}

// restore is the API's register restore: a new incarnation through the
// uplink (nil without sync).
func (r *register) restore() func() (api.RestoreInfo, error) {
	if r.up == nil {
		return nil
	}
	return func() (api.RestoreInfo, error) {
		ep, err := r.up.Restore()
		if err != nil {
			return api.RestoreInfo{}, err
		}
		info := api.RestoreInfo{Incarnation: ep.Incarnation, FromLocal: ep.From, Waiting: !ep.Known}
		if ep.Known {
			info.First, info.Continues = ep.From+ep.Delta, ep.Prev
		}
		return info, nil
	}
}
