package hq

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// rulesKind is the kind under which head office records every rule set
// it has seen in a config document (hqstore.RecordConfig keeps the latest
// document per kind), so the policy can still check a sale made offline
// under an older rule set after a newer one is published.
const rulesKind = "rules/"

func rulesKindOf(topic string, version int) string {
	return rulesKind + topic + "/" + strconv.Itoa(version)
}

// loadRuleSets gives the policy every rule set recorded in the store.
func (s *Service) loadRuleSets() error {
	docs, err := s.st.Configs()
	if err != nil {
		return fmt.Errorf("rule sets for the policy: %w", err)
	}
	for _, d := range docs {
		var rs *rules.RuleSet
		if strings.HasPrefix(d.Kind, rulesKind) {
			if rs, err = rules.Decode(d.Doc); err != nil {
				s.log.Warn("recorded rule set unreadable; sales under it will be held for review", "kind", d.Kind, "err", err)
				continue
			}
		} else {
			var c struct {
				Rules *rules.RuleSet `json:"rules"`
			}
			if json.Unmarshal(d.Doc, &c) != nil || c.Rules == nil {
				continue
			}
			rs = c.Rules
		}
		if err := s.opts.Policy.AddRuleSet(rs); err != nil {
			s.log.Warn("recorded rule set refused by the policy", "kind", d.Kind, "err", err)
		}
	}
	return nil
}

// learnRules adds the rule set of a config document head office found on
// the broker (signed by key, one of its own) to the policy and records it
// by version, with the key that signed it (signedby.go).
func (s *Service) learnRules(topic string, cfg protocol.Config, key string) {
	if s.opts.Policy == nil || cfg.Rules == nil {
		return
	}
	if err := s.opts.Policy.AddRuleSet(cfg.Rules); err != nil {
		s.log.Warn("rule set refused by the policy", "topic", topic, "err", err)
		return
	}
	b, err := json.Marshal(cfg.Rules)
	kind, version := rulesKindOf(topic, cfg.Rules.Version), uint64(max(cfg.Rules.Version, 1))
	if err == nil {
		err = s.st.RecordConfig(kind, version, b)
	}
	if err == nil || errors.Is(err, hqstore.ErrStaleConfig) {
		s.recordSigned(kind, version, key)
	}
	if err != nil && !errors.Is(err, hqstore.ErrStaleConfig) {
		s.log.Error("record rule set", "topic", topic, "version", cfg.Rules.Version, "err", err)
	}
}

// ReadRuleSet reads the rule set of a YAML or JSON document with a
// top-level "rules" key: a `loyalty-hq publish-config` document or a
// register's loyaltyd.yaml (its other keys are ignored). Head office's
// policy needs the rule sets registers run from their own config before
// head office publishes one (policy.rules_files).
func ReadRuleSet(data []byte) (*rules.RuleSet, error) {
	var doc struct {
		Rules yaml.Node `yaml:"rules"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if doc.Rules.Kind == 0 {
		return nil, fmt.Errorf("%w: no top-level rules: key", ErrConfig)
	}
	var v any
	if err := doc.Rules.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: rules (line %d): %v", ErrConfig, doc.Rules.Line, err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: rules (line %d): %v", ErrConfig, doc.Rules.Line, err)
	}
	rs, err := rules.Decode(j)
	if err != nil {
		return nil, fmt.Errorf("%w: rules (line %d): %w", ErrConfig, doc.Rules.Line, err)
	}
	return rs, nil
}
