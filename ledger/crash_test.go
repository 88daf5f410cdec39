package ledger_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
)

var long = flag.Bool("long", false, "run the long variants (more crash rounds, bigger random sequences)")

// TestCrashChild is the child of TestCrashKillNine: it records sales from
// four goroutines and prints "ACK <id>" only after RecordSale returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("LEDGER_CRASH_CHILD")
	if path == "" {
		t.Skip("child process of TestCrashKillNine")
	}
	round := os.Getenv("LEDGER_CRASH_ROUND")
	l, err := ledger.Open(path, &ledger.Options{Register: "r1", Engine: testEngine(), LockTimeout: 10 * time.Second})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1", Aliases: []string{"c1"}}); err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				id := fmt.Sprintf("%s-%d-%d", round, g, n)
				req := ledger.SaleRequest{ID: id, MemberID: "m1", Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: int64(1 + n%3), UnitPrice: 1000}}}
				if _, err := l.RecordSale(ctx, req); err != nil {
					fmt.Println("ERR", err)
					os.Exit(2)
				}
				if n%5 == 4 {
					if _, err := l.Refund(ctx, ledger.RefundRequest{ID: "rf-" + id, SaleID: id}); err != nil {
						fmt.Println("ERR", err)
						os.Exit(2)
					}
				}
				mu.Lock()
				fmt.Println("ACK", id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashKillNine kills a child that records sales with SIGKILL at random
// moments, many times; after each reopen every acknowledged sale is present
// exactly once and Check passes. The kill moments are drawn from a new seed
// each run (logged); TEST_SEED=n replays one.
func TestCrashKillNine(t *testing.T) {
	t.Parallel()
	rounds := 30
	if *long {
		rounds = 300
	}
	seed, _ := testkit.Seed(t) // TEST_SEED=n replays a run
	rng := rand.New(rand.NewPCG(seed, 7))
	path := filepath.Join(t.TempDir(), "ledger.db")
	acked := map[string]bool{}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), "LEDGER_CRASH_CHILD="+path, fmt.Sprintf("LEDGER_CRASH_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 1 + rng.IntN(60)
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if id, ok := strings.CutPrefix(line, "ACK "); ok {
				acked[id] = true
				n++
				if n == killAfter {
					_ = cmd.Process.Kill()
				}
			} else if strings.HasPrefix(line, "ERR") {
				_ = cmd.Process.Kill()
				t.Fatalf("round %d child: %s", round, line)
			}
		}
		_ = cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d acks before being killed", round, n)
		}
		verifyAfterCrash(t, path, acked, round)
	}
	t.Logf("%d rounds, %d acknowledged sales", rounds, len(acked))
}

func verifyAfterCrash(t *testing.T, path string, acked map[string]bool, round int) {
	t.Helper()
	l, err := ledger.Open(path, &ledger.Options{Register: "r1", Engine: testEngine()})
	if err != nil {
		t.Fatalf("round %d reopen: %v", round, err)
	}
	defer l.Close()
	if err := l.Check(); err != nil {
		t.Fatalf("round %d check: %v", round, err)
	}
	seen := map[string]int{}
	for after := uint64(0); ; {
		recs, err := l.Outbox(after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Type == ledger.OutSale {
				var s ledger.Sale
				if err := json.Unmarshal(r.Data, &s); err != nil {
					t.Fatal(err)
				}
				seen[s.ID]++
			}
			after = r.Seq
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Fatalf("round %d: acknowledged sale %s is in the outbox %d times", round, id, seen[id])
		}
		if _, err := l.Sale(id); err != nil {
			t.Fatalf("round %d: acknowledged sale %s: %v", round, id, err)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("round %d: sale %s recorded %d times", round, id, n)
		}
	}
	ps, err := l.Purchases("m1")
	if err != nil {
		t.Fatal(err)
	}
	sales := 0
	for _, p := range ps {
		if p.Amount > 0 {
			sales++
		}
	}
	if sales != len(seen) {
		t.Fatalf("round %d: purchase index has %d sales, outbox %d", round, sales, len(seen))
	}
}
