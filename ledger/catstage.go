package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// A catalogue too large for one document arrives in pieces (head office's
// store documents, docs/protocol.md "Catalogue pieces"). The pieces are
// staged in the ledger as they come, in two buckets created when first
// needed (no schema change: a ledger without them simply has nothing
// staged, and an older program ignores them):
//
//   - bStage holds the manifest (the document's version, scope, rule set,
//     piece digests and item count) and one key per piece received;
//   - inside it, a bucket named like the catalogue's (bCatalogue) holds
//     the items received so far, keyed by SKU like the catalogue.
//
// The catalogue in force is never touched until the last piece arrives;
// then, in the transaction that stores that piece, the catalogue bucket
// is deleted and the staged one moved in its place (bbolt's MoveBucket:
// no copy, so applying costs the same for 100 or 100,000 items), together
// with the document's rule set and config version. A restart
// keeps what was staged, so delivery resumes where it stopped.
var (
	bStage      = []byte("catalogue_stage")
	kManifest   = []byte("manifest")
	kStagedN    = []byte("items") // items staged so far
	piecePrefix = []byte("piece/")
)

// catalogueFill is the catalogue's page fill: it is written once and read
// at every scan.
const catalogueFill = 0.9

// ErrOtherVersion: a catalogue piece of another version than the one
// being staged; it changes nothing.
var ErrOtherVersion = errors.New("ledger: catalogue piece of another version than the one staged")

// PiecedConfig is a head-office document whose catalogue arrives in
// pieces: the document itself (Doc.Catalogue nil) and the digest of each
// piece, in order (as the caller computes them), with the item count.
type PiecedConfig struct {
	Doc     ConfigDoc
	Digests []string
	Items   int
}

// Staging says how far a pieced catalogue is.
type Staging struct {
	Version    uint64 // the document's config version (0: nothing staged)
	Store      bool
	Have, Want int
	// Missing lists the pieces not received yet (at most 32 of them).
	Missing []int
	// Applied: the last piece arrived and the document is in force;
	// Result says what it changed.
	Applied bool
	Result  ConfigResult
}

type manifest struct {
	Version uint64          `json:"version"`
	Store   bool            `json:"store"`
	Rules   json.RawMessage `json:"rules,omitempty"`
	Digests []string        `json:"digests"`
	Items   int             `json:"items"`
	// Key signed the document (ConfigDoc.Key); absent in a staging
	// written before keys were recorded.
	Key string `json:"key,omitempty"`
}

func pieceKey(i int) []byte { return fmt.Appendf(append([]byte(nil), piecePrefix...), "%06d", i) }

// BeginPieced stages a pieced document: it records the manifest (keeping
// the pieces already staged when the same version and digests are staged,
// so a restart resumes) and says what is missing. Nothing in force
// changes. A document not newer than the catalogue in force, or whose rule
// set is older than the one in force, is refused (ErrStaleVersion).
func (l *Ledger) BeginPieced(ctx context.Context, p PiecedConfig) (Staging, error) {
	if p.Doc.Catalogue != nil || len(p.Digests) == 0 || p.Items < len(p.Digests) || p.Doc.Version == 0 {
		return Staging{}, fmt.Errorf("ledger catalogue pieces: version %d, %d pieces, %d items: %w", p.Doc.Version, len(p.Digests), p.Items, ErrInvalid)
	}
	m := manifest{Version: p.Doc.Version, Store: p.Doc.Store, Digests: p.Digests, Items: p.Items, Key: p.Doc.Key}
	if p.Doc.Rules != nil {
		if err := p.Doc.Rules.Validate(); err != nil {
			return Staging{}, fmt.Errorf("ledger catalogue pieces: rules: %w: %w", err, ErrInvalid)
		}
		b, err := json.Marshal(p.Doc.Rules)
		if err != nil {
			return Staging{}, err
		}
		m.Rules = b
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return Staging{}, err
	}
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		w.direct = true // writes nested buckets: committed, not logged
		keys, err := readDocKeys(w.tx.Bucket(bMeta))
		if err != nil {
			return nil, err
		}
		if cur := getU64(w.tx.Bucket(bMeta), kCatVer); m.Version <= cur && !keys.Lifts(keys.Catalogue, m.Key) {
			return nil, fmt.Errorf("ledger catalogue pieces: version %d, %d in force: %w", m.Version, cur, ErrStaleVersion)
		}
		if err := w.notBehindScope(m, keys); err != nil {
			return nil, err
		}
		if p.Doc.Rules != nil && p.Doc.Rules.Version < w.eng.RuleVersion() && !keys.Lifts(keys.Rules, m.Key) {
			return nil, fmt.Errorf("ledger catalogue pieces: rules version %d older than %d in force: %w", p.Doc.Rules.Version, w.eng.RuleVersion(), ErrStaleVersion)
		}
		if old := w.tx.Bucket(bStage); old != nil && bytes.Equal(old.Get(kManifest), mb) {
			return stagingOf(w.tx, m), nil // the same delivery: resume
		}
		if err := w.resetStage(); err != nil {
			return nil, err
		}
		w.put(bStage, kManifest, mb)
		return stagingOf(w.tx, m), nil
	})
	if err != nil {
		return Staging{}, err
	}
	if s := res.(Staging); s.Have < s.Want {
		return s, nil
	}
	return l.applyComplete(ctx) // staged completely before a crash
}

// notBehindScope refuses (ErrStaleVersion) a pieced document whose version
// is not above its scope's config version in force: a newer document of
// the scope (with no catalogue, or a catalogue that fitted) went in force
// meanwhile, and this one would move the version back. A scope version
// set by a key no longer pinned does not refuse it (DocKeys.Lifts).
func (w *wtx) notBehindScope(m manifest, keys DocKeys) error {
	v, err := readConfigVersions(w.tx.Bucket(bMeta).Get(kHQConfig))
	if err != nil {
		return err
	}
	if cur := v.of(m.Store); m.Version <= cur && !keys.Lifts(keys.ScopeKey(m.Store), m.Key) {
		return fmt.Errorf("ledger catalogue pieces: %s config version %d, %d in force: %w", scopeName(m.Store), m.Version, cur, ErrStaleVersion)
	}
	return nil
}

// dropSupersededStage drops the staging of a pieced document of the same
// scope whose version is not above version, which is going in force;
// lifted (the scope's floor was set by a key no longer pinned): whatever
// its version.
func (w *wtx) dropSupersededStage(store bool, version uint64, lifted bool) error {
	w.direct = true // replaces buckets: the batch is committed, not logged (salelog.go)
	m, err := readManifest(w.tx)
	if err != nil || m == nil || m.Store != store || (m.Version > version && !lifted) {
		return err
	}
	w.dirty = true
	return w.tx.DeleteBucket(bStage)
}

func scopeName(store bool) string {
	if store {
		return "store"
	}
	return "chain"
}

// resetStage empties the staging (creating its buckets).
func (w *wtx) resetStage() error {
	w.direct = true // writes buckets: committed, not logged (salelog.go)
	w.dirty = true
	if w.tx.Bucket(bStage) != nil {
		if err := w.tx.DeleteBucket(bStage); err != nil {
			return err
		}
	}
	st, err := w.tx.CreateBucket(bStage)
	if err != nil {
		return err
	}
	_, err = st.CreateBucket(bCatalogue)
	return err
}

// StagePiece stores piece index of the staged document version: digest
// must be the one its manifest lists and its items must be valid and not
// in another piece. A piece already held is a no-op; one of another
// version gives ErrOtherVersion; both change nothing. When it is the last
// piece missing, the staged catalogue, the document's rule set and its
// config version go in force in the same transaction (as ApplyConfig) and
// the staging is cleared.
func (l *Ledger) StagePiece(ctx context.Context, version uint64, index int, digest string, items []Item) (Staging, error) {
	if err := checkCatalogue(int(version), items); err != nil {
		return Staging{}, fmt.Errorf("ledger catalogue piece %d: %w", index, err)
	}
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		w.direct = true // writes nested buckets: committed, not logged
		m, err := readManifest(w.tx)
		if err != nil {
			return nil, err
		}
		if m == nil || m.Version != version {
			staged := uint64(0)
			if m != nil {
				staged = m.Version
			}
			return nil, fmt.Errorf("ledger catalogue piece %d of version %d, staging %d: %w", index, version, staged, ErrOtherVersion)
		}
		if index < 0 || index >= len(m.Digests) || m.Digests[index] != digest {
			return nil, fmt.Errorf("ledger catalogue piece %d of version %d does not match the document's digest: %w", index, version, ErrInvalid)
		}
		st := w.tx.Bucket(bStage)
		if st.Get(pieceKey(index)) != nil {
			return stagingOf(w.tx, *m), nil
		}
		si := st.Bucket(bCatalogue)
		if si == nil {
			return nil, fmt.Errorf("ledger catalogue staging has no items bucket: %w", ErrInconsistent)
		}
		w.dirty = true
		si.FillPercent = catalogueFill
		for _, it := range items {
			if si.Get([]byte(it.SKU)) != nil {
				return nil, fmt.Errorf("ledger catalogue piece %d: sku %q is in another piece: %w", index, it.SKU, ErrInvalid)
			}
			v, err := json.Marshal(it)
			if err != nil {
				return nil, err
			}
			if err := si.Put([]byte(it.SKU), v); err != nil {
				return nil, fmt.Errorf("ledger catalogue piece %d: %w", index, err)
			}
		}
		w.put(bStage, pieceKey(index), []byte(digest))
		w.put(bStage, kStagedN, u64(getU64(st, kStagedN)+uint64(len(items))))
		return stagingOf(w.tx, *m), nil
	})
	if err != nil {
		return Staging{}, err
	}
	s := res.(Staging)
	if s.Have < s.Want {
		return s, nil
	}
	return l.applyComplete(ctx)
}

// applyComplete puts a completely staged document in force in its own
// transaction. (Not in the one that stores the last piece: bbolt's
// MoveBucket loses what the same transaction wrote into the bucket it
// moves.) A crash between the two leaves every piece staged; the
// document's next arrival (BeginPieced) or any piece applies it then.
func (l *Ledger) applyComplete(ctx context.Context) (Staging, error) {
	var applied *rules.RuleSet
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		w.direct = true // writes nested buckets: committed, not logged
		applied = nil
		m, err := readManifest(w.tx)
		if err != nil || m == nil {
			return Staging{}, err
		}
		s := stagingOf(w.tx, *m)
		if s.Have < s.Want {
			return s, nil
		}
		r, rs, err := w.applyStaged(*m)
		if err != nil {
			return nil, err
		}
		applied = rs
		s.Applied, s.Result, s.Missing = true, r, nil
		return s, nil
	})
	if err != nil {
		return Staging{}, err
	}
	if applied != nil {
		l.engine.Store(&engineBox{RuleSetEngine(applied)})
	}
	return res.(Staging), nil
}

// applyStaged puts the complete staged document in force: rule set (when
// newer), catalogue, config version; then clears the staging.
func (w *wtx) applyStaged(m manifest) (ConfigResult, *rules.RuleSet, error) {
	w.direct = true // writes buckets: committed, not logged (salelog.go)
	r := ConfigResult{Catalogue: true}
	stage := w.tx.Bucket(bStage)
	if n := getU64(stage, kStagedN); n != uint64(m.Items) {
		return r, nil, fmt.Errorf("ledger catalogue pieces: %d items staged, the document says %d: %w", n, m.Items, ErrInvalid)
	}
	meta := w.tx.Bucket(bMeta)
	keys, err := readDocKeys(meta)
	if err != nil {
		return r, nil, err
	}
	if cur := getU64(meta, kCatVer); m.Version <= cur && !keys.Lifts(keys.Catalogue, m.Key) {
		return r, nil, fmt.Errorf("ledger catalogue pieces: version %d, %d in force: %w", m.Version, cur, ErrStaleVersion)
	}
	if err := w.notBehindScope(m, keys); err != nil {
		return r, nil, err
	}
	var rs *rules.RuleSet
	if m.Rules != nil {
		var err error
		if rs, err = rules.Decode(m.Rules); err != nil {
			return r, nil, fmt.Errorf("ledger catalogue pieces: staged rules: %w: %w", err, ErrInconsistent)
		}
		cur := w.eng.RuleVersion()
		switch {
		case keys.Lifts(keys.Rules, m.Key):
			r.Rules = true
		case rs.Version < cur:
			return r, nil, fmt.Errorf("ledger catalogue pieces: rules version %d older than %d in force: %w", rs.Version, cur, ErrStaleVersion)
		default:
			r.Rules = rs.Version > cur
		}
	}
	v, err := readConfigVersions(meta.Get(kHQConfig))
	if err != nil {
		return r, nil, err
	}
	if m.Store {
		v.Store = m.Version
	} else {
		v.Chain = m.Version
	}
	// The staged items become the catalogue: the bucket moves, then the
	// staging goes.
	w.dirty = true
	if err := w.tx.DeleteBucket(bCatalogue); err != nil {
		return r, nil, err
	}
	if err := w.tx.MoveBucket(bCatalogue, stage, nil); err != nil {
		return r, nil, err
	}
	if err := w.tx.DeleteBucket(bStage); err != nil {
		return r, nil, err
	}
	w.put(bMeta, kCatVer, u64(m.Version))
	w.putJSON(bMeta, kHQConfig, v)
	if m.Key != "" {
		keys.SetScopeKey(m.Store, m.Key)
		keys.Catalogue = m.Key
		if r.Rules {
			keys.Rules = m.Key
		}
		w.putJSON(bMeta, kDocKeys, keys)
	}
	if r.Rules {
		b, err := json.Marshal(rs)
		if err != nil {
			return r, nil, err
		}
		w.put(bMeta, kRules, b)
		w.eng = RuleSetEngine(rs)
		return r, rs, nil
	}
	return r, nil, nil
}

func readManifest(tx *bolt.Tx) (*manifest, error) {
	b := tx.Bucket(bStage)
	if b == nil {
		return nil, nil
	}
	v := b.Get(kManifest)
	if v == nil {
		return nil, nil
	}
	var m manifest
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, fmt.Errorf("ledger catalogue staging does not decode: %v: %w", err, ErrInconsistent)
	}
	return &m, nil
}

func stagingOf(tx *bolt.Tx, m manifest) Staging {
	s := Staging{Version: m.Version, Store: m.Store, Want: len(m.Digests)}
	b := tx.Bucket(bStage)
	for i := range m.Digests {
		if b != nil && b.Get(pieceKey(i)) != nil {
			s.Have++
		} else if len(s.Missing) < 32 {
			s.Missing = append(s.Missing, i)
		}
	}
	return s
}

// CatalogueStaging says what is staged (Version 0: nothing).
func (l *Ledger) CatalogueStaging() (Staging, error) {
	var s Staging
	err := l.viewFile(func(tx *bolt.Tx) error {
		m, err := readManifest(tx)
		if err != nil || m == nil {
			return err
		}
		s = stagingOf(tx, *m)
		return nil
	})
	return s, err
}
