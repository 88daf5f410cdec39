package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

// pieces cuts n items of version v into k pieces with made-up digests.
func stagePieces(v, n, k int, price ledger.Money) ([][]ledger.Item, []string) {
	out := make([][]ledger.Item, k)
	dig := make([]string, k)
	for i := range n {
		out[i%k] = append(out[i%k], ledger.Item{SKU: fmt.Sprintf("S%05d", i), Name: "n", Price: price + ledger.Money(i)})
	}
	for i := range dig {
		dig[i] = fmt.Sprintf("digest-%d-%d", v, i)
	}
	return out, dig
}

// TestCataloguePieces: a catalogue staged piece by piece goes in force
// only with the last piece, with the document's rule set and version; a
// piece of another version, with the wrong digest, repeating a SKU of
// another piece, or an older document change nothing in force; a reopen
// in the middle keeps what was staged.
func TestCataloguePieces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l := ledgertest.OpenAt(t, path, nil)
	ctx := context.Background()
	if err := l.PutCatalogue(ctx, 1, []ledger.Item{{SKU: "OLD", Name: "old", Price: 1}}); err != nil {
		t.Fatal(err)
	}
	inForce := func(l *ledger.Ledger, wantOld bool) {
		t.Helper()
		_, errOld := l.Item("OLD")
		_, errNew := l.Item("S00000")
		if (errOld == nil) != wantOld || (errNew == nil) == wantOld {
			t.Fatalf("old item: %v, new item: %v; want the old catalogue in force: %v", errOld, errNew, wantOld)
		}
	}
	pcs, dig := stagePieces(5, 1000, 4, 10)
	rs := realRules(t, 7, 12)
	doc := ledger.PiecedConfig{Doc: ledger.ConfigDoc{Store: true, Version: 5, Rules: rs}, Digests: dig, Items: 1000}
	st, err := l.BeginPieced(ctx, doc)
	if err != nil || st.Have != 0 || st.Want != 4 || st.Applied {
		t.Fatalf("begin: %+v %v", st, err)
	}
	_, otherDig := stagePieces(6, 1000, 4, 10)
	bad := []struct {
		name    string
		version uint64
		index   int
		digest  string
		items   []ledger.Item
		want    error
	}{
		{"another version", 6, 0, otherDig[0], pcs[0], ledger.ErrOtherVersion},
		{"wrong digest", 5, 0, dig[1], pcs[0], ledger.ErrInvalid},
		{"index beyond", 5, 4, dig[0], pcs[0], ledger.ErrInvalid},
		{"bad item", 5, 0, dig[0], []ledger.Item{{SKU: "X", Price: 0}}, ledger.ErrInvalid},
	}
	for _, tc := range bad {
		if _, err := l.StagePiece(ctx, tc.version, tc.index, tc.digest, tc.items); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	for i := range 2 {
		if st, err = l.StagePiece(ctx, 5, i, dig[i], pcs[i]); err != nil || st.Have != i+1 || st.Applied {
			t.Fatalf("piece %d: %+v %v", i, st, err)
		}
	}
	// A SKU that another piece already brought: refused.
	dup := append([]ledger.Item{pcs[0][0]}, pcs[2][1:]...)
	if _, err := l.StagePiece(ctx, 5, 2, dig[2], dup); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("duplicate across pieces: %v", err)
	}
	inForce(l, true)
	if v, _ := l.HQConfigVersions(); v.Store != 0 || l.RuleVersion() == 7 {
		t.Fatalf("in force before the last piece: %+v rules %d", v, l.RuleVersion())
	}

	// Reopen in the middle: the staging survives; the same document
	// resumes it.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = ledgertest.OpenAt(t, path, nil)
	if st, err := l.CatalogueStaging(); err != nil || st.Version != 5 || st.Have != 2 || fmt.Sprint(st.Missing) != "[2 3]" {
		t.Fatalf("staging after reopen: %+v %v", st, err)
	}
	if st, err := l.BeginPieced(ctx, doc); err != nil || st.Have != 2 {
		t.Fatalf("resume: %+v %v", st, err)
	}
	inForce(l, true)
	if st, err = l.StagePiece(ctx, 5, 1, dig[1], pcs[1]); err != nil || st.Have != 2 { // again: a no-op
		t.Fatalf("piece 1 again: %+v %v", st, err)
	}
	if st, err = l.StagePiece(ctx, 5, 2, dig[2], pcs[2]); err != nil || st.Applied {
		t.Fatalf("piece 2: %+v %v", st, err)
	}
	st, err = l.StagePiece(ctx, 5, 3, dig[3], pcs[3])
	if err != nil || !st.Applied || !st.Result.Catalogue || !st.Result.Rules {
		t.Fatalf("last piece: %+v %v", st, err)
	}
	inForce(l, false)
	for _, sku := range []string{"S00000", "S00003", "S00999"} { // the last piece's items too
		if it, err := l.Item(sku); err != nil || it.SKU != sku {
			t.Fatalf("item %s: %+v %v", sku, it, err)
		}
	}
	if v, _ := l.HQConfigVersions(); v.Store != 5 || l.RuleVersion() != 7 {
		t.Fatalf("after the last piece: %+v rules %d", v, l.RuleVersion())
	}
	if st, err := l.CatalogueStaging(); err != nil || st.Version != 0 {
		t.Fatalf("staging left after apply: %+v %v", st, err)
	}
	// The same or an older document again: stale, nothing staged.
	if _, err := l.BeginPieced(ctx, doc); !errors.Is(err, ledger.ErrStaleVersion) {
		t.Fatalf("same document again: %v", err)
	}
	if _, err := l.StagePiece(ctx, 5, 0, dig[0], pcs[0]); !errors.Is(err, ledger.ErrOtherVersion) {
		t.Fatalf("piece after apply: %v", err)
	}
	// A newer document whose rule set is older than the one in force.
	_, dig8 := stagePieces(8, 10, 1, 10)
	if _, err := l.BeginPieced(ctx, ledger.PiecedConfig{Doc: ledger.ConfigDoc{Store: true, Version: 8, Rules: realRules(t, 6, 12)}, Digests: dig8, Items: 10}); !errors.Is(err, ledger.ErrStaleVersion) {
		t.Fatalf("older rules: %v", err)
	}
	// A new delivery replaces an unfinished one of another version.
	pcs9, dig9 := stagePieces(9, 10, 2, 99)
	if _, err := l.BeginPieced(ctx, ledger.PiecedConfig{Doc: ledger.ConfigDoc{Store: true, Version: 9}, Digests: dig9, Items: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StagePiece(ctx, 9, 0, dig9[0], pcs9[0]); err != nil {
		t.Fatal(err)
	}
	pcs10, dig10 := stagePieces(10, 10, 1, 7)
	if st, err := l.BeginPieced(ctx, ledger.PiecedConfig{Doc: ledger.ConfigDoc{Store: true, Version: 10}, Digests: dig10, Items: 10}); err != nil || st.Have != 0 {
		t.Fatalf("new delivery: %+v %v", st, err)
	}
	if _, err := l.StagePiece(ctx, 9, 1, dig9[1], pcs9[1]); !errors.Is(err, ledger.ErrOtherVersion) {
		t.Fatalf("piece of the replaced delivery: %v", err)
	}
	if st, err := l.StagePiece(ctx, 10, 0, dig10[0], pcs10[0]); err != nil || !st.Applied {
		t.Fatalf("single piece: %+v %v", st, err)
	}
	if it, err := l.Item("S00001"); err != nil || it.Price != 8 {
		t.Fatalf("version 10 item: %+v %v", it, err)
	}
}

// TestStagedCatalogueSuperseded: a store document staged in pieces (v5)
// is superseded by a newer store document that went in force inline (v6,
// no catalogue) before v5's last piece came. The last piece used to put
// v5's catalogue in force and move the store's config version back to 5;
// now v6 drops the staging, v5's late pieces and a second delivery of its
// document are refused, and an older store document is refused whole.
func TestStagedCatalogueSuperseded(t *testing.T) {
	l := ledgertest.OpenAt(t, filepath.Join(t.TempDir(), "ledger.db"), nil)
	ctx := context.Background()
	if err := l.PutCatalogue(ctx, 1, []ledger.Item{{SKU: "OLD", Name: "old", Price: 1}}); err != nil {
		t.Fatal(err)
	}
	pcs, dig := stagePieces(5, 100, 2, 10)
	v5 := ledger.PiecedConfig{Doc: ledger.ConfigDoc{Store: true, Version: 5}, Digests: dig, Items: 100}
	if st, err := l.BeginPieced(ctx, v5); err != nil || st.Want != 2 {
		t.Fatalf("begin v5: %+v %v", st, err)
	}
	if st, err := l.StagePiece(ctx, 5, 0, dig[0], pcs[0]); err != nil || st.Have != 1 {
		t.Fatalf("v5 piece 0: %+v %v", st, err)
	}
	// A chain document does not touch the store's staging.
	if _, err := l.ApplyConfig(ctx, ledger.ConfigDoc{Version: 9}); err != nil {
		t.Fatal(err)
	}
	if st, err := l.CatalogueStaging(); err != nil || st.Version != 5 || st.Have != 1 {
		t.Fatalf("staging after a chain document: %+v %v", st, err)
	}
	if _, err := l.ApplyConfig(ctx, ledger.ConfigDoc{Store: true, Version: 6}); err != nil {
		t.Fatal(err)
	}
	if st, err := l.CatalogueStaging(); err != nil || st.Version != 0 {
		t.Fatalf("staging after store v6 went in force: %+v %v", st, err)
	}
	if _, err := l.StagePiece(ctx, 5, 1, dig[1], pcs[1]); !errors.Is(err, ledger.ErrOtherVersion) {
		t.Fatalf("v5's last piece after v6: %v, want ErrOtherVersion", err)
	}
	if _, err := l.BeginPieced(ctx, v5); !errors.Is(err, ledger.ErrStaleVersion) {
		t.Fatalf("v5's document again after v6: %v, want ErrStaleVersion", err)
	}
	if _, err := l.ApplyConfig(ctx, ledger.ConfigDoc{Store: true, Version: 4, Catalogue: []ledger.Item{{SKU: "FOUR", Name: "four", Price: 4}}}); !errors.Is(err, ledger.ErrStaleVersion) {
		t.Fatalf("store v4 after v6: %v, want ErrStaleVersion", err)
	}
	if _, err := l.Item("OLD"); err != nil {
		t.Fatalf("the catalogue in force changed: %v", err)
	}
	for _, sku := range []string{"S00000", "FOUR"} {
		if _, err := l.Item(sku); err == nil {
			t.Fatalf("item %s of a superseded document in force", sku)
		}
	}
	if v, err := l.HQConfigVersions(); err != nil || v.Store != 6 || v.Chain != 9 {
		t.Fatalf("versions in force: %+v %v, want store 6, chain 9", v, err)
	}
	// The same version again (the retained copy after a restart) is not
	// refused, and a pieced v7 still goes in force.
	if _, err := l.ApplyConfig(ctx, ledger.ConfigDoc{Store: true, Version: 6}); err != nil {
		t.Fatalf("store v6 again: %v", err)
	}
	pcs7, dig7 := stagePieces(7, 10, 1, 20)
	if st, err := l.BeginPieced(ctx, ledger.PiecedConfig{Doc: ledger.ConfigDoc{Store: true, Version: 7}, Digests: dig7, Items: 10}); err != nil || st.Want != 1 {
		t.Fatalf("begin v7: %+v %v", st, err)
	}
	if st, err := l.StagePiece(ctx, 7, 0, dig7[0], pcs7[0]); err != nil || !st.Applied {
		t.Fatalf("v7's piece: %+v %v", st, err)
	}
	if v, _ := l.HQConfigVersions(); v.Store != 7 {
		t.Fatalf("store version after v7: %+v", v)
	}
}
