package hq

import (
	"context"
	"errors"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// requests handles the registers' requests about member summaries:
// catch-ups go to the summariser, lookups are answered here at once (a
// till waits for them).
func (s *Service) requests(ctx context.Context) {
	for {
		var m inMsg
		select {
		case <-ctx.Done():
			return
		case m = <-s.reqIn:
		}
		t, err := protocol.ParseTopic(m.topic)
		if err != nil || t.Register == "" {
			s.log.Warn("request on an unknown topic", "topic", m.topic, "err", err)
			continue
		}
		switch t.Kind {
		case protocol.KindCatchUp:
			c, err := protocol.DecodeCatchUp(m.payload, t.Register)
			if err != nil {
				s.log.Warn("catch-up request refused", "topic", m.topic, "err", err)
				continue
			}
			s.sums.catchUp(t.Store, t.Register, c.From)
		case protocol.KindLookup:
			// The bound comes first: a refused lookup costs head office
			// no decoding, no read and no write.
			if ok, first := s.lookupLimit.allow(regKey{t.Store, t.Register}, time.Now()); !ok {
				s.count(func(st *Status) { st.LookupsRefused++ })
				if first {
					s.log.Warn("card lookups refused: the register asks faster than head office answers one register (a stolen credential reading members?)",
						"store", t.Store, "register", t.Register, "every", s.opts.LookupEvery, "burst", s.opts.LookupBurst)
				}
				continue
			}
			l, err := protocol.DecodeLookup(m.payload, t.Register)
			if err != nil {
				s.log.Warn("lookup refused", "topic", m.topic, "err", err)
				continue
			}
			s.answerLookup(t, l)
		}
	}
}

// answerLookup publishes head office's summary of the member an alias
// names (or that no member has it) to the asking register, signed. Only
// an alias finds a member (a card or phone presented at the till), not a
// member id; the summary carries the till's part of the profile
// (TillProfile).
func (s *Service) answerLookup(t protocol.Topic, l protocol.Lookup) {
	s.count(func(st *Status) { st.Lookups++ })
	f := protocol.Found{Store: t.Store, Register: t.Register, ID: l.ID}
	sum, seq, err := s.st.LookupSummary(l.Alias)
	switch {
	case errors.Is(err, hqstore.ErrUnknownMember):
	case err != nil:
		s.log.Warn("lookup not answered", "register", t.Register, "err", err)
		return
	default:
		p := ToProtocol(sum)
		if s.fleet == nil || !s.fleet.acceptsMemberField(t.Store, t.Register, protocol.MemberBonus) {
			p.FirstBonus, p.BirthdayYear = "", 0
		}
		f.Member, f.Seq = &p, seq
		// The store now holds the member: its later summaries and an
		// erasure must reach it too. It is not a store where the member
		// shops (the policy's profile check does not count it).
		if err := s.st.LookedUp(sum.Member.ID, t.Store); err != nil {
			s.log.Warn("lookup not answered", "register", t.Register, "err", err)
			return
		}
	}
	b, err := protocol.EncodeFound(f)
	if err != nil {
		s.log.Warn("lookup not answered", "register", t.Register, "err", err)
		return
	}
	topic := protocol.FoundTopic(t.Store, t.Register)
	signed, err := s.opts.Signer.Seal(topic, b)
	if err != nil {
		s.log.Warn("lookup not answered", "register", t.Register, "err", err)
		return
	}
	// Not waited for: the register times out on its own, and a lost answer
	// is asked for again at the next scan.
	s.acks.c.Publish(topic, 1, false, signed)
}
