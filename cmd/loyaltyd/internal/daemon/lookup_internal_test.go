package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/phone"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// TestAskingMembersFindsByAlias: a card this register does not know is
// asked of head office; when head office knows it (its summary is then in
// the ledger, as the uplink installs it), the lookup finds the member by
// the card asked, the first time, and by its other aliases without
// asking again. Head office answers for aliases only: a member id asked
// stays unknown here. Unknown at head office too, or no answer: unknown
// here.
func TestAskingMembersFindsByAlias(t *testing.T) {
	led, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), &ledger.Options{Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	asked := 0
	m := askingMembers{Members: phone.Members{Ledger: led}, timeout: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ask: func(ctx context.Context, alias string) (*protocol.MemberSummary, error) {
			asked++
			switch alias {
			case "C1", "C2":
				err := led.ApplyMemberSummary(ctx, ledger.MemberSummary{Member: ledger.Member{ID: "m1", Name: "Ann", Aliases: []string{"C1", "C2"}},
					Balance: 120, Version: uint64(asked)})
				return &protocol.MemberSummary{MemberID: "m1"}, err
			case "slow":
				return nil, errors.New("no answer in time")
			}
			return nil, nil // head office: no member has that alias (a member id is none)
		}}
	for _, asking := range []string{"C1", "C2"} {
		got, err := m.LookupAlias(asking)
		if err != nil || got.ID != "m1" {
			t.Fatalf("lookup %q: %+v %v, want m1 from head office", asking, got, err)
		}
	}
	if asked != 1 {
		t.Fatalf("head office asked %d times, want once (then the member is here)", asked)
	}
	for _, unknown := range []string{"m2", "C9", "slow"} {
		if _, err := m.LookupAlias(unknown); !errors.Is(err, ledger.ErrUnknownMember) {
			t.Fatalf("lookup %q: %v, want unknown member", unknown, err)
		}
	}
}
