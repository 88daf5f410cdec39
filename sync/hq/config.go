package hq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

var (
	// ErrConfig reports a config document that fails validation; nothing
	// is published.
	ErrConfig = errors.New("hq: invalid config document")
	// ErrStaleConfig reports a config version not newer than the one the
	// broker holds; registers would ignore it, so it is not published.
	ErrStaleConfig = errors.New("hq: config version not newer than the published one")
	// ErrNoRecord: head office's record of the documents in force could
	// not be read, so nothing is published (it could be older).
	ErrNoRecord = errors.New("hq: head office's record of the configs in force is unreadable")
)

// configFile is the YAML document `loyalty-hq publish-config` reads.
type configFile struct {
	Scope     string        `yaml:"scope"` // "chain" (default) or "store"
	Store     string        `yaml:"store"`
	Version   uint64        `yaml:"version"`
	Rules     yaml.Node     `yaml:"rules"`
	Catalogue []productYAML `yaml:"catalogue"`
}

type productYAML struct {
	SKU      string `yaml:"sku"`
	Name     string `yaml:"name"`
	Category string `yaml:"category"`
	Price    int64  `yaml:"price"` // minor units
}

// ParseConfig reads a config document (YAML, or JSON which is YAML) and
// validates it completely: unknown keys, the rule set (rules.Decode), the
// catalogue and the envelope (protocol.EncodeConfig). Errors wrap ErrConfig
// and name what is wrong.
func ParseConfig(data []byte, issuedAt time.Time) (protocol.Config, error) {
	var f configFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return protocol.Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg := protocol.Config{Scope: f.Scope, Store: f.Store, ConfigVersion: f.Version, IssuedAt: issuedAt}
	if cfg.Scope == "" {
		cfg.Scope = protocol.ScopeChain
	}
	if cfg.Scope == protocol.ScopeStore {
		if err := protocol.ValidID(cfg.Store); err != nil {
			return protocol.Config{}, fmt.Errorf("%w: store: %v", ErrConfig, err)
		}
	}
	if f.Rules.Kind != 0 {
		var v any
		if err := f.Rules.Decode(&v); err != nil {
			return protocol.Config{}, fmt.Errorf("%w: rules (line %d): %v", ErrConfig, f.Rules.Line, err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			return protocol.Config{}, fmt.Errorf("%w: rules (line %d): %v", ErrConfig, f.Rules.Line, err)
		}
		rs, err := rules.Decode(j)
		if err != nil {
			return protocol.Config{}, fmt.Errorf("%w: rules (line %d): %w", ErrConfig, f.Rules.Line, err)
		}
		cfg.Rules = rs
	}
	for _, p := range f.Catalogue {
		cfg.Catalogue = append(cfg.Catalogue, protocol.Product{SKU: p.SKU, Name: p.Name, Category: p.Category, Price: ledger.Money(p.Price)})
	}
	if cfg.Rules == nil && len(cfg.Catalogue) == 0 {
		return protocol.Config{}, fmt.Errorf("%w: neither rules nor catalogue", ErrConfig)
	}
	if _, _, err := prepare(cfg, 0); err != nil {
		return protocol.Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return cfg, nil
}

// ConfigTopic is where cfg is published.
func ConfigTopic(cfg protocol.Config) string {
	if cfg.Scope == protocol.ScopeStore {
		return protocol.StoreConfigTopic(cfg.Store)
	}
	return protocol.ChainConfigTopic()
}
