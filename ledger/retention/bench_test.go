package retention_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// The benchmarks measure once with a fixed size (make bench runs them with
// -benchtime 1x) and print REPORT/RATIO lines for the summary.

func BenchmarkFitCDNOW(b *testing.B) {
	ms := loadCDNOW(b)
	a, err := retention.Analyze(ms, calEnd, &retention.Config{KeepZeroAmount: true, Sleeping: retention.SleepRule{Kind: retention.SleepFixed}})
	if err != nil {
		b.Fatal(err)
	}
	var cs []bgnbd.Customer
	for i := range a.Profiles {
		if p := &a.Profiles[i]; p.Rhythm.PurchaseDays > 0 {
			cs = append(cs, a.Customer(p))
		}
	}
	b.ResetTimer()
	start := time.Now()
	if _, err := bgnbd.FitParams(cs, nil); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	fmt.Printf("REPORT bgnbd_fit_cdnow %.1f ms\n", float64(el.Microseconds())/1000)
}

// synthetic turns simulated BG/NBD summaries into purchase records: the
// first purchase on day 0 of the member's life, repeats spread up to the
// recency, so the ledger holds exactly x+1 purchase days per member.
type rec struct {
	Member string    `json:"m"`
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Amount int64     `json:"amount"`
}

// scanSetup writes 100,000 simulated members' purchases into a bbolt file
// and times one straight cursor pass over them: the floor every analysis
// is measured against. It returns the simulated summaries, the members as
// retention input, and the scan time.
func scanSetup(b *testing.B) ([]bgnbd.Customer, []retention.Member, time.Duration, int) {
	const n = 100_000
	truth := bgnbd.Params{R: 0.5, Alpha: 3, A: 0.8, B: 2.5}
	cs := bgnbd.Simulate(rand.NewPCG(7, 8), truth, n, 52, 1.0/7)
	end := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(b.TempDir(), "scan.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	total := 0
	members := make([]retention.Member, n)
	rng := rand.New(rand.NewPCG(1, 1))
	// Write in batches of 10,000 members so setup stays quick.
	for lo := 0; lo < n; lo += 10_000 {
		if err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("purchases"))
			if err != nil {
				return err
			}
			for i := lo; i < min(lo+10_000, n); i++ {
				c := cs[i]
				first := end.Add(-time.Duration(c.T*7*24) * time.Hour)
				days := []float64{0}
				for k := 1; k <= c.X; k++ {
					days = append(days, c.Tx*7*float64(k)/float64(c.X))
				}
				members[i].ID = fmt.Sprintf("m%06d", i)
				for k, d := range days {
					r := rec{Member: fmt.Sprintf("m%06d", i), Seq: uint64(k), At: first.Add(time.Duration(d*24) * time.Hour), Amount: 1000 + rng.Int64N(5000)}
					members[i].Purchases = append(members[i].Purchases, retention.Purchase{SaleID: fmt.Sprint(k), At: r.At, ClockTrusted: true, Amount: retention.Money(r.Amount)})
					v, _ := json.Marshal(r)
					key := binary.BigEndian.AppendUint64([]byte(r.Member), r.Seq)
					if err := bk.Put(key, v); err != nil {
						return err
					}
					total++
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	// The floor: one straight cursor pass over every purchase, the median
	// of five passes (one pass is ~10 ms, and a loaded machine can double
	// a single one).
	var scans []time.Duration
	for range 5 {
		start := time.Now()
		var bytes int
		if err := db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte("purchases")).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				bytes += len(k) + len(v)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		scans = append(scans, time.Since(start))
		_ = bytes
	}
	return cs, members, medianDuration(scans), total
}

func medianDuration(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func BenchmarkFitVsScan(b *testing.B) {
	cs, _, scan, total := scanSetup(b)
	b.ResetTimer()
	start := time.Now()
	fit, err := bgnbd.FitParams(cs, nil)
	if err != nil {
		b.Fatal(err)
	}
	fitT := time.Since(start)
	b.StopTimer()
	fmt.Printf("REPORT bgnbd_fit_100k_members %.1f ms\n", float64(fitT.Microseconds())/1000)
	fmt.Printf("REPORT bgnbd_fit_100k_distinct_summaries %d count\n", fit.Distinct)
	fmt.Printf("REPORT ledger_scan_purchases %d count\n", total)
	fmt.Printf("REPORT ledger_scan_100k_members %.1f ms\n", float64(scan.Microseconds())/1000)
	fmt.Printf("RATIO fit_vs_scan %.2f\n", fitT.Seconds()/scan.Seconds())
}

// BenchmarkRankTrainVsScan trains the ranking model (DefaultRankSpec) on
// 100,000 members (cleaning every history, the 91-day split, Newton's
// method) against one ledger scan of the same purchases, medians of three
// and five. Goal at most 20.
func BenchmarkRankTrainVsScan(b *testing.B) {
	_, members, scan, _ := scanSetup(b)
	end := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	// The median of three trainings, as the scan is the median of five.
	var m *retention.RankModel
	var trains, cpus []time.Duration
	for range 3 {
		start, cpu0 := time.Now(), processCPU()
		var err error
		if m, err = retention.TrainRank(members, end, retention.DefaultRankInnerDays, nil); err != nil {
			b.Fatal(err)
		}
		trains = append(trains, time.Since(start))
		cpus = append(cpus, processCPU()-cpu0)
	}
	train := medianDuration(trains)
	b.StopTimer()
	fmt.Printf("REPORT rank_train_100k_members %.1f ms (%d training rows)\n", float64(train.Microseconds())/1000, m.Members)
	// The work itself, on every core (cleaning, the rows, the BG/NBD fit
	// of the "bgnbd" features and the regression run in parts at once).
	fmt.Printf("REPORT rank_train_100k_members_cpu %.1f ms\n", float64(medianDuration(cpus).Microseconds())/1000)
	fmt.Printf("RATIO rank_train_vs_scan %.2f\n", train.Seconds()/scan.Seconds())
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }
