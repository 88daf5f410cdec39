package hqstore_test

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkApplyPoints measures the store's CPU per point event (decode,
// apply, commit with fdatasync) for the stream of the head-office ingest
// benchmark: 4 registers, 1,000 members, 256 events per commit. It runs
// once whatever b.N is. The floor it is compared with is the same number
// of one-event commits, so the report separates the per-event work from
// the per-commit cost (fdatasync and page writes).
func BenchmarkApplyPoints(b *testing.B) {
	const regs, perReg, members, batch = 4, 5000, 1000, 256
	var evs []hqstore.Event
	for seq := uint64(1); seq <= perReg; seq++ {
		for r := range regs {
			reg := fmt.Sprintf("s%d-r1", r)
			id := fmt.Sprintf("%s-%d", reg, seq)
			evs = append(evs, hqstore.Event{Register: reg, Store: fmt.Sprintf("s%d", r), OutboxRecord: ledger.OutboxRecord{
				Seq: seq, ID: id, Type: ledger.OutPoints, WallTime: time.Unix(1764230400+int64(seq), 0).UTC(), ClockTrusted: true,
				Data: []byte(fmt.Sprintf(`{"id":%q,"register":%q,"seq":%d,"kind":"earn","member_id":"m%d","points":%d,"wall_time":"2026-11-27T10:00:00Z","clock_trusted":true}`,
					id, reg, seq, (int(seq)*regs+r)%members, seq%50+1))}})
		}
	}
	st, err := hqstore.Open(filepath.Join(b.TempDir(), "hq.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cpu0, t0 := cpuNow(), time.Now()
	commits := 0
	for i := 0; i < len(evs); i += batch {
		res, err := st.Apply(evs[i:min(i+batch, len(evs))])
		if err != nil || len(res.Rejected) != 0 {
			b.Fatalf("apply: %v %v", err, res.Rejected)
		}
		commits++
	}
	cpu, wall := cpuNow()-cpu0, time.Since(t0)
	// The floor: as many durable commits of one event each (a fresh
	// register per commit, so nothing is a duplicate).
	floor, err := hqstore.Open(filepath.Join(b.TempDir(), "floor.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer floor.Close()
	fcpu0, ft0 := cpuNow(), time.Now()
	for i := range commits {
		e := evs[0]
		e.Register = fmt.Sprintf("f%d", i)
		e.ID = e.Register + "-1"
		if _, err := floor.Apply([]hqstore.Event{e}); err != nil {
			b.Fatal(err)
		}
	}
	fcpu, fwall := cpuNow()-fcpu0, time.Since(ft0)
	fmt.Printf("REPORT hqstore_apply_cpu_per_event %.2f us\n", float64(cpu.Microseconds())/float64(len(evs)))
	fmt.Printf("REPORT hqstore_apply_wall_per_commit %.2f ms\n", float64(wall.Microseconds())/1000/float64(commits))
	fmt.Printf("REPORT hqstore_commit_floor_cpu_per_event %.2f us\n", float64(fcpu.Microseconds())/float64(len(evs)))
	fmt.Printf("REPORT hqstore_commit_floor_wall_per_commit %.2f ms\n", float64(fwall.Microseconds())/1000/float64(commits))
}

// BenchmarkSummaryHeavyVsNew: a member summary for a member with 10,000
// purchases against one for a new member (storetest.SummaryHeavyVsNew),
// on bbolt. Goal: at most 1.2. It runs once whatever b.N is.
func BenchmarkSummaryHeavyVsNew(b *testing.B) {
	st, err := hqstore.Open(filepath.Join(b.TempDir(), "hq.db"), &hqstore.Options{Clock: ledgertest.NewClock(time.Date(2026, 12, 27, 10, 0, 0, 0, time.UTC), true)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	heavy, fresh := storetest.SummaryHeavyVsNew(b, st, false)
	b.ReportMetric(float64(heavy.Microseconds()), "heavy-cpu-us")
	b.ReportMetric(float64(fresh.Microseconds()), "new-cpu-us")
	fmt.Printf("REPORT summary_heavy_cpu_us %.1f\nREPORT summary_new_cpu_us %.1f\n", float64(heavy.Nanoseconds())/1e3, float64(fresh.Nanoseconds())/1e3)
	fmt.Printf("RATIO summary_heavy_vs_new_member %.2f\n", float64(heavy)/float64(fresh))
}
