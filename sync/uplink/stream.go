package uplink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// The store's member-summary stream (docs/protocol.md "Member summaries").
// The register's position P says every summary of the stream up to P is
// applied; it is kept in the ledger (positionStore) so a restart asks only
// for what came after. Messages may arrive in any order (paho delivers
// them concurrently, the broker queues some while we are away, catch-up
// answers come on another topic): every summary is applied when it is
// newer for its member (the ledger compares versions), and P moves only
// across contiguous parts. A part that leaves a gap is remembered; when the
// gap stays open for GapWait the register asks head office for the stream
// from P (CatchUp), and again with a doubling wait while it stays open.

// ErrOffline: a lookup was asked while the link is down.
var ErrOffline = errors.New("uplink: head office not reachable")

// ErrNoAnswer: head office did not answer a lookup in time.
var ErrNoAnswer = errors.New("uplink: head office did not answer in time")

// positionStore is the ledger's record of the register's position in the
// member-summary stream (*ledger.Ledger implements it).
type positionStore interface {
	MembersPosition() (uint64, error)
	SetMembersPosition(ctx context.Context, p uint64, key string) error
}

// membersRebaser starts the position again from 0 and drops the summaries
// above seq (*ledger.Ledger implements it: RebaseMembers).
type membersRebaser interface {
	RebaseMembers(ctx context.Context, seq uint64, key string) (int, error)
}

// span is a part (from, seq] of the stream received beyond a gap.
type span struct{ from, seq uint64 }

// advance records that the part (from, seq] was applied and returns the
// new position and whether it moved. Callers hold u.mu.
func (st *state) advance(from, seq uint64, now time.Time) (uint64, bool) {
	p := st.membersSeq
	if seq <= p {
		return p, false
	}
	if from > p {
		st.ahead = append(st.ahead, span{from, seq})
		if st.gapSince.IsZero() {
			st.gapSince = now
		}
		return p, false
	}
	p = seq
	for moved := true; moved; {
		moved = false
		kept := st.ahead[:0]
		for _, s := range st.ahead {
			switch {
			case s.seq <= p:
				moved = true
			case s.from <= p:
				p, moved = s.seq, true
			default:
				kept = append(kept, s)
			}
		}
		st.ahead = kept
	}
	st.membersSeq = p
	if len(st.ahead) == 0 {
		st.gapSince, st.gapWait = time.Time{}, 0
	}
	return p, true
}

// applyMembers applies one members message (on the store's topic or, for
// a catch-up, on this register's own), signed by key, and moves the
// position. When the position was set by summaries of a key no longer
// pinned (a leaked key the operator removed), the stream starts again
// from 0 first (membersRebaser): the register catches up on head office's
// whole stream, whatever position the removed key's summaries claimed.
func (u *Uplink) applyMembers(ctx context.Context, b []byte, key string) {
	fail := func(err error) {
		u.log.Warn("member summaries rejected", "err", err)
		u.countVersion(err)
		u.count(func(s *state) { s.rejected++; s.membersErr = err.Error() })
	}
	ms, err := protocol.DecodeMembers(b, u.o.Store)
	if err != nil {
		fail(err)
		return
	}
	u.mu.Lock()
	last := u.st.membersSeq
	lifted := u.st.keys.Lifts(u.st.keys.Members, key)
	u.mu.Unlock()
	if lifted {
		dropped := 0
		if rb, ok := u.ob.(membersRebaser); ok {
			n, err := rb.RebaseMembers(ctx, ms.Seq, key)
			if err != nil {
				fail(fmt.Errorf("members seq %d: restarting the stream after a removed key: %w", ms.Seq, err))
				return
			}
			dropped = n
		}
		u.mu.Lock()
		u.st.membersSeq, u.st.membersMax, u.st.ahead = 0, 0, nil
		u.st.gapSince, u.st.gapWait = time.Time{}, 0
		u.st.keys.Members = key
		u.mu.Unlock()
		u.log.Warn("member summaries in force were signed by a key no longer pinned; the stream starts again from 0",
			"position_was", last, "seq", ms.Seq, "summaries_dropped", dropped, "key", key)
		last = 0
	}
	if ms.Seq <= last {
		return // everything in it is applied already
	}
	if u.o.OnMembers != nil {
		if err := u.o.OnMembers(ctx, ms); err != nil {
			// Not applied: the position stays, so the part is asked for
			// again (a gap is never skipped).
			u.mu.Lock()
			if u.st.gapSince.IsZero() {
				u.st.gapSince = time.Now()
			}
			u.mu.Unlock()
			fail(fmt.Errorf("members seq %d: %w", ms.Seq, err))
			return
		}
	}
	u.mu.Lock()
	var p uint64
	var moved bool
	u.st.membersMax = max(u.st.membersMax, ms.Seq)
	if ms.From == nil {
		// The older form (an older head office, or a store with registers
		// of the previous release): applied by version, but it says
		// nothing about the stream, so ask for the stream from our
		// position (watchGaps, after GapWait).
		p = u.st.membersSeq
		if u.st.gapSince.IsZero() {
			u.st.gapSince = time.Now()
		}
	} else {
		p, moved = u.st.advance(*ms.From, ms.Seq, time.Now())
	}
	u.st.membersErr = ""
	if moved {
		u.st.keys.Members = key
	}
	u.mu.Unlock()
	if moved {
		if ps, ok := u.ob.(positionStore); ok {
			if err := ps.SetMembersPosition(ctx, p, key); err != nil {
				u.log.Warn("member summary position not recorded; a restart asks again", "position", p, "err", err)
			}
		}
	}
}

// askAgain sends the session's second catch-up request (on head office's
// first live ack, down.go, or on Options.CatchUpAgain, session.go) without
// holding up its caller.
func (u *Uplink) askAgain(conn broker.Conn) {
	go func() {
		if err := u.askCatchUp(conn); err != nil {
			u.log.Warn("second catch-up request of the session not sent; a gap in the stream asks again", "err", err)
		}
	}()
}

// askCatchUp publishes a catch-up request from the current position.
func (u *Uplink) askCatchUp(conn broker.Conn) error {
	u.mu.Lock()
	from := u.st.membersSeq
	u.mu.Unlock()
	b, err := protocol.EncodeCatchUp(protocol.CatchUp{Register: u.o.Register, From: from})
	if err != nil {
		return err
	}
	if err := wait(context.Background(), conn.Publish(protocol.CatchUpTopic(u.o.Store, u.o.Register), 1, false, b), u.o.OpTimeout); err != nil {
		return fmt.Errorf("catch-up request: %w", err)
	}
	u.count(func(s *state) { s.catchUps++ })
	u.log.Info("asked head office for member summaries", "from", from)
	return nil
}

// watchGaps asks for the stream from the position while a gap stays open:
// after GapWait, then with a doubling wait up to 16x. It runs beside the
// downstream loop.
func (u *Uplink) watchGaps(ctx context.Context) {
	t := time.NewTicker(max(u.o.GapWait/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		u.mu.Lock()
		conn := u.conn
		due := !u.st.gapSince.IsZero() && now.Sub(u.st.gapSince) >= u.o.GapWait &&
			now.Sub(u.st.gapAsked) >= max(u.st.gapWait, u.o.GapWait)
		if due {
			u.st.gapAsked = now
			u.st.gapWait = min(2*max(u.st.gapWait, u.o.GapWait), 16*u.o.GapWait)
		}
		u.mu.Unlock()
		if due && conn != nil {
			if err := u.askCatchUp(conn); err != nil {
				u.log.Warn("catch-up request not sent; will retry", "err", err)
			}
		}
	}
}

// Lookup asks head office for the member a card number or alias belongs
// to and waits at most until ctx ends. When head office knows the member,
// its summary is applied like a members message (OnMembers) before Lookup
// returns it, so the register knows the member from then on. It returns
// ErrOffline while the link is down, ErrNoAnswer when ctx ends first, and
// a nil summary when head office knows no such member.
func (u *Uplink) Lookup(ctx context.Context, alias string) (*protocol.MemberSummary, error) {
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	b, err := protocol.EncodeLookup(protocol.Lookup{Register: u.o.Register, ID: id, Alias: alias})
	if err != nil {
		return nil, err
	}
	ch := make(chan *protocol.MemberSummary, 1)
	u.mu.Lock()
	conn := u.conn
	if conn != nil {
		if u.lookups == nil {
			u.lookups = map[string]chan *protocol.MemberSummary{}
		}
		u.lookups[id] = ch
	}
	u.mu.Unlock()
	if conn == nil {
		return nil, ErrOffline
	}
	defer func() {
		u.mu.Lock()
		delete(u.lookups, id)
		u.mu.Unlock()
	}()
	u.count(func(s *state) { s.lookups++ })
	tok := conn.Publish(protocol.LookupTopic(u.o.Store, u.o.Register), 1, false, b)
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			return nil, fmt.Errorf("%w: %w", ErrOffline, tok.Error())
		}
	case <-ctx.Done():
		return nil, ErrNoAnswer
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return nil, ErrNoAnswer
	}
}

// found handles head office's answer to a lookup: verified, decoded,
// applied, handed to the waiting Lookup. Answers nobody waits for (late,
// or for another register's ids) change nothing.
func (u *Uplink) found(ctx context.Context, m message) {
	u.mu.Lock()
	waiting := len(u.lookups) > 0
	u.mu.Unlock()
	if !waiting {
		return
	}
	doc, err := u.o.Keys.Open(m.topic, m.payload, protocol.MaxFoundSize+signing.Overhead)
	if err != nil {
		u.reject(fmt.Sprintf("lookup answer refused: %v", err))
		return
	}
	f, err := protocol.DecodeFound(doc, u.o.Store, u.o.Register)
	if err != nil {
		u.reject(err.Error())
		return
	}
	u.mu.Lock()
	ch := u.lookups[f.ID]
	u.mu.Unlock()
	if ch == nil {
		return
	}
	if f.Member != nil && u.o.OnMembers != nil {
		// Not part of the stream: the position does not move.
		ms := protocol.MemberSummaries{V: protocol.Version, Store: u.o.Store, Seq: f.Seq, Members: []protocol.MemberSummary{*f.Member}}
		if err := u.o.OnMembers(ctx, ms); err != nil {
			u.reject(fmt.Sprintf("lookup answer not applied: %v", err))
			return
		}
	}
	select {
	case ch <- f.Member:
	default:
	}
}

// lookupsLoop applies lookup answers off paho's goroutine and apart from
// the members messages, so a long catch-up never holds a till's lookup.
func (u *Uplink) lookupsLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-u.foundC:
			u.found(ctx, m)
		}
	}
}
