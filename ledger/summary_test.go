package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
)

func summaryLedger(t *testing.T) *ledger.Ledger {
	t.Helper()
	clock := ledgertest.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), true)
	return ledgertest.Open(t, &ledger.Options{Register: "r1", Clock: clock, Engine: &ledgertest.Engine{Version: 1}})
}

func TestMemberSummaryKeepsHeadOfficeFigures(t *testing.T) {
	l := summaryLedger(t)
	ctx := context.Background()
	if _, ok, err := l.MemberSummary("m1"); err != nil || ok {
		t.Fatalf("unknown member: ok %v err %v", ok, err)
	}
	in := ledger.MemberSummary{Member: ledger.Member{ID: "m1", Name: "Dana"}, Balance: 40, Version: 7,
		Spend12m: 12345, Visits12m: 4, Retention: json.RawMessage(` {"status": "due", "purchase_days": 4} `)}
	if err := l.ApplyMemberSummary(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, ok, err := l.MemberSummary("m1")
	if err != nil || !ok {
		t.Fatalf("summary: ok %v err %v", ok, err)
	}
	if got.Member.Name != "Dana" || got.Balance != 40 || got.Version != 7 || got.Spend12m != 12345 || got.Visits12m != 4 ||
		string(got.Retention) != `{"status":"due","purchase_days":4}` {
		t.Fatalf("summary read back %+v retention %s", got, got.Retention)
	}
	// A newer summary without a retention view clears it: head office's
	// latest word is what the register holds.
	if err := l.ApplyMemberSummary(ctx, ledger.MemberSummary{Member: ledger.Member{ID: "m1"}, Version: 8}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := l.MemberSummary("m1"); got.Retention != nil || got.Spend12m != 0 || got.Version != 8 {
		t.Fatalf("newer summary: %+v", got)
	}
}

func TestMemberSummaryRejectsBadFigures(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    ledger.MemberSummary
	}{
		{"negative spend", ledger.MemberSummary{Spend12m: -1}},
		{"negative visits", ledger.MemberSummary{Visits12m: -1}},
		{"retention not json", ledger.MemberSummary{Retention: json.RawMessage(`{"status":`)}},
		{"retention not an object", ledger.MemberSummary{Retention: json.RawMessage(`["due"]`)}},
		{"retention too large", ledger.MemberSummary{Retention: json.RawMessage(`{"offer":"` + strings.Repeat("x", 5000) + `"}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := summaryLedger(t)
			s := tc.s
			s.Member, s.Version = ledger.Member{ID: "m1"}, 1
			if err := l.ApplyMemberSummary(context.Background(), s); !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
			if _, ok, err := l.MemberSummary("m1"); ok || err != nil {
				t.Fatalf("a refused summary was stored: ok %v err %v", ok, err)
			}
		})
	}
}
