package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// TestOperatorCommandsOnPostgres: a chain's operator reviews, approves,
// acknowledges a gap and moves a register with -config (serve's config
// naming PostgreSQL) while a worker has the database open, as on the
// bbolt file with serve stopped; the database stays consistent.
func TestOperatorCommandsOnPostgres(t *testing.T) {
	st, cfgPath, dir := chainDB(t)
	st.SetPolicy(policy.New(policy.Limits{}, nil))
	ev := func(seq uint64, typ ledger.OutboxType, v any) hqstore.Event {
		data, _ := json.Marshal(v)
		return hqstore.Event{Register: "r1", Store: "s1", OutboxRecord: ledger.OutboxRecord{Seq: seq, ID: fmt.Sprintf("r1-%d", seq), Type: typ, Data: data}}
	}
	if _, err := st.Apply([]hqstore.Event{
		ev(1, ledger.OutMember, ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"C1"}}),
		ev(2, ledger.OutPoints, ledger.PointEvent{Register: "r1", Seq: 2, Kind: ledger.KindAdjust, MemberID: "m1", Points: 20_000, Reason: "x"}),
		ev(4, ledger.OutPoints, ledger.PointEvent{Register: "r1", Seq: 4, Kind: ledger.KindAdjust, MemberID: "m1", Points: 5}),
	}); err != nil {
		t.Fatal(err)
	}
	cmd := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, &out); err != nil {
			t.Fatalf("loyalty-hq %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	if out := cmd("review", "-config", cfgPath); !strings.Contains(out, "policy:adjust") {
		t.Fatalf("review lists no held adjustment:\n%s", out)
	}
	if out := cmd("review", "approve", "-config", cfgPath, "r1", "2"); !strings.Contains(out, "r1 seq 2 applied") {
		t.Fatalf("approve: %s", out)
	}
	if out := cmd("register", "gap", "-config", cfgPath, "-note", "restored", "r1", "3", "3"); !strings.Contains(out, "events 3..3 recorded as lost; 1 held") {
		t.Fatalf("gap: %s", out)
	}
	if out := cmd("register", "move", "-config", cfgPath, "-force", "r1", "s2"); !strings.Contains(out, "now belongs to store s2") {
		t.Fatalf("move: %s", out)
	}
	// Everything held about m1, from the live database (GDPR art. 15/20).
	if out := cmd("members", "export", "-config", cfgPath, "m1"); !strings.Contains(out, `"name": "Ann"`) || !strings.Contains(out, `"C1"`) {
		t.Fatalf("members export from PostgreSQL:\n%s", out)
	}
	sum, err := st.Summary("m1")
	if err != nil || sum.Balance != 20_005 {
		t.Fatalf("m1 after approval and gap: %d %v, want 20005", sum.Balance, err)
	}
	regs, err := st.Registers()
	if err != nil || len(regs) != 1 || regs[0].Store != "s2" || regs[0].Watermark != 4 {
		t.Fatalf("registers %+v %v", regs, err)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	// Both -store and -config, or neither: refused.
	var out bytes.Buffer
	for _, args := range [][]string{
		{"review", "-config", cfgPath, "-store", filepath.Join(dir, "hq.db")},
		{"register", "move", "r1", "s3"},
	} {
		if err := run(context.Background(), args, &out, &out); err == nil {
			t.Errorf("loyalty-hq %v accepted", args)
		}
	}
}

// TestReviewDismissReused: an event of a register's ledger held as
// reused (a ledger restored from an older backup sent other content under
// a number head office applied) is listed, cannot be approved, and is
// dismissed with review dismiss; head office's acks then go past it.
func TestReviewDismissReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(seq uint64, pts ledger.Points) hqstore.Event {
		data, _ := json.Marshal(ledger.PointEvent{Register: "r1", Seq: seq, Kind: ledger.KindEarn, MemberID: "m1", Points: pts})
		return hqstore.Event{Register: "r1", Store: "s1", Incarnation: "aaaa", OutboxRecord: ledger.OutboxRecord{Seq: seq, ID: fmt.Sprintf("r1-%d", seq), Type: ledger.OutPoints, Data: data}}
	}
	for _, evs := range [][]hqstore.Event{{ev(1, 10), ev(2, 10)}, {ev(2, 99), ev(3, 10)}} {
		if _, err := st.Apply(evs); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"review", "-store", path}, &out, &out); err != nil || !strings.Contains(out.String(), "reused") {
		t.Fatalf("review: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"review", "approve", "-store", path, "r1", "2"}, &out, &out); err == nil {
		t.Fatalf("approve of a reused event accepted:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"review", "dismiss", "-store", path, "r1", "2"}, &out, &out); err != nil || !strings.Contains(out.String(), "r1 seq 2 dismissed") {
		t.Fatalf("dismiss: %v\n%s", err, out.String())
	}
	st, err = hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, err := st.RegisterState("r1")
	if err != nil || rs.Watermark != 3 || rs.AckWatermark() != 3 || rs.Review != 0 {
		t.Fatalf("after dismissing: %+v %v", rs, err)
	}
}

// TestReviewNamesTheIncarnationToAdopt: a replacement's events held as
// `incarnation` are listed by review with the replacement's incarnation in
// full, and register adopt takes what review prints (outside tester: head
// office's own tools did not show the incarnation to adopt).
func TestReviewNamesTheIncarnationToAdopt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(seq uint64, inc string) hqstore.Event {
		data, _ := json.Marshal(ledger.PointEvent{Register: "r1", Seq: seq, Kind: ledger.KindEarn, MemberID: "m1", Points: 10})
		return hqstore.Event{Register: "r1", Store: "s1", Incarnation: inc, OutboxRecord: ledger.OutboxRecord{Seq: seq, ID: fmt.Sprintf("r1-%d", seq), Type: ledger.OutPoints, Data: data}}
	}
	const repl = "0123456789abcdef0123456789abcdef"
	for _, evs := range [][]hqstore.Event{{ev(1, "aaaa"), ev(2, "aaaa")}, {ev(3, repl)}} {
		if _, err := st.Apply(evs); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"review", "-store", path}, &out, &out); err != nil {
		t.Fatalf("review: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "INCARNATION") {
		t.Fatalf("review:\n%s", out.String())
	}
	f := strings.Fields(lines[1])
	if len(f) < 5 || f[1] != "r1" || f[2] != repl || f[3] != "3" {
		t.Fatalf("review row %q: want store, register, the replacement's incarnation in full, seq", lines[1])
	}
	out.Reset()
	if err := run(context.Background(), []string{"register", "adopt", "-store", path, "r1", f[2]}, &out, &out); err != nil {
		t.Fatalf("adopt %s as review printed it: %v\n%s", f[2], err, out.String())
	}
}
