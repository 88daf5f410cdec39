package uplink_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// The daemon wires the uplink to its ledger: events go up, member
// summaries and config come down.
func Example() {
	dir, _ := os.MkdirTemp("", "uplink-example")
	defer os.RemoveAll(dir)
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), &ledger.Options{Register: "r1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	u, err := uplink.New(l, &uplink.Options{
		Brokers:   []string{"tcp://127.0.0.1:1883"},
		Store:     "s1",
		Register:  "r1",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
		OnMembers: uplink.ApplyMembersTo(l, "r1"),
		OnConfig: func(ctx context.Context, c protocol.Config) error {
			if c.Rules != nil {
				if err := l.SetRules(c.Rules); err != nil {
					return err
				}
			}
			items := make([]ledger.Item, len(c.Catalogue))
			for i, p := range c.Catalogue {
				items[i] = ledger.Item{SKU: p.SKU, Name: p.Name, Price: p.Price, Category: p.Category}
			}
			if len(items) == 0 {
				return nil
			}
			return l.PutCatalogue(ctx, int(c.ConfigVersion), items)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// go u.Run(ctx) in the daemon; Status feeds the cashier's signal.
	fmt.Println(u.Status())
	// Output: offline, 0 pending, no ack yet, watermark 0
}
