package ledger

// White-box on purpose: BenchmarkBigLedger writes 1,000,000 events straight
// into the ledger's layout in big transactions (through the API it would
// take an hour of fdatasyncs), and saleFootprint reads one sale's rows.

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// The benchmarks print RATIO/REPORT lines (see the Makefile's bench
// target). Each one measures the ledger and its physical floor side by
// side in the same run and directory, ignoring b.N beyond one round.

type benchEngine struct{}

func (benchEngine) RuleVersion() int { return 1 }
func (benchEngine) Evaluate(in rules.SaleInput) (rules.Outcome, error) {
	out := rules.Outcome{ExpiresAt: in.At.AddDate(1, 0, 0)}
	for _, ln := range in.Lines {
		out.Lines = append(out.Lines, rules.LinePoints{No: ln.No, Points: ln.Amount / 100})
	}
	return out, nil
}
func (benchEngine) Reward(string) (rules.Reward, bool) { return rules.Reward{}, false }
func (benchEngine) ExpiryFor(time.Time) time.Time      { return time.Time{} }

// typicalSale is a member sale of three lines: one sale record, three earn
// events, three lots, a purchase row and the member update, seven outbox
// records.
func typicalSale(id string, member int) SaleRequest {
	return SaleRequest{ID: id, MemberID: fmt.Sprintf("m%d", member%benchMembers), HQReachable: true,
		Lines: []Line{
			{No: 1, SKU: "4006381333931", Quantity: 2, UnitPrice: 1290, Category: "dairy"},
			{No: 2, SKU: "7290000066318", Quantity: 1, UnitPrice: 4590, Category: "bakery"},
			{No: 3, SKU: "5449000000996", Quantity: 6, UnitPrice: 590, Category: "drinks"},
		},
		Tenders: []Tender{{Kind: "card", Amount: 2*1290 + 4590 + 6*590}}}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func benchDir(b *testing.B) string {
	// Same filesystem for the ledger and every floor it is compared with.
	if d := os.Getenv("LEDGER_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "ledgerbench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// benchMembers is how many members the commit benchmarks' sales rotate
// over: a register serves many customers, each with a short history.
const benchMembers = 200

func openBench(b *testing.B, path string) *Ledger {
	l, err := Open(path, &Options{Register: "r1", Engine: benchEngine{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := g; i < benchMembers; i += 20 {
				id := fmt.Sprintf("m%d", i)
				if _, err := l.Enrol(context.Background(), Member{ID: id, Aliases: []string{"card-" + id}}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	return l
}

// BenchmarkCommit compares the median latency of one durable RecordSale
// with a bare bbolt Update writing the same number of keys and bytes, and
// with one 512-byte write+fdatasync.
func BenchmarkCommit(b *testing.B) {
	const n = 300
	dir := benchDir(b)
	ctx := context.Background()
	l := openBench(b, filepath.Join(dir, "ledger.db"))
	for i := range 20 { // warm up: file growth, page cache
		if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("w%d", i), i)); err != nil {
			b.Fatal(err)
		}
	}
	// What one sale writes: count the rows and bytes of one sale.
	keys, bytes := saleFootprint(b, l, "w19")
	// Bare bbolt: same number of keys and bytes per Update, spread over
	// the same number of buckets, appending like the ledger does.
	db, err := bolt.Open(filepath.Join(dir, "bare.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	names := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e"), []byte("f"), []byte("g")}
	val := make([]byte, bytes/keys)
	var seq uint64
	update := func() error {
		return db.Update(func(tx *bolt.Tx) error {
			for k := range keys {
				bk, err := tx.CreateBucketIfNotExists(names[k%len(names)])
				if err != nil {
					return err
				}
				seq++
				if err := bk.Put(u64(seq), val); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for range 20 {
		if err := update(); err != nil {
			b.Fatal(err)
		}
	}
	// bbolt's own floor: an Update writing one small key into one bucket
	// (root page, bucket leaf, freelist, then the meta page: two
	// fdatasyncs). No ledger commit can be cheaper than this.
	db1, err := bolt.Open(filepath.Join(dir, "bare1.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db1.Close()
	var seq1 uint64
	update1 := func() error {
		return db1.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(names[0])
			if err != nil {
				return err
			}
			seq1++
			return bk.Put(u64(seq1%64), val[:min(len(val), 64)])
		})
	}
	for range 20 {
		if err := update1(); err != nil {
			b.Fatal(err)
		}
	}
	// Raw floor: 512 bytes and one fdatasync.
	fh, err := os.OpenFile(filepath.Join(dir, "raw"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	buf := make([]byte, 512)
	rawSync := func(i int) error {
		if _, err := fh.WriteAt(buf, int64(i%8)*512); err != nil {
			return err
		}
		return syscall.Fdatasync(int(fh.Fd()))
	}
	// Interleave the three so load on the machine (other tests, other
	// engineers) hits them alike.
	saleLat, bareLat, rawLat := make([]time.Duration, n), make([]time.Duration, n), make([]time.Duration, n)
	bare1Lat := make([]time.Duration, n)
	// Start from a checkpoint, so the pages below are only the loop's.
	if err := l.exclusive(nil); err != nil {
		b.Fatal(err)
	}
	ls0, bs0, b1s0 := l.db.Stats(), db.Stats(), db1.Stats()
	var lp0, la0 uint64
	if l.slog != nil {
		lp0, la0 = l.slog.pages, l.slog.appends
	}
	cpStart := l.checkpoints.Load()
	var ioBytes int64
	for i := range n {
		io0 := writeBytes()
		t := time.Now()
		if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("s%d", i), i)); err != nil {
			b.Fatal(err)
		}
		saleLat[i] = time.Since(t)
		ioBytes += writeBytes() - io0
		t = time.Now()
		if err := update(); err != nil {
			b.Fatal(err)
		}
		bareLat[i] = time.Since(t)
		t = time.Now()
		if err := rawSync(i); err != nil {
			b.Fatal(err)
		}
		rawLat[i] = time.Since(t)
		t = time.Now()
		if err := update1(); err != nil {
			b.Fatal(err)
		}
		bare1Lat[i] = time.Since(t)
	}
	sale, bare, raw, bare1 := median(saleLat), median(bareLat), median(rawLat), median(bare1Lat)
	// The sales still pending in the sale log cost a checkpoint too:
	// counted here, so the pages are every page the sales wrote, the
	// file's (checkpoints) and the log's.
	cpLoop := l.checkpoints.Load() - cpStart
	cp0 := l.checkpoints.Load()
	if err := l.exclusive(nil); err != nil {
		b.Fatal(err)
	}
	ls1, bs1, b1s1 := l.db.Stats(), db.Stats(), db1.Stats()
	var logPages, logAppends uint64
	if l.slog != nil {
		logPages, logAppends = l.slog.pages-lp0, l.slog.appends-la0
	}
	salePages := (float64(ls1.TxStats.GetWrite()-ls0.TxStats.GetWrite()) + float64(logPages)) / n
	fmt.Printf("REPORT sale_log_pages %.2f pages/sale (%d appends; %d checkpoints, the last forced after the loop)\n", float64(logPages)/n, logAppends, l.checkpoints.Load()-cp0+cpLoop)
	fmt.Printf("REPORT sale_commit_pages %.1f pages/commit\n", salePages)
	fmt.Printf("REPORT bytes_written_per_sale %.0f bytes (pages x %d-byte page; kernel write_bytes %.0f)\n", salePages*float64(l.db.Info().PageSize), l.db.Info().PageSize, float64(ioBytes)/n)
	fmt.Printf("REPORT bare_bbolt_pages %.1f pages/commit\n", float64(bs1.TxStats.GetWrite()-bs0.TxStats.GetWrite())/n)
	fmt.Printf("REPORT sale_commit_median_us %.0f us\n", float64(sale.Microseconds()))
	fmt.Printf("REPORT bare_bbolt_median_us %.0f us (%d keys, %d bytes)\n", float64(bare.Microseconds()), keys, bytes)
	fmt.Printf("REPORT fdatasync_median_us %.0f us\n", float64(raw.Microseconds()))
	fmt.Printf("REPORT bare_bbolt_1key_pages %.1f pages/commit\n", float64(b1s1.TxStats.GetWrite()-b1s0.TxStats.GetWrite())/n)
	fmt.Printf("REPORT bare_bbolt_1key_median_us %.0f us\n", float64(bare1.Microseconds()))
	// The floor of the commit_vs_fdatasync ratio on this filesystem: what
	// bbolt itself costs for the smallest durable write.
	fmt.Printf("REPORT bare_bbolt_1key_vs_fdatasync %.2f\n", float64(bare1)/float64(raw))
	fmt.Printf("RATIO commit_vs_bare_bbolt %.2f\n", float64(sale)/float64(bare))
	fmt.Printf("RATIO commit_vs_fdatasync %.2f\n", float64(sale)/float64(raw))
}

// saleFootprint counts the rows one recorded sale wrote and their bytes:
// its outbox records, events, lots, purchase row, sale row, plus the
// member row and the sequence counter it rewrote.
func saleFootprint(b *testing.B, l *Ledger, id string) (keys, size int) {
	err := l.view(func(tx *bolt.Tx) error {
		sr := tx.Bucket(bSales).Get([]byte(id))
		keys, size = 1, len(id)+len(sr)
		member := "m19"
		var rec saleRec
		if err := decodeSaleRow(sr, &rec); err != nil {
			return err
		}
		sale, err := rec.sale()
		if err != nil {
			return err
		}
		first := sale.Seq
		last := first + uint64(len(rec.Events))
		for s := first; s <= last; s++ {
			v := tx.Bucket(bOutbox).Get(u64(s))
			keys, size = keys+1, size+8+len(v)
			if s > first {
				ev := tx.Bucket(bRows).Get(rowKey(rowEvent, member, s))
				keys, size = keys+1, size+len(rowKey(rowEvent, member, s))+len(ev)
				if lot := tx.Bucket(bRows).Get(rowKey(rowLot, member, s)); lot != nil {
					// (its expiry is indexed per member, schema 8: a
					// member with points writes no index entry)
					keys, size = keys+1, size+len(rowKey(rowLot, member, s))+len(lot)
				}
			}
		}
		p := tx.Bucket(bRows).Get(rowKey(rowPurchase, member, first))
		m := tx.Bucket(bRows).Get(memberKey(member))
		keys, size = keys+3, size+len(p)+len(m)+16+8+len(kSeq)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return keys, size
}

// BenchmarkGroupCommit compares sales per second with 16 concurrent
// callers against one caller at a time.
func BenchmarkGroupCommit(b *testing.B) {
	const total = 1600
	ctx := context.Background()
	reported := map[int]bool{}
	run := func(callers int) float64 {
		l := openBench(b, filepath.Join(benchDir(b), "ledger.db"))
		var wg sync.WaitGroup
		st0, _ := l.Stats()
		ds0 := l.db.Stats()
		start := time.Now()
		for g := range callers {
			wg.Go(func() {
				for i := range total / callers {
					// Sale i*callers+g goes to its own member: the callers of
					// one round buy for different members, as one caller's
					// consecutive sales do (g*1000+i gave all 16 callers of a
					// round the same member, one row rewritten 16 times).
					if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("g%d-%d", g, i), i*callers+g)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		rate := float64(total) / time.Since(start).Seconds()
		if st, err := l.Stats(); err == nil && !reported[callers] {
			reported[callers] = true
			commits := float64(st.Commits - st0.Commits)
			fmt.Printf("REPORT mean_batch_%d_callers %.1f ops/commit\n", callers, float64(st.CommittedOps-st0.CommittedOps)/commits)
			ds1 := l.db.Stats()
			fmt.Printf("REPORT pages_per_commit_%d_callers %.1f pages/commit\n", callers, float64(ds1.TxStats.GetWrite()-ds0.TxStats.GetWrite())/commits)
		}
		return rate
	}
	// Alternate three rounds of each and take the medians, so a burst of
	// load from elsewhere on the machine does not decide the ratio.
	var ones, manys []float64
	for range 3 {
		ones = append(ones, run(1))
		manys = append(manys, run(16))
	}
	slices.Sort(ones)
	slices.Sort(manys)
	one, many := ones[1], manys[1]
	fmt.Printf("REPORT sales_per_s_1_caller %.0f sales/s\n", one)
	fmt.Printf("REPORT sales_per_s_16_callers %.0f sales/s\n", many)
	fmt.Printf("RATIO group_commit_speedup %.2f\n", many/one)
}

const (
	bigMembers = 100_000
	bigEvents  = 1_000_000
)

// buildBig writes a ledger of bigMembers members (two aliases each) and
// bigEvents point events straight into bbolt in large transactions, in the
// ledger's own layout, and returns its path.
func buildBig(b *testing.B) string {
	path := filepath.Join(benchDir(b), "big.db")
	l, err := Open(path, &Options{Register: "r1"})
	if err != nil {
		b.Fatal(err)
	}
	l.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: false}) // as a clean Close leaves it
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	perMember := bigEvents / bigMembers
	var seq uint64
	const chunk = 5000
	for start := 0; start < bigMembers; start += chunk {
		err := db.Update(func(tx *bolt.Tx) error {
			ab, eb := tx.Bucket(bAliases), tx.Bucket(bRows)
			eb.FillPercent = 0.9
			for i := start; i < start+chunk; i++ {
				id := fmt.Sprintf("m%07d", i)
				rec := memberRec{Member: Member{ID: id, Name: "Member " + id, Aliases: []string{"card-" + id[1:], "+97250" + id[1:]}, EnrolledAt: at, EnrolledTrusted: true, HomeRegister: "r1"}}
				for e := range perMember {
					seq++
					ev := PointEvent{ID: "r1-" + strconv.FormatUint(seq, 10), Register: "r1", Seq: seq, Kind: KindEarn, MemberID: id, Points: Points(10 + e), SaleID: "s" + strconv.FormatUint(seq, 10), Line: 1, RuleVersion: 1, WallTime: at, ClockTrusted: true}
					v, _ := jsonMarshal(ev)
					if err := eb.Put(rowKey(rowEvent, id, seq), v); err != nil {
						return err
					}
					rec.Balance += ev.Points
					if err := eb.Put(rowKey(rowLot, id, seq), mustJSON(lotRec{Remaining: ev.Points})); err != nil {
						return err
					}
				}
				v, _ := jsonMarshal(rec)
				if err := eb.Put(memberKey(id), v); err != nil {
					return err
				}
				for _, a := range rec.Member.Aliases {
					if err := ab.Put([]byte(a), []byte(id)); err != nil {
						return err
					}
				}
			}
			meta := tx.Bucket(bState)
			if err := addCounts(tx, counts{Members: chunk, Events: int64(chunk * perMember)}); err != nil {
				return err
			}
			if err := meta.Put(kSeq, u64(seq)); err != nil {
				return err
			}
			return meta.Put(kConfirmed, u64(seq)) // head office has it all: empty outbox
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Sync(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkBigLedger builds 100,000 members and 1,000,000 events, then
// reports the p99 of a card lookup with balance, and (in a fresh child
// process) open-to-ready time and RSS.
func BenchmarkBigLedger(b *testing.B) {
	t0 := time.Now()
	path := buildBig(b)
	fi, _ := os.Stat(path)
	fmt.Printf("REPORT big_ledger_build_s %.1f s (%d MB)\n", time.Since(t0).Seconds(), fi.Size()>>20)

	child := func(open string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBigLedgerOpenChild$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), "LEDGER_BIG_CHILD="+path, "LEDGER_BIG_OPEN="+open)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "REPORT ") && (open == "open_ms" || strings.HasPrefix(line, "REPORT "+open)) {
				fmt.Println(line)
			}
		}
	}
	child("open_ms") // after a clean Close: bbolt's free list is in the file
	// After a power cut or a crash the file holds no free list (the
	// ledger commits with NoFreelistSync) and Open walks the file.
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Update(func(*bolt.Tx) error { return nil }); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	child("open_after_crash_ms")
}

// TestBigLedgerOpenChild runs in a fresh process for BenchmarkBigLedger:
// it opens the big ledger, looks up 20,000 random cards with their
// balance, and reports open time, lookup p99 and RSS.
func TestBigLedgerOpenChild(t *testing.T) {
	path := os.Getenv("LEDGER_BIG_CHILD")
	if path == "" {
		t.Skip("child process of BenchmarkBigLedger")
	}
	start := time.Now()
	l, err := Open(path, &Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.OutboxStats(); err != nil { // ready: what the daemon reads first
		t.Fatal(err)
	}
	openT := time.Since(start)
	openRSS := rssMB()
	defer l.Close()
	lat := make([]time.Duration, 20000)
	x := uint64(88172645463325252)
	for i := range lat {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		card := fmt.Sprintf("card-%07d", x%bigMembers)
		t0 := time.Now()
		m, err := l.LookupAlias(card)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Balance(m.ID); err != nil {
			t.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	fmt.Printf("REPORT %s %.1f ms\n", cmp.Or(os.Getenv("LEDGER_BIG_OPEN"), "open_ms"), float64(openT.Microseconds())/1000)
	fmt.Printf("REPORT lookup_p50_us %.1f us\n", float64(lat[len(lat)/2].Nanoseconds())/1000)
	fmt.Printf("REPORT lookup_p99_us %.1f us\n", float64(p99.Nanoseconds())/1000)
	fmt.Printf("REPORT open_rss_mb %.1f MB\n", openRSS)
	fmt.Printf("REPORT rss_after_20k_lookups_mb %.1f MB\n", rssMB())
}

// writeBytes is the bytes this process caused to be written to storage
// (/proc/self/io write_bytes, counted when pages are dirtied); -1 when
// the kernel does not say.
func writeBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

// BenchmarkSaleCPU measures the committer's CPU per sale, without any
// disk write: batches of 16 typical sales run against one write
// transaction each, which is then rolled back (so every batch sees the
// same state). The floor is decoding and re-encoding the member row, the
// least a sale must do; the ratio shows how much more a sale costs.
func BenchmarkSaleCPU(b *testing.B) {
	const batches, per = 100, 16
	l := openBench(b, filepath.Join(benchDir(b), "ledger.db"))
	ctx := context.Background()
	// A short history per member, as a register sees.
	for i := range 2 * benchMembers {
		if _, err := l.RecordSale(ctx, typicalSale(fmt.Sprintf("h%d", i), i)); err != nil {
			b.Fatal(err)
		}
	}
	// The batches below open bbolt's write transaction themselves: the
	// committer must hold none (a checkpoint of the history first).
	if err := l.exclusive(nil); err != nil {
		b.Fatal(err)
	}
	reqs := make([]SaleRequest, per)
	fps := make([]string, per)
	amounts := make([][]Money, per)
	gross := make([]Money, per)
	for i := range reqs {
		reqs[i] = typicalSale(fmt.Sprintf("cpu%d", i), i*7)
		var err error
		if amounts[i], gross[i], err = checkSale(&reqs[i]); err != nil {
			b.Fatal(err)
		}
		fps[i] = fingerprint(saleShape{MemberID: reqs[i].MemberID, Lines: reqs[i].Lines, Tenders: reqs[i].Tenders})
	}
	var sale, floor time.Duration
	for range batches {
		tx, err := l.db.Begin(true)
		if err != nil {
			b.Fatal(err)
		}
		w := &wtx{l: l, tx: tx, eng: l.eng()}
		w.seq = getU64(tx.Bucket(bState), kSeq)
		t := time.Now()
		for i := range reqs {
			w.now, w.trusted = l.clock.Now()
			if _, err := w.recordSale(&reqs[i], fps[i], amounts[i], gross[i]); err != nil {
				b.Fatal(err)
			}
		}
		sale += time.Since(t)
		_ = tx.Rollback()
		tx, err = l.db.Begin(true)
		if err != nil {
			b.Fatal(err)
		}
		w = &wtx{l: l, tx: tx, eng: l.eng()}
		t = time.Now()
		for i := range reqs {
			rec, err := w.member(reqs[i].MemberID)
			if err != nil {
				b.Fatal(err)
			}
			w.saveMember(rec)
		}
		floor += time.Since(t)
		_ = tx.Rollback()
	}
	n := float64(batches * per)
	fmt.Printf("REPORT sale_cpu_us %.1f us/sale\n", float64(sale.Nanoseconds())/n/1000)
	fmt.Printf("REPORT member_rewrite_cpu_us %.1f us/sale\n", float64(floor.Nanoseconds())/n/1000)
	fmt.Printf("RATIO sale_cpu_vs_member_rewrite %.1f\n", float64(sale)/float64(floor))
}
