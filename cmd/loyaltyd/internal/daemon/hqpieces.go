package daemon

import (
	"context"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// ApplyPieced is the uplink's OnPiecedConfig: a store document whose
// catalogue comes in pieces is staged in the ledger (nothing in force
// changes until the last piece is there).
func (c *configState) ApplyPieced(ctx context.Context, doc protocol.Config) (uplink.Pieces, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.led.BeginPieced(ctx, ledger.PiecedConfig{
		Doc:     ledger.ConfigDoc{Store: doc.Scope == protocol.ScopeStore, Version: doc.ConfigVersion, Rules: doc.Rules, Key: doc.SignedBy},
		Digests: doc.CataloguePieces.Digests, Items: doc.CataloguePieces.Items,
	})
	if err != nil {
		return uplink.Pieces{}, err
	}
	return piecesOf(st), nil
}

// ApplyPiece is the uplink's OnPiece: it stages one piece; with the last
// one the document's catalogue, rule set and version go in force together.
func (c *configState) ApplyPiece(ctx context.Context, p protocol.CataloguePiece, digest string) (uplink.Pieces, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	items := make([]ledger.Item, len(p.Items))
	for i, it := range p.Items {
		items[i] = ledger.Item{SKU: it.SKU, Name: it.Name, Price: it.Price, Category: it.Category}
	}
	st, err := c.led.StagePiece(ctx, p.ConfigVersion, p.Index, digest, items)
	if err != nil {
		return uplink.Pieces{}, err
	}
	if st.Applied {
		if st.Result.Rules && c.OnRules != nil {
			if rs := c.led.Rules(); rs != nil {
				c.log.Info("rules from head office in force", "rules_version", rs.Version, "scope", protocol.ScopeStore, "config_version", st.Version)
				c.OnRules(rs)
			}
		}
		c.log.Info("catalogue from head office in force", "pieces", st.Want, "scope", protocol.ScopeStore, "config_version", st.Version)
	}
	return piecesOf(st), nil
}

func piecesOf(st ledger.Staging) uplink.Pieces {
	return uplink.Pieces{Version: st.Version, Have: st.Have, Want: st.Want, Missing: st.Missing, Applied: st.Applied}
}
