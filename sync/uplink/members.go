package uplink

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// LedgerSummaries maps a members message to the ledger's form for this
// register: Covered is what the summary included of this register's own
// events, Version the message's Seq; the twelve-month figures are copied
// and the retention view is kept as its JSON (ledger.MemberSummary.Retention,
// read back by the cashier prompt). A summary without a profile carries
// only the member id.
func LedgerSummaries(register string, ms protocol.MemberSummaries) []ledger.MemberSummary {
	out := make([]ledger.MemberSummary, 0, len(ms.Members))
	for _, s := range ms.Members {
		m := ledger.Member{ID: s.MemberID, Tier: s.Tier}
		if s.Member != nil {
			m = *s.Member
		}
		var ret json.RawMessage
		if s.Retention != nil {
			// A validated retention.MemberSummary always marshals.
			ret, _ = json.Marshal(s.Retention)
		}
		out = append(out, ledger.MemberSummary{Member: m, Balance: s.Balance,
			Covered: s.Included[register], Version: ms.Seq,
			Spend12m: s.Spend12m, Visits12m: s.Visits12m, Retention: ret,
			FirstBonus: s.FirstBonus, BirthdayYear: s.BirthdayYear})
	}
	return out
}

// ApplyMembersTo returns an OnMembers callback that applies every summary
// to l with ledger.ApplyMemberSummary.
func ApplyMembersTo(l interface {
	ApplyMemberSummary(context.Context, ledger.MemberSummary) error
}, register string) func(context.Context, protocol.MemberSummaries) error {
	return func(ctx context.Context, ms protocol.MemberSummaries) error {
		for _, s := range LedgerSummaries(register, ms) {
			if err := l.ApplyMemberSummary(ctx, s); err != nil {
				return fmt.Errorf("member %s: %w", s.Member.ID, err)
			}
		}
		return nil
	}
}
