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
	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// configState applies head office's config documents (rule sets and
// catalogues) to the ledger and remembers which versions are in force.
//
// The ledger keeps the rule set and the catalogue (with their own
// versions) but not the config_version of the document they came from, so
// the versions per scope are kept in a small file next to the ledger,
// written (atomically, by rename) only after the ledger accepted the
// document. A crash between the two leaves the file behind the ledger; the
// retained copy is then delivered again and applying it is a no-op (the
// same rule version, the same catalogue version), not a rejection.
type configState struct {
	path string
	led  *ledger.Ledger
	log  *slog.Logger
	mu   sync.Mutex
	v    uplink.ConfigVersions
	// rules is the last rule set applied from head office (nil: none),
	// kept for its rewards list, which the ledger does not give back.
	rules *rules.RuleSet
	// OnRules, when set, is called with each rule set put in force.
	OnRules func(*rules.RuleSet)
}

// stateFile is the versions file's content.
type stateFile struct {
	uplink.ConfigVersions
	Rules *rules.RuleSet `json:"rules,omitempty"`
}

// configVersionsFile is the name of the versions file in the ledger's
// directory.
const configVersionsFile = "hq-config-versions.json"

// loadConfigState reads the versions in force (none yet: zero).
func loadConfigState(led *ledger.Ledger, log *slog.Logger) (*configState, error) {
	c := &configState{path: filepath.Join(filepath.Dir(led.Path()), configVersionsFile), led: led, log: log}
	b, err := os.ReadFile(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("config versions: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		// A damaged file only costs a no-op re-apply of the retained
		// documents: start from zero rather than refuse to sell.
		log.Warn("config versions file unreadable, starting from none", "path", c.path, "err", err)
		return c, nil
	}
	c.v, c.rules = f.ConfigVersions, f.Rules
	return c, nil
}

// Rules is the rule set from head office in force in the ledger, or nil
// (none, or the local config's is newer).
func (c *configState) Rules() *rules.RuleSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rules == nil || c.rules.Version != c.led.RuleVersion() {
		return nil
	}
	return c.rules
}

// Versions are the config versions in force per scope.
func (c *configState) Versions() uplink.ConfigVersions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v
}

// Apply is the uplink's OnConfig: the rule set goes to SetRules, the
// catalogue to PutCatalogue tagged with the document's config_version.
// A rule set or catalogue older than the one the ledger holds refuses the
// whole document (the uplink reports it; the previous config stays in
// force); the same version again is a no-op.
func (c *configState) Apply(ctx context.Context, doc protocol.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Check before writing anything, so a refused document changes nothing.
	if doc.Rules != nil && doc.Rules.Version < c.led.RuleVersion() {
		return fmt.Errorf("rules version %d older than %d in force: %w", doc.Rules.Version, c.led.RuleVersion(), ledger.ErrStaleVersion)
	}
	var items []ledger.Item
	if len(doc.Catalogue) > 0 {
		st, err := c.led.Stats()
		if err != nil {
			return fmt.Errorf("catalogue: %w", err)
		}
		if int(doc.ConfigVersion) < st.CatalogueVersion {
			return fmt.Errorf("catalogue version %d older than %d in force: %w", doc.ConfigVersion, st.CatalogueVersion, ledger.ErrStaleVersion)
		}
		items = make([]ledger.Item, len(doc.Catalogue))
		for i, p := range doc.Catalogue {
			items[i] = ledger.Item{SKU: p.SKU, Name: p.Name, Price: p.Price, Category: p.Category}
		}
	}
	if doc.Rules != nil && doc.Rules.Version > c.led.RuleVersion() {
		if err := c.led.SetRules(doc.Rules); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		c.log.Info("rules from head office in force", "rules_version", doc.Rules.Version, "scope", doc.Scope, "config_version", doc.ConfigVersion)
		c.rules = doc.Rules
		if c.OnRules != nil {
			c.OnRules(doc.Rules)
		}
	}
	if items != nil {
		switch err := c.led.PutCatalogue(ctx, int(doc.ConfigVersion), items); {
		case errors.Is(err, ledger.ErrStaleVersion):
			// the same version again (checked above): already held
		case err != nil:
			return fmt.Errorf("catalogue: %w", err)
		default:
			c.log.Info("catalogue from head office in force", "items", len(items), "scope", doc.Scope, "config_version", doc.ConfigVersion)
		}
	}
	next := c.v
	if doc.Scope == protocol.ScopeStore {
		next.Store = doc.ConfigVersion
	} else {
		next.Chain = doc.ConfigVersion
	}
	if err := c.save(next); err != nil {
		// The ledger holds the new config; only the restart shortcut is
		// lost (the retained copy is re-applied as a no-op).
		c.log.Warn("config versions not saved", "path", c.path, "err", err)
	}
	c.v = next
	return nil
}

func (c *configState) save(v uplink.ConfigVersions) error {
	b, err := json.Marshal(stateFile{ConfigVersions: v, Rules: c.rules})
	if err != nil {
		return err
	}
	// Old or new content after a power cut, never empty or torn.
	return durable.WriteBytes(c.path, 0o640, b)
}
