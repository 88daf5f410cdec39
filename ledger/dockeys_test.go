package ledger_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// TestRemovedKeyFloors: a floor head office's document sets (the scope's
// config version, the rule set's and the catalogue's versions) holds back
// older documents while the key that signed it is pinned, or unknown (a
// ledger written before keys were recorded, the register's own
// catalogue); once the register no longer pins it (NotePinned), a
// document signed by a pinned key goes in force whatever its versions and
// sets the floors with its own key, which survive a restart. A ledger that
// recorded no key marks its unknown floors as rotated out only when a key
// it had pinned at an earlier start is gone.
func TestRemovedKeyFloors(t *testing.T) {
	ctx := context.Background()
	const leaked, fresh = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"
	rs := func(v int) *rules.RuleSet {
		r, err := rules.Decode([]byte(`{"version":1,"earn":{"points_per_unit":"1"}}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Version = v
		return r
	}
	cat := func(price ledger.Money) []ledger.Item {
		return []ledger.Item{{SKU: "4006381333931", Name: "pen", Price: price}}
	}
	apply := func(l *ledger.Ledger, d ledger.ConfigDoc) error {
		_, err := l.ApplyConfig(ctx, d)
		return err
	}
	pin := func(l *ledger.Ledger, ids ...string) {
		t.Helper()
		if _, err := l.NotePinned(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}
	open := func(path string) *ledger.Ledger { return ledgertest.OpenAt(t, path, &ledger.Options{Register: "r1"}) }
	inForce := func(l *ledger.Ledger, chain, store uint64, rv int, price ledger.Money) {
		t.Helper()
		v, err := l.HQConfigVersions()
		it, ierr := l.Item("4006381333931")
		if err != nil || ierr != nil || v.Chain != chain || v.Store != store || l.RuleVersion() != rv || it.Price != price {
			t.Fatalf("in force %+v (%v), rules %d, pen %d (%v); want %d/%d, rules %d, pen %d", v, err, l.RuleVersion(), it.Price, ierr, chain, store, rv, price)
		}
	}

	t.Run("leaked key removed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		l := open(path)
		pin(l, leaked)
		if err := apply(l, ledger.ConfigDoc{Version: 1 << 53, Rules: rs(1_000_000), Key: leaked}); err != nil {
			t.Fatal(err)
		}
		if err := apply(l, ledger.ConfigDoc{Store: true, Version: 1 << 53, Catalogue: cat(1), Key: leaked}); err != nil {
			t.Fatal(err)
		}
		genuine := ledger.ConfigDoc{Version: 9, Rules: rs(3), Key: fresh}
		pin(l, leaked, fresh) // both pinned: the version rules hold
		if err := apply(l, genuine); !errors.Is(err, ledger.ErrStaleVersion) {
			t.Fatalf("a lower version while the floor's key is pinned: %v", err)
		}
		pin(l, fresh)
		if err := apply(l, genuine); err != nil {
			t.Fatal(err)
		}
		if err := apply(l, ledger.ConfigDoc{Store: true, Version: 9, Catalogue: cat(250), Key: fresh}); err != nil {
			t.Fatal(err)
		}
		inForce(l, 9, 9, 3, 250)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = open(path)
		k, err := l.DocKeys()
		if err != nil || k.Chain != fresh || k.Store != fresh || k.Rules != fresh || k.Catalogue != fresh {
			t.Fatalf("keys after a restart %+v %v", k, err)
		}
		if err := apply(l, ledger.ConfigDoc{Store: true, Version: 8, Catalogue: cat(999), Key: fresh}); !errors.Is(err, ledger.ErrStaleVersion) {
			t.Fatalf("an older document of the new key: %v", err)
		}
		inForce(l, 9, 9, 3, 250)
	})

	t.Run("no key recorded, rotated after an upgrade", func(t *testing.T) {
		l := open(filepath.Join(t.TempDir(), "ledger.db"))
		if err := apply(l, ledger.ConfigDoc{Version: 1 << 53, Rules: rs(1_000_000)}); err != nil { // an earlier release: no key
			t.Fatal(err)
		}
		pin(l, leaked) // the first start of this release records the pin
		if err := apply(l, ledger.ConfigDoc{Version: 9, Rules: rs(3), Key: leaked}); !errors.Is(err, ledger.ErrStaleVersion) {
			t.Fatalf("an unknown key's floor: %v", err)
		}
		k := pinned(t, l, fresh) // the operator removed the leaked key
		if k.Chain != ledger.KeyRotatedOut || k.Rules != ledger.KeyRotatedOut || k.Store != "" {
			t.Fatalf("unknown floors after a rotation: %+v", k)
		}
		if err := apply(l, ledger.ConfigDoc{Version: 9, Rules: rs(3), Key: fresh}); err != nil {
			t.Fatal(err)
		}
		if v, _ := l.HQConfigVersions(); v.Chain != 9 || l.RuleVersion() != 3 {
			t.Fatalf("in force %+v, rules %d", v, l.RuleVersion())
		}
	})

	t.Run("no key recorded, upgraded and rotated at once", func(t *testing.T) {
		l := open(filepath.Join(t.TempDir(), "ledger.db"))
		if err := apply(l, ledger.ConfigDoc{Version: 1 << 53}); err != nil {
			t.Fatal(err)
		}
		pin(l, fresh)
		if err := apply(l, ledger.ConfigDoc{Version: 9, Key: fresh}); !errors.Is(err, ledger.ErrStaleVersion) {
			t.Fatalf("nothing tells this ledger a key was removed, so the version rules hold: %v", err)
		}
	})
}

func pinned(t *testing.T, l *ledger.Ledger, ids ...string) ledger.DocKeys {
	t.Helper()
	k, err := l.NotePinned(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
