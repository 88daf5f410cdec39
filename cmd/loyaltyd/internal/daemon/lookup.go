package daemon

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/phone"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// askingMembers is the ledger as the checkout and the API see it, with
// head office behind it: a card or alias this register does not know is
// asked of head office (uplink.Lookup, bounded by sync.lookup_timeout);
// head office answers for aliases only, so a member id this register
// does not know stays unknown.
// When head office knows the member in time, its summary is in the ledger
// by then, so the lookup finds it with the chain-wide balance; otherwise
// the card stays unknown, as without sync.
type askingMembers struct {
	phone.Members
	ask     func(ctx context.Context, alias string) (*protocol.MemberSummary, error)
	timeout time.Duration
	log     *slog.Logger
}

// LookupAlias finds the member locally, then at head office.
func (m askingMembers) LookupAlias(alias string) (ledger.Member, error) {
	mem, err := m.Members.LookupAlias(alias)
	if !errors.Is(err, ledger.ErrUnknownMember) || m.ask == nil || alias == "" || len(alias) > protocol.MaxAlias {
		return mem, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	t0 := time.Now()
	s, aerr := m.ask(ctx, alias)
	switch {
	case aerr != nil:
		m.log.Info("card not known here; head office not asked or did not answer in time", "err", aerr, "waited", time.Since(t0).Round(time.Millisecond))
		return mem, err
	case s == nil:
		return mem, err // head office does not know it either
	}
	m.log.Info("card not known here; head office knows the member", "member", s.MemberID, "took", time.Since(t0).Round(time.Millisecond))
	// Head office finds members only by an alias (a card or phone
	// number), never by member id (docs/protocol.md "Card lookup").
	return m.Members.LookupAlias(alias)
}

// askingMembers wraps the ledger's members with head office's lookup when
// sync runs.
func (r *register) askingMembers() askingMembers {
	m := askingMembers{Members: r.members(), timeout: r.cfg.Sync.LookupTimeout, log: r.log.With("subsystem", "lookup")}
	if r.cfg.Sync.Enabled {
		m.ask = func(ctx context.Context, alias string) (*protocol.MemberSummary, error) {
			up := r.up // set before the checkout and the API take requests
			if up == nil {
				return nil, errors.New("sync not started")
			}
			return up.Lookup(ctx, alias)
		}
	}
	return m
}
