package pgstore_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
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
func BenchmarkIngestVsFloor(b *testing.B) {
	srv, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		pgtest.Need(b, nil, err)
	}
	defer srv.Close()
	batches := benchBatches()
	events := len(batches) * benchBatch
	const rounds = 3
	var ingest, floor []float64
	for r := 0; r < rounds; r++ {
		floor = append(floor, float64(events)/runFloor(b, srv, batches).Seconds())
		ingest = append(ingest, float64(events)/runIngest(b, srv, batches).Seconds())
	}
	sort.Float64s(ingest)
	sort.Float64s(floor)
	in, fl := ingest[rounds/2], floor[rounds/2]
	b.ReportMetric(in, "ingest-events/s")
	b.ReportMetric(fl, "floor-events/s")
	fmt.Printf("REPORT hq_pg_ingest_rate %.0f events/s\n", in)
	fmt.Printf("REPORT hq_pg_floor_rate %.0f events/s\n", fl)
	fmt.Printf("RATIO hq_pg_ingest_vs_pg_floor %.2f\n", in/fl)
}

// benchBatches cuts every register's stream into 64-event batches and
// deals them round-robin, so each connection carries whole registers in
// order (as a shared subscription by client id does).
func benchBatches() [][]hqstore.Event {
	var out [][]hqstore.Event
	for r := 0; r < benchRegs; r++ {
		reg := fmt.Sprintf("s%02d-r1", r)
		var cur []hqstore.Event
		for seq := uint64(1); seq <= benchPer; seq++ {
			cur = append(cur, storetest.Earn(reg, seq, fmt.Sprintf("m%05d", (r*131+int(seq)*17)%benchMembers), ledger.Points(seq%9+1)))
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

func runIngest(b *testing.B, srv *pgtest.Server, batches [][]hqstore.Event) time.Duration {
	_, dsn, err := srv.Schema()
	if err != nil {
		b.Fatal(err)
	}
	st, err := pgstore.Open(dsn, &pgstore.Options{MaxConns: benchConns})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	took := parallel(b, batches, func(bt []hqstore.Event) error {
		_, err := st.Apply(bt)
		return err
	})
	if err := st.Check(); err != nil {
		b.Fatal(err)
	}
	return took
}

// runFloor inserts the same rows (the stored record of each event, keyed
// by register and sequence) with nothing else.
func runFloor(b *testing.B, srv *pgtest.Server, batches [][]hqstore.Event) time.Duration {
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
	return parallel(b, batches, func(bt []hqstore.Event) error {
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
