package daemon

import (
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/powerfs"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestConfigVersionsSurvivePowerCuts: the config versions file beside the
// ledger is rewritten while the power is cut at random moments; after
// each cut it reads back whole, never older than the last save that
// returned.
func TestConfigVersionsSurvivePowerCuts(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 17))
	f := powerfs.Mount(t, &powerfs.Options{Seed: seed, Latency: powerfs.Latency{Median: 200 * time.Microsecond}})
	path := filepath.Join(f.Dir, "ledger.db")
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
		c.rules = ruleSet(3, "1") // some bulk, as in the field
		var ack, try atomic.Uint64
		ack.Store(acked)
		try.Store(tried)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for v := tried + 1; ; v++ {
				try.Store(v)
				if c.save(uplink.ConfigVersions{Chain: v, Store: v}) != nil {
					return // the power is off
				}
				ack.Store(v)
			}
		}()
		// At least one save per round returns before the cut (a loaded
		// machine may be slow to start), then the cut lands at random.
		for deadline := time.Now().Add(10 * time.Second); ack.Load() == acked && time.Now().Before(deadline); {
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
		b, err := os.ReadFile(filepath.Join(f.Dir, configVersionsFile))
		if os.IsNotExist(err) && acked == 0 {
			continue
		}
		var sf stateFile
		if err != nil || json.Unmarshal(b, &sf) != nil || sf.Chain < acked || sf.Chain > tried || sf.Rules == nil {
			t.Fatalf("round %d: %d bytes %q (%v) after the cut; saved %d, tried %d", round, len(b), b, err, acked, tried)
		}
		tried = sf.Chain // the next round goes on from what survived
	}
	if acked == 0 {
		t.Fatal("no save returned in any round")
	}
	t.Logf("8 power cuts while saving; last saved version %d", acked)
}
