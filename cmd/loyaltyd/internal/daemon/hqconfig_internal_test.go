package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

func ruleSet(v int, perUnit string) *rules.RuleSet {
	rs, err := rules.Decode([]byte(`{"version":` + itoa(v) + `,"unit":100,"earn":{"points_per_unit":` + perUnit + `},"rewards":[{"id":"r` + itoa(v) + `","name":"R","points":10,"discount":100}]}`))
	if err != nil {
		panic(err)
	}
	return rs
}

func itoa(v int) string { return strconv.Itoa(v) }

// TestConfigStateApply: a refused document changes nothing (neither the
// ledger nor the versions in force); the same document again is a no-op;
// the versions and head office's rule set survive a reload.
func TestConfigStateApply(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	led, err := ledger.Open(path, &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	c, err := loadConfigState(led, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var applied []int
	c.OnRules = func(rs *rules.RuleSet) { applied = append(applied, rs.Version) }
	cat := func(price ledger.Money) []protocol.Product {
		return []protocol.Product{{SKU: "4006381333931", Name: "Pen", Price: price}}
	}
	good := []protocol.Config{
		{Scope: protocol.ScopeChain, ConfigVersion: 3, Rules: ruleSet(5, "2")},
		{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 7, Catalogue: cat(400)},
	}
	for _, d := range good {
		if err := c.Apply(ctx, d); err != nil {
			t.Fatalf("apply %s %d: %v", d.Scope, d.ConfigVersion, err)
		}
	}
	want := uplink.ConfigVersions{Chain: 3, Store: 7}
	check := func(name string) {
		t.Helper()
		if v := c.Versions(); v != want {
			t.Errorf("%s: versions %+v, want %+v", name, v, want)
		}
		if it, err := led.Item("4006381333931"); err != nil || it.Price != 400 {
			t.Errorf("%s: pen %+v %v, want price 400", name, it, err)
		}
		if led.RuleVersion() != 5 {
			t.Errorf("%s: rule version %d, want 5", name, led.RuleVersion())
		}
	}
	check("after the good documents")
	refused := []struct {
		name string
		doc  protocol.Config
	}{
		{"older rules", protocol.Config{Scope: protocol.ScopeChain, ConfigVersion: 4, Rules: ruleSet(4, "9")}},
		{"older rules with a new catalogue", protocol.Config{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 8, Rules: ruleSet(1, "9"), Catalogue: cat(999)}},
		{"older catalogue", protocol.Config{Scope: protocol.ScopeChain, ConfigVersion: 5, Catalogue: cat(999)}},
		{"newer rules with an older catalogue", protocol.Config{Scope: protocol.ScopeChain, ConfigVersion: 6, Rules: ruleSet(9, "9"), Catalogue: cat(999)}},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			if err := c.Apply(ctx, r.doc); !errors.Is(err, ledger.ErrStaleVersion) {
				t.Fatalf("Apply = %v, want ErrStaleVersion", err)
			}
			check(r.name)
		})
	}
	// the same documents again (a crash before the versions were saved)
	for _, d := range good {
		if err := c.Apply(ctx, d); err != nil {
			t.Fatalf("re-apply %s %d: %v", d.Scope, d.ConfigVersion, err)
		}
	}
	check("after re-applying")
	if len(applied) != 1 || applied[0] != 5 {
		t.Errorf("OnRules called for %v, want [5]", applied)
	}
	c2, err := loadConfigState(led, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if v := c2.Versions(); v != want {
		t.Errorf("reloaded versions %+v, want %+v", v, want)
	}
	if rs := led.Rules(); rs == nil || rs.Version != 5 || rs.Rewards[0].ID != "r5" {
		t.Errorf("reloaded rules %+v", rs)
	}
	// A document whose catalogue cannot be written puts nothing in force:
	// not its newer rule set either (before, the rules went in first).
	bad := protocol.Config{Scope: protocol.ScopeChain, ConfigVersion: 9, Rules: ruleSet(9, "9"),
		Catalogue: []protocol.Product{{SKU: "4006381333931", Name: "Pen", Price: 0}}}
	if err := c2.Apply(ctx, bad); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("a document with a bad catalogue: %v, want ErrInvalid", err)
	}
	check("after a document with a bad catalogue")
}

// TestConfigVersionsCarriedOver: the versions an earlier release kept in
// the side file next to the ledger are carried into the ledger once.
func TestConfigVersionsCarriedOver(t *testing.T) {
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	side := filepath.Join(dir, legacyVersionsFile)
	if err := os.WriteFile(side, []byte(`{"chain":4,"store":11,"rules":{"version":2}}`), 0o640); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfigState(led, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Versions(); v != (uplink.ConfigVersions{Chain: 4, Store: 11}) {
		t.Fatalf("carried over %+v", v)
	}
	if _, err := os.Stat(side); !os.IsNotExist(err) {
		t.Fatalf("the side file is still read at every start: %v", err)
	}
}

// TestConfigCatalogueOfTheVersionHeldIsSaid: a document whose catalogue
// has the version the register already holds (its own catalogue.version,
// here 1) is applied for its scope but its catalogue is not put in force;
// that was silent and now says so in the log.
func TestConfigCatalogueOfTheVersionHeldIsSaid(t *testing.T) {
	ctx := context.Background()
	led, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	if err := led.PutCatalogue(ctx, 1, []ledger.Item{{SKU: "4006381333931", Name: "Pen", Price: 250}}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c, err := loadConfigState(led, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	doc := protocol.Config{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 1, Catalogue: []protocol.Product{{SKU: "4006381333931", Name: "Pen", Price: 260}}}
	if err := c.Apply(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if it, err := led.Item("4006381333931"); err != nil || it.Price != 250 {
		t.Fatalf("item %+v %v: the held catalogue stays", it, err)
	}
	if !strings.Contains(logs.String(), "catalogue not put in force") {
		t.Errorf("nothing said about the catalogue left out:\n%s", logs.String())
	}
	logs.Reset()
	doc.ConfigVersion = 2
	if err := c.Apply(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if it, err := led.Item("4006381333931"); err != nil || it.Price != 260 {
		t.Fatalf("item %+v %v after version 2", it, err)
	}
	if strings.Contains(logs.String(), "not put in force") {
		t.Errorf("a warning for a catalogue put in force:\n%s", logs.String())
	}
}
