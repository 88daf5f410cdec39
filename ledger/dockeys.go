package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// kDocKeys records which of head office's signing keys signed what is in
// force (DocKeys). A ledger written before has none: every key is "".
var kDocKeys = []byte("hq_doc_keys")

// KeyRotatedOut is the key recorded for a floor set before this ledger
// recorded keys (its key is unknown) once the operator removed a key this
// ledger had pinned (NotePinned): the document in force may have been
// signed by the removed key, so it is treated as signed by a key no
// longer pinned.
const KeyRotatedOut = "?"

// DocKeys are the ids (signing.PublicKey.ID) of the keys that signed
// head office's documents in force, one per floor a document sets: the
// chain and the store config version, the rule set and the catalogue in
// force, and the position in the store's member-summary stream. "" is
// "unknown" (a ledger written before keys were recorded, or the
// register's own rule set and catalogue from loyaltyd.yaml). Pinned are
// the keys the register pinned when it last started (NotePinned).
//
// A floor whose key is known and no longer pinned was set by a document
// of a key the operator removed (a leaked key, docs/operations.md
// "Recovering from a leaked signing key"): the next document signed by a
// pinned key is put in force whatever its version or position, and sets
// the floor again. A floor whose key is still pinned, or unknown, keeps
// the version rules.
type DocKeys struct {
	Chain     string   `json:"chain,omitempty"`
	Store     string   `json:"store,omitempty"`
	Rules     string   `json:"rules,omitempty"`
	Catalogue string   `json:"catalogue,omitempty"`
	Members   string   `json:"members,omitempty"`
	Pinned    []string `json:"pinned,omitempty"`
}

// Lifts reports whether a document signed by key by may go in force over
// a floor set by a document signed by recorded: recorded is known and no
// longer pinned, and by is pinned.
func (k DocKeys) Lifts(recorded, by string) bool {
	return recorded != "" && by != "" && recorded != by &&
		!slices.Contains(k.Pinned, recorded) && slices.Contains(k.Pinned, by)
}

// ScopeKey is the key of the store's (store) or the chain's config in
// force.
func (k DocKeys) ScopeKey(store bool) string {
	if store {
		return k.Store
	}
	return k.Chain
}

// SetScopeKey records key for the store's (store) or the chain's config.
func (k *DocKeys) SetScopeKey(store bool, key string) {
	if store {
		k.Store = key
	} else {
		k.Chain = key
	}
}

func readDocKeys(meta *bolt.Bucket) (DocKeys, error) {
	var k DocKeys
	b := meta.Get(kDocKeys)
	if b == nil {
		return k, nil
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("ledger document keys do not decode: %v: %w", err, ErrInconsistent)
	}
	return k, nil
}

// DocKeys returns the keys recorded for what is in force.
func (l *Ledger) DocKeys() (DocKeys, error) {
	var k DocKeys
	err := l.view(func(tx *bolt.Tx) error {
		var err error
		k, err = readDocKeys(tx.Bucket(bMeta))
		return err
	})
	return k, err
}

// NotePinned records the ids of the keys the register pins now (its
// sync.hq_keys) and returns the keys recorded. The register calls it at
// start, before anything is applied. When a key pinned at the previous
// start is no longer pinned (the operator rotated), every floor whose key
// is unknown ("" and a floor set) is marked KeyRotatedOut: it may have
// been set by the removed key, so the next document of a pinned key lifts
// it. A ledger that recorded no pinned keys before (new, or written by an
// earlier release) only records them: rotate after the register ran once
// with this release (docs/operations.md).
func (l *Ledger) NotePinned(ctx context.Context, ids []string) (DocKeys, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		meta := w.tx.Bucket(bMeta)
		k, err := readDocKeys(meta)
		if err != nil {
			return nil, err
		}
		if slices.Equal(k.Pinned, ids) {
			return k, nil
		}
		rotated := slices.ContainsFunc(k.Pinned, func(p string) bool { return !slices.Contains(ids, p) })
		if rotated {
			v, err := readConfigVersions(meta.Get(kHQConfig))
			if err != nil {
				return nil, err
			}
			mark := func(key *string, set bool) {
				if *key == "" && set {
					*key = KeyRotatedOut
				}
			}
			mark(&k.Chain, v.Chain > 0)
			mark(&k.Store, v.Store > 0)
			mark(&k.Rules, w.eng.RuleVersion() > 0)
			mark(&k.Catalogue, getU64(meta, kCatVer) > 0)
			mark(&k.Members, getU64(meta, kMembersPos) > 0)
		}
		k.Pinned = ids
		w.putJSON(bMeta, kDocKeys, k)
		return k, nil
	})
	if err != nil {
		return DocKeys{}, err
	}
	return res.(DocKeys), nil
}

// ownFloor records that the register's own rule set (rules) or catalogue
// went in force (loyaltyd.yaml): no key of head office's signed it.
func (w *wtx) ownFloor(rules bool) error {
	meta := w.tx.Bucket(bMeta)
	k, err := readDocKeys(meta)
	if err != nil {
		return err
	}
	p := &k.Catalogue
	if rules {
		p = &k.Rules
	}
	if *p == "" {
		return nil
	}
	*p = ""
	w.putJSON(bMeta, kDocKeys, k)
	return nil
}
