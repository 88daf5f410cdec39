package pgstore_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore/storetest"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgtest"
)

// Bench shape, as the issue measured the floor: 8 connections, 64-event
// transactions, point events (the bulk of the stream) of 64 registers
// over 2,000 members.
const (
	benchConns   = 8
	benchBatch   = 64
	benchRegs    = 64
	benchPer     = 400
	benchMembers = 2000
)

// BenchmarkIngestVsFloor measures, in the same run on the same durable
// (fsync on) PostgreSQL, head office's ingest (pgstore.Apply: register and
// member row locks, events, balances, watermarks) against the floor: a
// bare batched INSERT ... ON CONFLICT DO NOTHING of the same event rows in
// the same transactions over the same connections. Three alternating
// rounds, medians. It runs once whatever b.N is (make bench: -benchtime 1x).
// Every event of a register meets a member that register has not met
// (one store, each register's members a permutation of 400 of the 2,000).
func BenchmarkIngestVsFloor(b *testing.B) {
	r := ingestVsFloor(b, nil, goalBatches())
	fmt.Printf("REPORT hq_pg_ingest_rate %.0f events/s\n", r.ingest)
	fmt.Printf("REPORT hq_pg_floor_rate %.0f events/s\n", r.floor)
	fmt.Printf("REPORT hq_pg_ingest_cpu_us %.1f per event\n", r.ingestCPU)
	fmt.Printf("REPORT hq_pg_floor_cpu_us %.1f per event\n", r.floorCPU)
	fmt.Printf("RATIO hq_pg_ingest_vs_pg_floor %.2f\n", r.ingest/r.floor)
}

// BenchmarkIngestShopVsFloor is BenchmarkIngestVsFloor with members who
// come back to the registers of their shop, as they do in a chain that
// has been running: 16 stores of 4 registers, each store with 125 of the
// 2,000 members, so a member shops about 3 times at each of its store's
// registers (the same 12.8 events a member as there), and head office
// knows every member before the timed part (an untimed first pass: one
// event a member from a register of its store that is not timed). It
// reports; the goal stays on BenchmarkIngestVsFloor.
func BenchmarkIngestShopVsFloor(b *testing.B) {
	r := ingestVsFloor(b, shopWarm(), shopBatches())
	fmt.Printf("REPORT hq_pg_shop_ingest_rate %.0f events/s\n", r.ingest)
	fmt.Printf("REPORT hq_pg_shop_floor_rate %.0f events/s\n", r.floor)
	fmt.Printf("REPORT hq_pg_shop_ingest_cpu_us %.1f per event\n", r.ingestCPU)
	fmt.Printf("REPORT hq_pg_shop_floor_cpu_us %.1f per event\n", r.floorCPU)
	fmt.Printf("REPORT hq_pg_shop_ingest_vs_pg_floor %.2f\n", r.ingest/r.floor)
}

// goalBatches are BenchmarkIngestVsFloor's messages.
func goalBatches() [][]hqstore.Event {
	return benchBatches(func(r, seq int) (string, string, string) {
		return fmt.Sprintf("s%02d-r1", r), fmt.Sprintf("m%05d", (r*131+seq*17)%benchMembers), "s1"
	})
}

// The shop: stores of shopRegs registers, each with its own members.
const (
	shopRegs   = 4
	shopStores = benchRegs / shopRegs
	shopPer    = benchMembers / shopStores
)

// shopBatches are BenchmarkIngestShopVsFloor's timed messages.
func shopBatches() [][]hqstore.Event {
	return benchBatches(func(r, seq int) (string, string, string) {
		st := r / shopRegs
		return fmt.Sprintf("s%02d-r%d", st, r%shopRegs+1), fmt.Sprintf("m%05d", st*shopPer+(r*131+seq*17)%shopPer), fmt.Sprintf("s%02d", st)
	})
}

// shopWarm is the untimed first pass: each store's register r0 credits
// each of the store's members once.
func shopWarm() [][]hqstore.Event {
	var warm [][]hqstore.Event
	for st := 0; st < shopStores; st++ {
		var cur []hqstore.Event
		for i := 0; i < shopPer; i++ {
			e := storetest.Earn(fmt.Sprintf("s%02d-r0", st), uint64(i+1), fmt.Sprintf("m%05d", st*shopPer+i), 1)
			e.Store = fmt.Sprintf("s%02d", st)
			if cur = append(cur, e); len(cur) == benchBatch || i == shopPer-1 {
				warm, cur = append(warm, cur), nil
			}
		}
	}
	return warm
}

// rates are ingestVsFloor's medians: events/s, and processor time (the
// database server's and this process's) per event in microseconds, which
// the machine's other load moves less than the rates.
type rates struct{ ingest, floor, ingestCPU, floorCPU float64 }

// ingestVsFloor runs three alternating rounds of the floor and the ingest
// of batches (after warm, untimed) and returns the medians.
func ingestVsFloor(b *testing.B, warm, batches [][]hqstore.Event) rates {
	srv, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		pgtest.Need(b, nil, err)
	}
	defer srv.Close()
	events := float64(len(batches) * benchBatch)
	const rounds = 3
	var ins, fls, inCPU, flCPU []float64
	for r := 0; r < rounds; r++ {
		took, cpu := runFloor(b, srv, batches)
		fls, flCPU = append(fls, events/took.Seconds()), append(flCPU, cpu.Seconds()*1e6/events)
		took, cpu = runIngest(b, srv, warm, batches)
		ins, inCPU = append(ins, events/took.Seconds()), append(inCPU, cpu.Seconds()*1e6/events)
	}
	med := func(xs []float64) float64 { sort.Float64s(xs); return xs[rounds/2] }
	out := rates{med(ins), med(fls), med(inCPU), med(flCPU)}
	b.ReportMetric(out.ingest, "ingest-events/s")
	b.ReportMetric(out.floor, "floor-events/s")
	return out
}

// cpuNow is the processor time used so far by the server and this
// process.
func cpuNow(srv *pgtest.Server) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return srv.CPUTime() + time.Duration(ru.Utime.Nano()+ru.Stime.Nano())
}

// benchBatches cuts every register's stream into 64-event batches and
// deals them round-robin, so each connection carries whole registers in
// order (as a shared subscription by client id does); who names the
// register r, the member of its event seq and its store.
func benchBatches(who func(r, seq int) (register, member, store string)) [][]hqstore.Event {
	var out [][]hqstore.Event
	for r := 0; r < benchRegs; r++ {
		var cur []hqstore.Event
		for seq := uint64(1); seq <= benchPer; seq++ {
			reg, m, st := who(r, int(seq))
			e := storetest.Earn(reg, seq, m, ledger.Points(seq%9+1))
			e.Store = st
			cur = append(cur, e)
			if len(cur) == benchBatch {
				out = append(out, cur)
				cur = nil
			}
		}
	}
	return out
}

// split deals batches to connections by register.
func split(batches [][]hqstore.Event) [][][]hqstore.Event {
	per := make([][][]hqstore.Event, benchConns)
	idx := map[string]int{}
	for _, bt := range batches {
		reg := bt[0].Register
		i, ok := idx[reg]
		if !ok {
			i = len(idx) % benchConns
			idx[reg] = i
		}
		per[i] = append(per[i], bt)
	}
	return per
}

func parallel(b *testing.B, batches [][]hqstore.Event, fn func(bt []hqstore.Event) error) time.Duration {
	per := split(batches)
	var wg sync.WaitGroup
	errs := make(chan error, benchConns)
	start := time.Now()
	for _, mine := range per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, bt := range mine {
				if err := fn(bt); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return took
}

func runIngest(b *testing.B, srv *pgtest.Server, warm, batches [][]hqstore.Event) (took, cpu time.Duration) {
	_, dsn, err := srv.Schema()
	if err != nil {
		b.Fatal(err)
	}
	st, err := pgstore.Open(dsn, &pgstore.Options{MaxConns: benchConns})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	apply := func(bt []hqstore.Event) error {
		_, err := st.Apply(bt)
		return err
	}
	if len(warm) > 0 {
		parallel(b, warm, apply)
	}
	cpu0 := cpuNow(srv)
	took = parallel(b, batches, apply)
	cpu = cpuNow(srv) - cpu0
	if err := st.Check(); err != nil {
		b.Fatal(err)
	}
	return took, cpu
}

// runFloor inserts the same rows (the stored record of each event, keyed
// by register and sequence) with nothing else.
func runFloor(b *testing.B, srv *pgtest.Server, batches [][]hqstore.Event) (took, cpu time.Duration) {
	_, dsn, err := srv.Schema()
	if err != nil {
		b.Fatal(err)
	}
	st, err := pgstore.Open(dsn, &pgstore.Options{MaxConns: benchConns}) // same pool settings and schema
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	cpu0 := cpuNow(srv)
	took = parallel(b, batches, func(bt []hqstore.Event) error {
		return pgx.BeginFunc(ctx, st.Pool(), func(tx pgx.Tx) error {
			regs, seqs, recs := make([]string, len(bt)), make([]int64, len(bt)), make([][]byte, len(bt))
			for i, e := range bt {
				regs[i], seqs[i], recs[i] = e.Register, int64(e.Seq), hqstore.StoredRecord(e.OutboxRecord)
			}
			_, err := tx.Exec(ctx, `INSERT INTO hq_events (register, seq, rec)
				SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[]) ON CONFLICT DO NOTHING`, regs, seqs, recs)
			return err
		})
	})
	return took, cpuNow(srv) - cpu0
}

// BenchmarkSummaryHeavyVsNew: a member summary for a member with 10,000
// purchases against one for a new member (storetest.SummaryHeavyVsNew,
// wall time), on PostgreSQL. Goal: at most 1.2. It runs once whatever
// b.N is.
func BenchmarkSummaryHeavyVsNew(b *testing.B) {
	srv, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		pgtest.Need(b, nil, err)
	}
	defer srv.Close()
	_, dsn, err := srv.Schema()
	if err != nil {
		b.Fatal(err)
	}
	st, err := pgstore.Open(dsn, &pgstore.Options{Store: hqstore.Options{Clock: ledgertest.NewClock(time.Date(2026, 12, 27, 10, 0, 0, 0, time.UTC), true)}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	heavy, fresh := storetest.SummaryHeavyVsNew(b, st, true)
	fmt.Printf("REPORT summary_pg_heavy_us %.1f\nREPORT summary_pg_new_us %.1f\n", float64(heavy.Nanoseconds())/1e3, float64(fresh.Nanoseconds())/1e3)
	fmt.Printf("RATIO summary_heavy_vs_new_member_pg %.2f\n", float64(heavy)/float64(fresh))
}
