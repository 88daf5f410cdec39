package hq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

var (
	// ErrConfig reports a config document that fails validation; nothing
	// is published.
	ErrConfig = errors.New("hq: invalid config document")
	// ErrStaleConfig reports a config version not newer than the one the
	// broker holds; registers would ignore it, so it is not published.
	ErrStaleConfig = errors.New("hq: config version not newer than the published one")
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
	if _, err := protocol.EncodeConfig(cfg); err != nil {
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

// PublishConfig signs cfg with signer and publishes it retained (QoS 1)
// after checking that its version is newer than the retained document on
// the broker, and waits for the broker's PUBACK. A retained document that
// signer's key did not sign (a forgery, or one signed by the key before a
// rotation) does not hold a newer version back. It uses its own
// short-lived connection (conn.ClientID + "-config").
func PublishConfig(ctx context.Context, conn Conn, signer *signing.Signer, cfg protocol.Config) error {
	if signer == nil {
		return fmt.Errorf("publish config: no signing key: %w", ErrOptions)
	}
	doc, err := protocol.EncodeConfig(cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	payload, err := signer.Seal(ConfigTopic(cfg), doc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	own, err := signing.NewKeyring(signer.Public())
	if err != nil {
		return err
	}
	id := conn.ClientID
	if id == "" {
		id = "loyalty-hq"
	}
	wait := conn.waitTimeout()
	c := mqtt.NewClient(clientOptions(conn, id+"-config").SetCleanSession(true).SetAutoReconnect(false))
	if t := c.Connect(); !t.WaitTimeout(wait) {
		return fmt.Errorf("publish config: connect: %w", ErrTimeout)
	} else if t.Error() != nil {
		return fmt.Errorf("publish config: connect: %w", t.Error())
	}
	defer c.Disconnect(250)

	topic := ConfigTopic(cfg)
	var mu stdsync.Mutex
	var current []byte
	got := make(chan struct{}, 1)
	t := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		if !m.Retained() {
			return
		}
		mu.Lock()
		current = m.Payload()
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if !t.WaitTimeout(wait) {
		return fmt.Errorf("publish config: subscribe: %w", ErrTimeout)
	} else if t.Error() != nil {
		return fmt.Errorf("publish config: subscribe: %w", t.Error())
	}
	// Mosquitto sends the retained message right after the SUBACK; a short
	// grace covers the round trip. No message means nothing published yet.
	select {
	case <-got:
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	mu.Lock()
	cur := current
	mu.Unlock()
	if prevDoc, err := own.Open(topic, cur, protocol.MaxConfigSize+signing.Overhead); len(cur) > 0 && err == nil {
		pt, _ := protocol.ParseTopic(topic)
		prev, err := protocol.DecodeConfig(prevDoc, pt)
		if err == nil && !protocol.Newer(prev.ConfigVersion, cfg.ConfigVersion) {
			return fmt.Errorf("%w: version %d, broker holds %d", ErrStaleConfig, cfg.ConfigVersion, prev.ConfigVersion)
		}
	}
	pub := c.Publish(topic, 1, true, payload)
	if !pub.WaitTimeout(wait) {
		return fmt.Errorf("publish config: %w", ErrTimeout)
	} else if pub.Error() != nil {
		return fmt.Errorf("publish config: %w", pub.Error())
	}
	return nil
}
