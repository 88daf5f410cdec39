package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
	bolt "go.etcd.io/bbolt"
)

// kHQConfig holds head office's config versions in force (ConfigVersions).
var kHQConfig = []byte("hq_config_versions")

// ConfigVersions are the config_version of head office's documents in
// force, per scope.
type ConfigVersions struct {
	Chain uint64 `json:"chain"`
	Store uint64 `json:"store"`
}

// of is the version in force for the store scope (store) or the chain's.
func (v ConfigVersions) of(store bool) uint64 {
	if store {
		return v.Store
	}
	return v.Chain
}

// ConfigDoc is one head-office config document as the ledger applies it.
type ConfigDoc struct {
	// Store: the document's scope is the store (else the chain).
	Store bool
	// Version is the document's config_version.
	Version uint64
	// Rules is the document's rule set; nil when it carries none.
	Rules *rules.RuleSet
	// Catalogue is the document's catalogue, tagged with Version; nil when
	// it carries none.
	Catalogue []Item
	// Key is the id of head office's key that signed the document ("":
	// not known). It is recorded beside each floor the document sets
	// (DocKeys); a floor recorded with a key no longer pinned does not
	// hold back a document signed by a pinned key (DocKeys.Lifts).
	Key string
}

// ConfigResult says what a document changed.
type ConfigResult struct {
	Rules, Catalogue bool // the rule set / the catalogue was put in force
}

// ApplyConfig puts a head-office document in force in one transaction:
// its rule set (when newer than the one in force; the same version is
// already held), its catalogue (tagged with the document's version, when
// newer), and the scope's config version. A document older than its
// scope's version in force, or whose rule set or catalogue is older than
// the one in force, is refused whole (ErrStaleVersion); an invalid one
// ErrInvalid. A refused document, or a failed write, changes nothing: the
// rule set, the catalogue and the versions move together or not at all.
// A pieced document of the same scope still being staged (BeginPieced)
// and not newer than doc is superseded: its staging is dropped, so its
// last piece can never put an older catalogue and version in force.
//
// A floor (the scope's version, the rule set's or the catalogue's version)
// set by a document whose key is no longer pinned (DocKeys.Lifts) does not
// refuse doc when a pinned key signed it: doc's rule set and catalogue go
// in force whatever their versions, its version becomes the scope's, a
// pieced document of the scope still staged is dropped, and doc.Key is
// recorded beside each floor it set.
func (l *Ledger) ApplyConfig(ctx context.Context, doc ConfigDoc) (ConfigResult, error) {
	var rulesJSON []byte
	if doc.Rules != nil {
		if err := doc.Rules.Validate(); err != nil {
			return ConfigResult{}, fmt.Errorf("ledger config: rules: %w: %w", err, ErrInvalid)
		}
		b, err := json.Marshal(doc.Rules)
		if err != nil {
			return ConfigResult{}, fmt.Errorf("ledger config: rules: %w", err)
		}
		rulesJSON = b
	}
	if doc.Catalogue != nil {
		if err := checkCatalogue(int(doc.Version), doc.Catalogue); err != nil {
			return ConfigResult{}, fmt.Errorf("ledger config: %w", err)
		}
	}
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		var r ConfigResult
		meta := w.tx.Bucket(bMeta)
		keys, err := readDocKeys(meta)
		if err != nil {
			return nil, err
		}
		if doc.Rules != nil {
			cur := w.eng.RuleVersion()
			switch {
			case keys.Lifts(keys.Rules, doc.Key):
				r.Rules = true
			case doc.Rules.Version < cur:
				return nil, fmt.Errorf("ledger config: rules version %d older than %d in force: %w", doc.Rules.Version, cur, ErrStaleVersion)
			default:
				r.Rules = doc.Rules.Version > cur
			}
		}
		if doc.Catalogue != nil {
			cur := getU64(meta, kCatVer)
			switch {
			case keys.Lifts(keys.Catalogue, doc.Key):
				r.Catalogue = true
			case doc.Version < cur:
				return nil, fmt.Errorf("ledger config: catalogue version %d older than %d in force: %w", doc.Version, cur, ErrStaleVersion)
			default:
				r.Catalogue = doc.Version > cur
			}
		}
		v, err := readConfigVersions(meta.Get(kHQConfig))
		if err != nil {
			return nil, err
		}
		lifted := keys.Lifts(keys.ScopeKey(doc.Store), doc.Key)
		if cur := v.of(doc.Store); doc.Version < cur && !lifted {
			return nil, fmt.Errorf("ledger config: %s config version %d older than %d in force: %w", scopeName(doc.Store), doc.Version, cur, ErrStaleVersion)
		}
		if err := w.dropSupersededStage(doc.Store, doc.Version, lifted); err != nil {
			return nil, err
		}
		if doc.Store {
			v.Store = doc.Version
		} else {
			v.Chain = doc.Version
		}
		was := keys
		if doc.Key != "" {
			keys.SetScopeKey(doc.Store, doc.Key)
		}
		if r.Rules {
			w.put(bMeta, kRules, rulesJSON)
			w.eng = RuleSetEngine(doc.Rules) // later ops of this batch score with it
			keys.Rules = doc.Key
		}
		if r.Catalogue {
			if err := w.replaceCatalogue(doc.Version, doc.Catalogue); err != nil {
				return nil, err
			}
			keys.Catalogue = doc.Key
		}
		w.putJSON(bMeta, kHQConfig, v)
		if was.Chain != keys.Chain || was.Store != keys.Store || was.Rules != keys.Rules || was.Catalogue != keys.Catalogue {
			w.putJSON(bMeta, kDocKeys, keys)
		}
		return r, nil
	})
	if err != nil {
		return ConfigResult{}, err
	}
	r := res.(ConfigResult)
	if r.Rules {
		l.engine.Store(&engineBox{RuleSetEngine(doc.Rules)})
	}
	return r, nil
}

// HQConfigVersions are head office's config versions in force (zero: no
// document applied yet).
func (l *Ledger) HQConfigVersions() (ConfigVersions, error) {
	var v ConfigVersions
	err := l.view(func(tx *bolt.Tx) error {
		var err error
		v, err = readConfigVersions(tx.Bucket(bMeta).Get(kHQConfig))
		return err
	})
	return v, err
}

// ImportHQConfigVersions records versions kept outside the ledger by an
// earlier release (the side file hq-config-versions.json) when the ledger
// has none yet; it never moves a version back. It reports whether it wrote.
func (l *Ledger) ImportHQConfigVersions(ctx context.Context, v ConfigVersions) (bool, error) {
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		cur, err := readConfigVersions(w.tx.Bucket(bMeta).Get(kHQConfig))
		if err != nil {
			return nil, err
		}
		if cur != (ConfigVersions{}) || v == (ConfigVersions{}) {
			return false, nil
		}
		w.putJSON(bMeta, kHQConfig, v)
		return true, nil
	})
	if err != nil {
		return false, err
	}
	return res.(bool), nil
}

func readConfigVersions(b []byte) (ConfigVersions, error) {
	var v ConfigVersions
	if b == nil {
		return v, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("ledger config versions do not decode: %v: %w", err, ErrInconsistent)
	}
	return v, nil
}
