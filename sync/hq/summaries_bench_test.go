package hq_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/mosquittotest"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// BenchmarkSummariesPerSale measures the member summaries head office
// publishes per sale (Status.SummariesSent: one per member per store
// message) in a chain of 500 stores, one register each, where each of
// 2,000 members shops at 1-3 of them (enrolled at the first, a purchase
// at the others), over real mosquitto: then 2,000 sales, each at one of
// the member's stores. Goal: at most 3 (each sale's member goes only to
// its 1-3 stores; every store got every changed member before). It runs
// once whatever b.N is.
func BenchmarkSummariesPerSale(b *testing.B) {
	const stores, members, sales = 500, 2000, 2000
	broker := mosquittotest.Start(b, &mosquittotest.Options{MaxQueuedMessages: 100000, MaxInflightMessages: 200})
	svc, st, _ := startHQ(b, broker.URL(), "", hq.Options{SummaryInterval: 20 * time.Millisecond})
	c := connect(b, broker.URL(), "bench-registers", true, nil)
	seed, _ := testkit.Seed(b)
	rng := rand.New(rand.NewPCG(seed, 11))
	seqs := make([]uint64, stores)
	send := func(store int, typ ledger.OutboxType, data any) {
		raw, err := json.Marshal(data)
		if err != nil {
			b.Fatal(err)
		}
		s, r := fmt.Sprintf("s%03d", store), fmt.Sprintf("s%03d-r1", store)
		seqs[store]++
		rec := ledger.OutboxRecord{Seq: seqs[store], ID: protocol.EventID(r, seqs[store]), Type: typ,
			WallTime: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), ClockTrusted: true, Data: raw}
		msg, err := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord(s, r, rec)})
		if err != nil {
			b.Fatal(err)
		}
		if tok := c.Publish(protocol.EventsTopic(s, r), 1, false, msg); !tok.WaitTimeout(wait) || tok.Error() != nil {
			b.Fatalf("publish: %v", tok.Error())
		}
	}
	earn := func(store int, member string, pts ledger.Points) {
		r := fmt.Sprintf("s%03d-r1", store)
		send(store, ledger.OutPoints, ledger.PointEvent{ID: protocol.EventID(r, seqs[store]+1), Register: r, Seq: seqs[store] + 1,
			Kind: ledger.KindEarn, MemberID: member, Points: pts})
	}
	shops := make([][]int, members)
	for m := range members {
		for range 1 + rng.IntN(3) {
			shops[m] = append(shops[m], rng.IntN(stores))
		}
		id := fmt.Sprintf("m%05d", m)
		send(shops[m][0], ledger.OutMember, ledger.Member{ID: id, Aliases: []string{"card-" + id}})
		for _, s := range shops[m][1:] {
			earn(s, id, 1)
		}
	}
	settle := func(what string, events uint64) uint64 {
		testkit.Eventually(b, 2*time.Minute, what, func() bool {
			n, err := st.Dirty()
			return err == nil && n == 0 && svc.Status().Applied == events
		})
		// The last round's messages: the count stops moving.
		last := svc.Status().SummariesSent
		for {
			time.Sleep(200 * time.Millisecond)
			now := svc.Status().SummariesSent
			if now == last {
				return now
			}
			last = now
		}
	}
	var events uint64
	for _, n := range seqs {
		events += n
	}
	before := settle("the chain's members placed", events)
	distinct := 0
	for m := range members {
		seen := map[int]bool{}
		for _, s := range shops[m] {
			seen[s] = true
		}
		distinct += len(seen)
	}
	for range sales {
		m := rng.IntN(members)
		earn(shops[m][rng.IntN(len(shops[m]))], fmt.Sprintf("m%05d", m), 5)
	}
	after := settle("the sales' summaries sent", events+sales)
	per := float64(after-before) / sales
	b.Logf("%d stores, %d members at %.2f stores each on average; %d sales: %d summaries (before: %d for the members' first events)",
		stores, members, float64(distinct)/members, sales, after-before, before)
	fmt.Printf("REPORT summaries_per_sale %.2f\n", per)
	if err := st.Check(); err != nil {
		b.Fatal(err)
	}
}
