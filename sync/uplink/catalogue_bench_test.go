package uplink_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// BenchmarkCatalogue100k measures what a register does with a
// 100,000-item store catalogue delivered in pieces: open each signed
// piece, decode it, stage it in the ledger, and put the whole catalogue
// in force with the last piece (REPORT catalogue_100k_apply_s); the
// register's extra resident memory while applying (peak) and after
// (REPORT catalogue_100k_rss_mb, from /proc/self/status in a child
// process that does only this, so the benchmark's own allocations do not
// count); and the p99 of item lookups at the till, which read the ledger
// (REPORT catalogue_lookup_p99_us). Goals (issue 18): 10 s, 64 MB, 100 us.
func BenchmarkCatalogue100k(b *testing.B) {
	dir := b.TempDir()
	key, err := signing.Generate(nil)
	if err != nil {
		b.Fatal(err)
	}
	const store, n = "s1", 100_000
	items := make([]protocol.Product, n)
	for i := range items {
		items[i] = protocol.Product{SKU: ean13(i), Name: fmt.Sprintf("Article number %d", i), Category: "grocery", Price: ledger.Money(100 + i%5000)}
	}
	docs, m, err := protocol.SplitCatalogue(store, 2, items, 0)
	if err != nil {
		b.Fatal(err)
	}
	for i, d := range docs {
		env, err := key.Seal(protocol.CataloguePieceTopic(store, i), d)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("piece-%03d", i)), env, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	mf := strings.Join(append([]string{strconv.Itoa(m.Items)}, m.Digests...), "\n")
	if err := os.WriteFile(filepath.Join(dir, "manifest"), []byte(mf), 0o600); err != nil {
		b.Fatal(err)
	}
	var apply, peak, after, p99 []float64
	for b.Loop() {
		os.Remove(filepath.Join(dir, "ledger.db"))
		cmd := exec.Command(os.Args[0], "-test.run=^TestCatalogueApplyChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CATALOGUE_CHILD_DIR="+dir, "CATALOGUE_CHILD_KEY="+key.Public().String(),
			"CATALOGUE_CHILD_PIECES="+strconv.Itoa(len(docs)))
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		got := map[string]float64{}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "CHILD" {
				v, _ := strconv.ParseFloat(f[2], 64)
				got[f[1]] = v
			}
		}
		if len(got) != 4 {
			b.Fatalf("child output:\n%s", out)
		}
		apply = append(apply, got["apply_s"])
		peak = append(peak, got["peak_mb"])
		after = append(after, got["after_mb"])
		p99 = append(p99, got["p99_us"])
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(med(apply), "apply-s")
	b.ReportMetric(med(peak), "extra-rss-peak-MB")
	b.ReportMetric(med(p99), "lookup-p99-us")
	fmt.Printf("REPORT catalogue_100k_apply_s %.2f s (%d pieces)\n", med(apply), len(docs))
	fmt.Printf("REPORT catalogue_100k_rss_mb %.1f MB extra while applying, %.1f MB after\n", med(peak), med(after))
	fmt.Printf("REPORT catalogue_lookup_p99_us %.1f us\n", med(p99))
}

// TestCatalogueApplyChild is BenchmarkCatalogue100k's child process; run
// on its own it does nothing.
func TestCatalogueApplyChild(t *testing.T) {
	dir := os.Getenv("CATALOGUE_CHILD_DIR")
	if dir == "" {
		t.Skip("the child process of BenchmarkCatalogue100k")
	}
	pk, err := signing.ParsePublicKey(os.Getenv("CATALOGUE_CHILD_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signing.NewKeyring(pk)
	if err != nil {
		t.Fatal(err)
	}
	count, _ := strconv.Atoi(os.Getenv("CATALOGUE_CHILD_PIECES"))
	mf, err := os.ReadFile(filepath.Join(dir, "manifest"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(mf), "\n")
	nItems, _ := strconv.Atoi(lines[0])
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	base := rss(t, "VmRSS")
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatal(err) // resets VmHWM to the current RSS
	}
	start := time.Now()
	if _, err := l.BeginPieced(ctx, ledger.PiecedConfig{Doc: ledger.ConfigDoc{Store: true, Version: 2}, Digests: lines[1:], Items: nItems}); err != nil {
		t.Fatal(err)
	}
	var st ledger.Staging
	for i := range count {
		topic := protocol.CataloguePieceTopic("s1", i)
		env, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("piece-%03d", i)))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := keys.Open(topic, env, protocol.MaxPieceSize+signing.Overhead)
		if err != nil {
			t.Fatal(err)
		}
		p, err := protocol.DecodePiece(doc, "s1", i)
		if err != nil {
			t.Fatal(err)
		}
		its := make([]ledger.Item, len(p.Items))
		for j, it := range p.Items {
			its[j] = ledger.Item{SKU: it.SKU, Name: it.Name, Price: it.Price, Category: it.Category}
		}
		if st, err = l.StagePiece(ctx, p.ConfigVersion, i, protocol.PieceDigest(doc), its); err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(start)
	if !st.Applied {
		t.Fatalf("not applied: %+v", st)
	}
	peak := rss(t, "VmHWM")
	after := rss(t, "VmRSS")
	r := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 20_000)
	for i := range lat {
		sku := ean13(r.IntN(nItems))
		t0 := time.Now()
		if _, err := l.Item(sku); err != nil {
			t.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	fmt.Printf("CHILD apply_s %.3f\n", el.Seconds())
	fmt.Printf("CHILD peak_mb %.1f\n", float64(peak-base)/(1<<20))
	fmt.Printf("CHILD after_mb %.1f\n", float64(after-base)/(1<<20))
	fmt.Printf("CHILD p99_us %.1f\n", float64(lat[len(lat)*99/100].Nanoseconds())/1000)
}

// rss reads a size field (kB) of /proc/self/status, in bytes.
func rss(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// ean13 is the n-th test article code with its GS1 check digit.
func ean13(n int) string {
	s := fmt.Sprintf("40%010d", n)
	sum := 0
	for i := 0; i < 12; i++ {
		d := int(s[i] - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return s + string(rune('0'+(10-sum%10)%10))
}
