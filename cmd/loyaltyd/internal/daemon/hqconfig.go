package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// configState applies head office's config documents (rule sets and
// catalogues) to the ledger. The ledger is the one source: each document's
// rule set, catalogue and config_version are put in force in one ledger
// transaction (ledger.ApplyConfig), so a crash or a failed write never
// leaves new rules beside an old catalogue or versions that disagree with
// what is in force, and the rule set in force (with its rewards) is read
// back from the ledger.
type configState struct {
	led *ledger.Ledger
	log *slog.Logger
	mu  sync.Mutex
	// OnRules, when set, is called with each rule set put in force.
	OnRules func(*rules.RuleSet)
}

// legacyVersionsFile is where releases before the versions moved into the
// ledger kept them, next to the ledger; it is read once to carry them over.
const legacyVersionsFile = "hq-config-versions.json"

// loadConfigState returns the config state of led, carrying over the
// versions an earlier release kept in the side file (then renamed
// .migrated, so it is read only once).
func loadConfigState(led *ledger.Ledger, log *slog.Logger) (*configState, error) {
	c := &configState{led: led, log: log}
	path := filepath.Join(filepath.Dir(led.Path()), legacyVersionsFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("config versions: %w", err)
	}
	var old ledger.ConfigVersions
	if err := json.Unmarshal(b, &old); err != nil {
		// A damaged file only costs a no-op re-apply of the retained
		// documents.
		log.Warn("old config versions file unreadable, not carried over", "path", path, "err", err)
		return c, nil
	}
	if _, err := led.ImportHQConfigVersions(context.Background(), old); err != nil {
		return nil, fmt.Errorf("config versions: %w", err)
	}
	if err := os.Rename(path, path+".migrated"); err != nil {
		log.Warn("old config versions file not renamed", "path", path, "err", err)
	}
	log.Info("config versions carried over into the ledger", "chain", old.Chain, "store", old.Store)
	return c, nil
}

// Versions are the config versions in force per scope.
func (c *configState) Versions() uplink.ConfigVersions {
	v, err := c.led.HQConfigVersions()
	if err != nil {
		c.log.Error("config versions unreadable", "err", err)
	}
	return uplink.ConfigVersions{Chain: v.Chain, Store: v.Store}
}

// Apply is the uplink's OnConfig: the document's rule set, catalogue and
// config_version go into the ledger in one transaction. A rule set or
// catalogue older than the one in force refuses the whole document (the
// uplink reports it; the previous config stays in force); the same
// version again is a no-op.
func (c *configState) Apply(ctx context.Context, doc protocol.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ld := ledger.ConfigDoc{Store: doc.Scope == protocol.ScopeStore, Version: doc.ConfigVersion, Rules: doc.Rules, Key: doc.SignedBy}
	if len(doc.Catalogue) > 0 {
		ld.Catalogue = make([]ledger.Item, len(doc.Catalogue))
		for i, p := range doc.Catalogue {
			ld.Catalogue[i] = ledger.Item{SKU: p.SKU, Name: p.Name, Price: p.Price, Category: p.Category}
		}
	}
	res, err := c.led.ApplyConfig(ctx, ld)
	if err != nil {
		return err
	}
	if res.Rules {
		c.log.Info("rules from head office in force", "rules_version", doc.Rules.Version, "scope", doc.Scope, "config_version", doc.ConfigVersion)
		if c.OnRules != nil {
			c.OnRules(doc.Rules)
		}
	}
	if res.Catalogue {
		c.log.Info("catalogue from head office in force", "items", len(ld.Catalogue), "scope", doc.Scope, "config_version", doc.ConfigVersion)
	} else if len(ld.Catalogue) > 0 {
		// Not older (that refuses the document), not newer: the ledger
		// takes it for the catalogue it holds. It was silent, while status
		// showed the document's version in force (a first store document
		// of version 1 beside loyaltyd.yaml's catalogue.version 1).
		c.log.Warn("head office's catalogue not put in force: this register already holds a catalogue of that version "+
			"(its own catalogue.version, or an earlier document); publish it with a higher version",
			"scope", doc.Scope, "config_version", doc.ConfigVersion, "items", len(ld.Catalogue))
	}
	return nil
}
