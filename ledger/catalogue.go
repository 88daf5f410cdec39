package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Item is a catalogue entry held by the ledger so the register can price
// and categorise a scanned SKU while offline.
type Item struct {
	SKU      string `json:"sku"`
	Name     string `json:"name"`
	Price    Money  `json:"price"`
	Category string `json:"category,omitempty"`
}

// PutCatalogue replaces the whole catalogue with items, tagged version.
// Only a version newer than the one held is accepted (ErrStaleVersion);
// items need a SKU, a positive price and unique SKUs (ErrInvalid).
func (l *Ledger) PutCatalogue(ctx context.Context, version int, items []Item) error {
	if err := checkCatalogue(version, items); err != nil {
		return fmt.Errorf("ledger catalogue: %w", err)
	}
	_, err := l.submit(ctx, func(w *wtx) (any, error) {
		w.direct = true // writes nested buckets: committed, not logged
		cur := getU64(w.tx.Bucket(bMeta), kCatVer)
		if uint64(version) <= cur {
			return nil, fmt.Errorf("ledger catalogue: version %d, holding %d: %w", version, cur, ErrStaleVersion)
		}
		if err := w.replaceCatalogue(uint64(version), items); err != nil {
			return nil, err
		}
		return nil, w.ownFloor(false)
	})
	return err
}

// checkCatalogue validates a catalogue before anything is written.
func checkCatalogue(version int, items []Item) error {
	if version <= 0 {
		return fmt.Errorf("version %d: %w", version, ErrInvalid)
	}
	seen := map[string]bool{}
	for i, it := range items {
		if err := validID(fmt.Sprintf("item %d sku", i+1), it.SKU); err != nil {
			return err
		}
		if err := noCards(fmt.Sprintf("item %d name", i+1), it.Name, fmt.Sprintf("item %d category", i+1), it.Category); err != nil {
			return err
		}
		if seen[it.SKU] {
			return fmt.Errorf("sku %q listed twice: %w", it.SKU, ErrInvalid)
		}
		seen[it.SKU] = true
		if it.Price <= 0 {
			return fmt.Errorf("sku %q price %d must be positive: %w", it.SKU, it.Price, ErrInvalid)
		}
	}
	return nil
}

// replaceCatalogue swaps the whole catalogue inside the op's transaction;
// an error leaves the transaction to be rolled back (dirty).
func (w *wtx) replaceCatalogue(version uint64, items []Item) error {
	w.direct = true // replaces buckets: the batch is committed, not logged (salelog.go)
	w.dirty = true
	if err := w.tx.DeleteBucket(bCatalogue); err != nil {
		return err
	}
	cat, err := w.tx.CreateBucket(bCatalogue)
	if err != nil {
		return err // the old catalogue is gone: the transaction is rolled back (dirty)
	}
	// Written once, then only read: full pages (fewer bytes to write and
	// to page in at a scan).
	cat.FillPercent = catalogueFill
	for _, it := range items {
		w.putJSON(bCatalogue, []byte(it.SKU), it)
	}
	w.put(bMeta, kCatVer, u64(version))
	return nil
}

// Item returns the catalogue entry for sku (ErrUnknownItem when absent).
func (l *Ledger) Item(sku string) (Item, error) {
	var it Item
	err := l.viewFile(func(tx *bolt.Tx) error {
		v := tx.Bucket(bCatalogue).Get([]byte(sku))
		if v == nil {
			return fmt.Errorf("ledger item %q: %w", sku, ErrUnknownItem)
		}
		return json.Unmarshal(v, &it)
	})
	return it, err
}

// SetRules puts a rule set in force. It must validate and be newer than
// the version in force (ErrStaleVersion). It is stored in the file, so it
// survives a restart, and its version is written on every later sale and
// point event. Points already earned keep the expiry they were given.
func (l *Ledger) SetRules(rs *rules.RuleSet) error {
	if rs == nil {
		return fmt.Errorf("ledger rules: nil rule set: %w", ErrInvalid)
	}
	if err := rs.Validate(); err != nil {
		return fmt.Errorf("ledger rules: %w", err)
	}
	b, err := json.Marshal(rs)
	if err != nil {
		return fmt.Errorf("ledger rules: %w", err)
	}
	_, err = l.submit(context.Background(), func(w *wtx) (any, error) {
		w.direct = true // writes nested buckets: committed, not logged
		cur := w.eng.RuleVersion()
		if rs.Version <= cur {
			return nil, fmt.Errorf("ledger rules: version %d, in force %d: %w", rs.Version, cur, ErrStaleVersion)
		}
		w.put(bMeta, kRules, b)
		w.eng = RuleSetEngine(rs) // later ops of this batch score with it
		return nil, w.ownFloor(true)
	})
	if err != nil {
		return err
	}
	l.engine.Store(&engineBox{RuleSetEngine(rs)})
	return nil
}

// RuleVersion returns the version of the rules in force (0: none).
func (l *Ledger) RuleVersion() int { return l.eng().RuleVersion() }

// Reward returns the reward id of the rule set in force, so callers follow
// head office's updates instead of a copy taken at start.
func (l *Ledger) Reward(id string) (rules.Reward, bool) { return l.eng().Reward(id) }
