package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/uplink"
)

// TestPromptFromHeadOfficeSummary runs the whole path of head office's
// retention view: purchases at other registers in the head-office store,
// the members message head office builds, the register's uplink mapping
// into its ledger, and the cashier prompt for the member.
func TestPromptFromHeadOfficeSummary(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	// Head office: a member enrolled at register r9 of another store, who
	// bought every 30 days, last 40 days ago.
	st, err := hqstore.Open(filepath.Join(t.TempDir(), "hq.db"), &hqstore.Options{Clock: ledgertest.NewClock(now, true)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := func(seq uint64, typ ledger.OutboxType, data string) hqstore.Event {
		return hqstore.Event{Register: "r9", Store: "s9", OutboxRecord: ledger.OutboxRecord{Seq: seq, ID: protocol.EventID("r9", seq),
			Type: typ, WallTime: now, ClockTrusted: true, Data: []byte(data)}}
	}
	evs := []hqstore.Event{rec(1, ledger.OutMember, `{"id":"m1","name":"Dana","aliases":["card-1"]}`)}
	for i, d := range []int{-130, -100, -70, -40} {
		at := now.AddDate(0, 0, d).Format(time.RFC3339)
		evs = append(evs, rec(uint64(2+2*i), ledger.OutSale, fmt.Sprintf(`{"id":"r9-s%d","register":"r9","member_id":"m1","total":2500,"wall_time":%q,"clock_trusted":true}`, i, at)),
			rec(uint64(3+2*i), ledger.OutPoints, `{"register":"r9","kind":"earn","member_id":"m1","points":25}`))
	}
	if res, err := st.Apply(evs); err != nil || res.Applied != len(evs) {
		t.Fatalf("head office apply: %+v %v", res, err)
	}
	sums, err := st.Summaries([]string{"m1"})
	if err != nil || len(sums) != 1 {
		t.Fatalf("summaries %v %v", sums, err)
	}
	wire, err := protocol.EncodeMembers(protocol.MemberSummaries{Store: "s1", Seq: 7, Members: []protocol.MemberSummary{hq.ToProtocol(sums[0])}})
	if err != nil {
		t.Fatal(err)
	}

	// The register r1 of store s1: receives the message.
	clock := ledgertest.NewClock(now, true)
	led := ledgertest.Open(t, &ledger.Options{Register: "r1", Clock: clock, Engine: &ledgertest.Engine{Version: 1}})
	msg, err := protocol.DecodeMembers(wire, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := uplink.ApplyMembersTo(led, "r1")(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	held, ok, err := led.MemberSummary("m1")
	if err != nil || !ok || held.Spend12m != 10000 || held.Visits12m != 4 || held.Balance != 100 || len(held.Retention) == 0 {
		t.Fatalf("register holds %+v (retention %s) ok %v err %v", held, held.Retention, ok, err)
	}
	m, err := led.LookupAlias("card-1")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prompt := func(at time.Time, trusted bool) string {
		return promptFunc(led, ledgertest.NewClock(at, trusted), time.UTC, log)(m, 100)
	}
	tests := []struct {
		name    string
		at      time.Time
		trusted bool
		want    string
	}{
		// The register has no purchase of m1: without head office's view
		// it could say nothing.
		{"due by head office's rhythm", now, true, "Due (usually every 30 days): remind them of their usual"},
		{"still active two weeks earlier", now.AddDate(0, 0, -14), true, ""},
		{"sleeping once away past three intervals", now.AddDate(0, 0, 60), true, "Welcome back after 100 days: offer the welcome-back reward"},
		{"untrusted clock says nothing time-based", now, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := prompt(tc.at, tc.trusted); got != tc.want {
				t.Fatalf("prompt %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPromptFromLocalHistoryWithoutSummary: with no summary from head
// office, the register's own history decides.
func TestPromptFromLocalHistoryWithoutSummary(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	clock := ledgertest.NewClock(now.AddDate(0, 0, -70), true)
	led := ledgertest.Open(t, &ledger.Options{Register: "r1", Clock: clock, Engine: &ledgertest.Engine{Version: 1}})
	ctx := context.Background()
	m, err := led.Enrol(ctx, ledger.Member{ID: "m2", Aliases: []string{"card-2"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := led.RecordSale(ctx, ledger.SaleRequest{ID: fmt.Sprintf("s%d", i), MemberID: "m2",
			Lines: []ledger.Line{{No: 1, SKU: "x", Quantity: 1, UnitPrice: 1000}}}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(20 * 24 * time.Hour)
	}
	if _, ok, _ := led.MemberSummary("m2"); ok {
		t.Fatal("a summary without head office")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Purchases 70 and 50 days ago: interval 20, away 50 days: due.
	got := promptFunc(led, ledgertest.NewClock(now, true), time.UTC, log)(m, 0)
	if want := "Due (usually every 20 days): remind them of their usual"; got != want {
		t.Fatalf("prompt %q, want %q", got, want)
	}
}

// TestPromptFollowsTheRulesInForce: "N points to the next reward" uses the
// rewards of the rule set in force, so a head-office update is followed at
// once (before: the rewards at start).
func TestPromptFollowsTheRulesInForce(t *testing.T) {
	led := ledgertest.Open(t, &ledger.Options{Register: "r1", Rules: ruleSet(1, "1")}) // reward r1: 10 points
	m, err := led.Enrol(context.Background(), ledger.Member{ID: "m3"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prompt := promptFunc(led, ledgertest.NewClock(time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), false), time.UTC, log)
	if got := prompt(m, 9); got != "1 points to the next reward" {
		t.Fatalf("prompt %q", got)
	}
	if got := prompt(m, 11); got != "" {
		t.Fatalf("11 points under a 10-point reward: %q", got)
	}
	rs := ruleSet(2, "1")
	rs.Rewards[0].Points = 12
	if err := led.SetRules(rs); err != nil {
		t.Fatal(err)
	}
	if got := prompt(m, 11); got != "1 points to the next reward" {
		t.Fatalf("after head office's new rule set: %q", got)
	}
}

// TestPromptDuringClockFault: the prompt as the daemon wires it (the
// ledger's verdict, verdictClock) says nothing time-based while a
// synchronised clock is in a fault: a clock a year ahead of the ledger's
// trusted-time mark is no date for "birthday today". The raw clock would
// have said it.
func TestPromptDuringClockFault(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	clk := ledgertest.NewClock(now, true)
	led := ledgertest.Open(t, &ledger.Options{Register: "r1", Clock: clk})
	ahead := now.AddDate(1, 0, 3)
	m, err := led.Enrol(context.Background(), ledger.Member{ID: "m4", Birthday: ahead.Format("--01-02")}) // sets the mark
	if err != nil {
		t.Fatal(err)
	}
	clk.Step(ahead, true) // no time passed: an "ahead" fault
	if cs, err := led.ClockStatus(); err != nil || cs.Fault != ledger.FaultAhead {
		t.Fatalf("clock status %+v %v, want an ahead fault", cs, err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if got := promptFunc(led, clk, time.UTC, log)(m, 0); got == "" {
		t.Fatal("the raw clock gives no birthday prompt: the test shows nothing")
	}
	if got := promptFunc(led, verdictClock{led, clk}, time.UTC, log)(m, 0); got != "" {
		t.Fatalf("prompt during an ahead fault: %q", got)
	}
	clk.Step(now.Add(time.Minute), true) // agrees again: the birthday is in three days
	if got := promptFunc(led, verdictClock{led, clk}, time.UTC, log)(m, 0); got != "Birthday this week: give the birthday reward" {
		t.Fatalf("prompt once the clock agrees again: %q", got)
	}
}
