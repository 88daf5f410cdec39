package daemon

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/powerfs"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestConfigVersionsSurvivePowerCuts: head office's documents (a rule set,
// a catalogue and the config version each) are applied while the power is
// cut at random moments; after each cut the ledger holds, for the last
// document applied, its version, its rule set and its catalogue together
// (never new rules beside an old version), never older than the last
// Apply that returned.
func TestConfigVersionsSurvivePowerCuts(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 17))
	f := powerfs.Mount(t, &powerfs.Options{Seed: seed, Latency: powerfs.Latency{Median: 200 * time.Microsecond}})
	path := filepath.Join(f.Dir, "ledger.db")
	doc := func(v uint64) protocol.Config {
		return protocol.Config{Scope: protocol.ScopeChain, ConfigVersion: v, Rules: ruleSet(int(v), "1"),
			Catalogue: []protocol.Product{{SKU: "4006381333931", Name: "Pen", Price: ledger.Money(100 + v)}}}
	}
	var acked, tried uint64
	for round := range 8 {
		led, err := ledger.Open(path, &ledger.Options{Register: "r1"})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		c, err := loadConfigState(led, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Versions().Chain
		it, ierr := led.Item("4006381333931")
		if got < acked || got > tried || (got > 0 && (led.RuleVersion() != int(got) || ierr != nil || it.Price != ledger.Money(100+got))) {
			t.Fatalf("round %d: version %d, rules %d, item %+v (%v) after the cut; applied %d, tried %d", round, got, led.RuleVersion(), it, ierr, acked, tried)
		}
		var ack, try atomic.Uint64
		ack.Store(got)
		try.Store(got)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for v := got + 1; ; v++ {
				try.Store(v)
				if c.Apply(context.Background(), doc(v)) != nil {
					return // the power is off
				}
				ack.Store(v)
			}
		}()
		// At least one document per round is applied before the cut (a
		// loaded machine may be slow to start), then the cut lands at random.
		for deadline := time.Now().Add(10 * time.Second); ack.Load() == got && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond) // poll interval of a bounded wait
		}
		time.Sleep(time.Duration(rng.IntN(5000)) * time.Microsecond)
		if _, err := f.Cut(rng.IntN(2) == 0); err != nil {
			t.Fatal(err)
		}
		<-done
		_ = led.Close()
		acked, tried = ack.Load(), try.Load()
		if err := f.Remount(seed + uint64(round)); err != nil {
			t.Fatal(err)
		}
	}
	if acked == 0 {
		t.Fatal("no document applied before any cut")
	}
	t.Logf("8 power cuts while applying documents; last applied version %d", acked)
}
