package protocol_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestSplitCatalogue: pieces stay under the size bound, keep every item
// in order, decode on their own topic and match the manifest's digests.
func TestSplitCatalogue(t *testing.T) {
	items := make([]protocol.Product, 5000)
	for i := range items {
		items[i] = protocol.Product{SKU: fmt.Sprintf("sku-%d", i), Name: "some article", Price: ledger.Money(i + 1)}
	}
	docs, m, err := protocol.SplitCatalogue("s1", 3, items, 32<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 5 || m.Count() != len(docs) || m.Items != 5000 {
		t.Fatalf("%d pieces, manifest %d pieces %d items", len(docs), m.Count(), m.Items)
	}
	n := 0
	for i, d := range docs {
		if len(d) > 32<<10 {
			t.Errorf("piece %d is %d bytes", i, len(d))
		}
		if protocol.PieceDigest(d) != m.Digests[i] {
			t.Errorf("piece %d digest", i)
		}
		p, err := protocol.DecodePiece(d, "s1", i)
		if err != nil || p.ConfigVersion != 3 || p.Count != len(docs) {
			t.Fatalf("piece %d: %+v %v", i, p.Count, err)
		}
		for _, it := range p.Items {
			if it != items[n] {
				t.Fatalf("item %d out of order: %+v", n, it)
			}
			n++
		}
		if _, err := protocol.DecodePiece(d, "s2", i); !errors.Is(err, protocol.ErrMismatch) {
			t.Errorf("piece %d for another store: %v", i, err)
		}
		if _, err := protocol.DecodePiece(d, "s1", i+1); !errors.Is(err, protocol.ErrMismatch) {
			t.Errorf("piece %d on another index: %v", i, err)
		}
	}
	if n != len(items) {
		t.Fatalf("%d items in the pieces, want %d", n, len(items))
	}
	// The manifest rides in a store document, never with an inline
	// catalogue nor in a chain document.
	cfg := protocol.Config{Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 3, CataloguePieces: m}
	if _, err := protocol.EncodeConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]protocol.Config{
		"chain":     {Scope: protocol.ScopeChain, ConfigVersion: 3, CataloguePieces: m},
		"both":      {Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 3, CataloguePieces: m, Catalogue: items[:1]},
		"no digest": {Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 3, CataloguePieces: &protocol.CataloguePieces{Items: 1}},
		"bad hex":   {Scope: protocol.ScopeStore, Store: "s1", ConfigVersion: 3, CataloguePieces: &protocol.CataloguePieces{Items: 1, Digests: []string{"xyz"}}},
	} {
		if _, err := protocol.EncodeConfig(c); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	dup := append([]protocol.Product{}, items[:3]...)
	dup[2].SKU = dup[0].SKU
	if _, _, err := protocol.SplitCatalogue("s1", 3, dup, 0); !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("duplicate SKU: %v", err)
	}
}

func TestPieceTopics(t *testing.T) {
	for topic, want := range map[string]string{
		"loyalty/v1/s1/catalogue/0":        "catalogue s1 0",
		"loyalty/v1/s1/catalogue/17":       "catalogue s1 17",
		"loyalty/v1/s1/catalogue/events":   "events s1 catalogue", // a register called "catalogue"
		"loyalty/v1/s1/catalogue/017":      "error",
		"loyalty/v1/s1/catalogue/-1":       "error",
		"loyalty/v1/s1/catalogue/99999999": "error",
		"loyalty/v1/s+/catalogue/1":        "error",
	} {
		got := "error"
		if tp, err := protocol.ParseTopic(topic); err == nil {
			if tp.Kind == protocol.KindCatalogue {
				got = fmt.Sprintf("%s %s %d", tp.Kind, tp.Store, tp.Piece)
			} else {
				got = fmt.Sprintf("%s %s %s", tp.Kind, tp.Store, tp.Register)
			}
		}
		if got != want {
			t.Errorf("%s: %s, want %s", topic, got, want)
		}
	}
}

func FuzzDecodePiece(f *testing.F) {
	docs, _, _ := protocol.SplitCatalogue("s1", 2, []protocol.Product{{SKU: "a", Name: "A", Price: 1}, {SKU: "b", Price: 2}}, 0)
	f.Add(docs[0])
	f.Add([]byte(`{"v":1,"store":"s1","config_version":1,"index":0,"count":1,"items":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := protocol.DecodePiece(b, "s1", 0)
		if err != nil {
			return
		}
		if _, err := protocol.EncodePiece(p); err != nil {
			t.Fatalf("accepted piece does not re-encode: %v", err)
		}
	})
}
