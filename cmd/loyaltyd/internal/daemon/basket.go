package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
)

// basketPath is where the open basket is kept across a restart: next to
// the ledger.
func (r *register) basketPath() string {
	return filepath.Join(filepath.Dir(r.cfg.Ledger.Path), "basket.json")
}

// maxBasketFile bounds what is read back (1000 lines of JSON fit easily).
const maxBasketFile = 1 << 20

// restoreBasket reopens the basket that was open when the daemon stopped
// (or tells the cashier and the kiosk it was lost), then keeps the open
// basket in the file after every change.
func (r *register) restoreBasket() {
	path := r.basketPath()
	var kept *checkout.KeptBasket
	var lost error
	switch b, err := os.ReadFile(path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		lost = err
	case len(b) > maxBasketFile:
		lost = fmt.Errorf("%s: %d bytes", path, len(b))
	default:
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var k checkout.KeptBasket
		if err := dec.Decode(&k); err != nil {
			lost = fmt.Errorf("%s: %w", path, err)
		} else {
			kept = &k
		}
	}
	fx := r.drv.Restore(context.Background(), kept, lost)
	switch {
	case fx.Err != nil:
		r.log.Warn("the basket open before the restart is lost; the cashier was told", "err", fx.Err)
		_ = os.Remove(path)
	case kept != nil:
		r.log.Info("basket restored after a restart", "sale", kept.SaleID, "lines", len(kept.Lines))
	}
	var last []byte
	if kept != nil && fx.Err == nil {
		last, _ = json.Marshal(kept)
	}
	r.drv.SetBasketSaver(func(b *checkout.KeptBasket) {
		if b == nil {
			if last != nil {
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					r.log.Warn("kept basket not removed", "err", err)
				}
				last = nil
			}
			return
		}
		data, err := json.Marshal(b)
		if err != nil || bytes.Equal(data, last) {
			return
		}
		// write and rename: a restart finds the old basket or the new one,
		// never half of one
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err == nil {
			err = os.Rename(tmp, path)
			if err != nil {
				r.log.Warn("basket not kept for a restart", "err", err)
				return
			}
		} else {
			r.log.Warn("basket not kept for a restart", "err", err)
			return
		}
		last = data
	})
}
