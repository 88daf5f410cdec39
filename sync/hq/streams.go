package hq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	stdsync "sync"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// summariser publishes each store's member-summary stream (hqstore
// TakeSummaries): a changed member's summary goes to the stores where it
// shopped within SummaryMonths, each message the part (from, seq] of the
// store's stream; it answers registers' catch-up requests from their own
// position, on their own topic. Positions, not this process, remember what
// was sent: a restart publishes only what the broker never confirmed.
type summariser struct {
	c        broker.Publisher
	st       hqstore.Ingest
	months   int
	interval time.Duration
	wait     time.Duration
	log      *slog.Logger
	svc      *Service
	signer   *signing.Signer
	kick     chan struct{}

	mu stdsync.Mutex
	// catchUps are the registers waiting for a catch-up, each from the
	// lowest position it asked for.
	catchUps map[regKey]uint64
	// positions are the registers' positions in their store's stream as
	// their last status said (members_seq); ahead are those changed since
	// the last round, checked against the stream's head (rebase).
	positions map[regKey]uint64
	ahead     map[regKey]uint64
	// unsent are stores whose stream was not all confirmed by the broker.
	unsent map[string]bool
	// lead, when set, says whether this worker takes and publishes the
	// stores' streams now (one of several workers on PostgreSQL). Any
	// worker answers catch-ups: they read the shared store.
	lead    Coordinator
	leading bool
	// regs are the registers known in each store, true for those that
	// asked for a catch-up (they read messages with "from"). A store
	// gets "from" on its topic only when all its registers do: a register
	// of the previous release refuses the field (docs/protocol.md
	// "Member summaries").
	regs map[string]map[string]bool

	// rebaseEvery is the least time between two rebases of one store's
	// stream (Options.RebaseEvery); now is the clock that measures it.
	// rebasedAt and deferred belong to the round (one goroutine):
	// rebasedAt is when this process last rebased each store's stream,
	// deferred the highest claim above the counter refused since, checked
	// again when the store's time is up.
	rebaseEvery time.Duration
	now         func() time.Time
	rebasedAt   map[string]time.Time
	deferred    map[string]claim
}

// claim is a summary version a register says it applied (its catch-up
// position or the highest version in its status).
type claim struct {
	k   regKey
	pos uint64
}

// follow reports whether this worker publishes the stores' streams now.
// A worker that has just become the leader publishes first what the broker
// never confirmed to the last one (each store's sent position).
func (s *summariser) follow() bool {
	if s.lead == nil {
		return true
	}
	if !s.lead.Leader() {
		s.leading = false
		return false
	}
	if !s.leading {
		if err := s.loadUnsent(); err != nil {
			s.log.Warn("leading: summary streams not read; will retry", "err", err)
			return false
		}
		s.leading = true
	}
	return true
}

// loadUnsent marks the stores whose stream the broker has not confirmed
// to its head.
func (s *summariser) loadUnsent() error {
	streams, err := s.st.SummaryStreams()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range streams {
		if st.Sent < st.Head {
			s.unsent[st.Store] = true
		}
	}
	return nil
}

// chunk is the most members read and published per message.
const chunk = 500

func newSummariser(c broker.Publisher, st hqstore.Ingest, months int, interval, wait time.Duration, log *slog.Logger, svc *Service) *summariser {
	return &summariser{c: c, st: st, months: months, interval: interval, wait: wait, log: log, svc: svc,
		kick: make(chan struct{}, 1), catchUps: map[regKey]uint64{}, unsent: map[string]bool{},
		positions: map[regKey]uint64{}, ahead: map[regKey]uint64{},
		regs:        map[string]map[string]bool{},
		rebaseEvery: defaultRebaseEvery, now: time.Now,
		rebasedAt: map[string]time.Time{}, deferred: map[string]claim{}}
}

// seen records a register of a store (from its events).
func (s *summariser) seen(store, register string) {
	if store == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.regs[store] == nil {
		s.regs[store] = map[string]bool{}
	}
	if _, ok := s.regs[store][register]; !ok {
		s.regs[store][register] = false
	}
}

// modern reports whether every register known in store reads "from".
// Several workers (PostgreSQL) do not share what they heard, so there the
// registers must be of this release (docs/hq.md).
func (s *summariser) modern(store string) bool {
	if s.lead != nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, speaks := range s.regs[store] {
		if !speaks {
			return false
		}
	}
	return true
}

// bonusFor reports whether the members messages on topic may carry the
// bonus fields (protocol.MemberBonus): on a register's own topic when its
// last status lists them, on the store's topic when every register known
// in the store (from its events, catch-ups and statuses) does. A register
// before them refuses a message with a field it does not know; without
// the fields it decides as before and head office's policy catches a
// second bonus (docs/protocol.md "Member summaries").
func (s *summariser) bonusFor(topic, store string) bool {
	if s.svc == nil || s.svc.fleet == nil {
		return false
	}
	if topic != protocol.MembersTopic(store) {
		t, err := protocol.ParseTopic(topic)
		return err == nil && s.svc.fleet.acceptsMemberField(store, t.Register, protocol.MemberBonus)
	}
	regs := s.svc.fleet.storeRegisters(store)
	s.mu.Lock()
	for r := range s.regs[store] {
		if !slices.Contains(regs, r) {
			regs = append(regs, r)
		}
	}
	s.mu.Unlock()
	if len(regs) == 0 {
		return false
	}
	for _, r := range regs {
		if !s.svc.fleet.acceptsMemberField(store, r, protocol.MemberBonus) {
			return false
		}
	}
	return true
}

func (s *summariser) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// mark says members changed; their summaries are taken from the store,
// which marked them in the commit.
func (s *summariser) mark(ids []string) {
	if len(ids) == 0 || s.interval < 0 {
		return
	}
	s.poke()
}

// catchUp queues a register's request for its store's stream after from.
func (s *summariser) catchUp(store, register string, from uint64) {
	if s.interval < 0 {
		return
	}
	k := regKey{store, register}
	s.mu.Lock()
	if s.regs[store] == nil {
		s.regs[store] = map[string]bool{}
	}
	s.regs[store][register] = true
	if cur, ok := s.catchUps[k]; !ok || from < cur {
		s.catchUps[k] = from
	}
	s.mu.Unlock()
	s.poke()
}

// position records a register's position in its store's stream from its
// status; a changed one is checked in the next round.
func (s *summariser) position(store, register string, pos uint64) {
	if s.interval < 0 || pos == 0 {
		return
	}
	k := regKey{store, register}
	s.mu.Lock()
	changed := s.positions[k] != pos
	if changed {
		s.positions[k] = pos
		s.ahead[k] = pos
	}
	s.mu.Unlock()
	if changed {
		s.poke()
	}
}

func (s *summariser) run(ctx context.Context) {
	if s.interval < 0 {
		return
	}
	// What a previous run assigned but the broker never confirmed, and
	// members changed before it stopped.
	if s.lead == nil {
		if err := s.loadUnsent(); err != nil {
			s.log.Warn("summary streams not read; nothing resent", "err", err)
		}
	}
	s.poke()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.round(ctx)
		select { // rate limit: coalesce what arrives meanwhile
		case <-ctx.Done():
			return
		case <-time.After(s.interval):
		}
	}
}

func (s *summariser) round(ctx context.Context) {
	leads := s.follow()
	s.mu.Lock()
	unsent := s.unsent
	s.unsent = map[string]bool{}
	if !leads {
		unsent = nil
	}
	reqs := s.catchUps
	s.catchUps = map[regKey]uint64{}
	ahead := s.ahead
	s.ahead = map[regKey]uint64{}
	s.mu.Unlock()
	// One check per store and round, with the highest version any of its
	// registers claims (their statuses, retained, arrive together when
	// head office starts): one rebase covers them all.
	claims := map[string]claim{}
	add := func(k regKey, pos uint64) {
		if c, ok := claims[k.store]; !ok || pos > c.pos {
			claims[k.store] = claim{k, pos}
		}
	}
	for k, pos := range ahead {
		add(k, pos)
	}
	for k, from := range reqs {
		add(k, from)
	}
	now := s.now()
	for store, c := range s.deferred {
		if now.Sub(s.rebasedAt[store]) >= s.rebaseEvery {
			delete(s.deferred, store)
			add(c.k, c.pos)
		}
	}
	for store, c := range claims {
		if err := s.rebase(c.k, c.pos, now); err != nil {
			s.log.Warn("summary position of a register not checked", "store", store, "register", c.k.register, "err", err)
			s.mu.Lock()
			for k := range ahead {
				if k.store == store {
					delete(s.positions, k) // checked again at its next status
				}
			}
			s.mu.Unlock()
		}
	}
	failed := func(store string, err error) {
		s.log.Warn("member summaries not sent; will retry", "store", store, "err", err)
		s.mu.Lock()
		s.unsent[store] = true
		s.mu.Unlock()
	}
	for store := range unsent {
		if err := s.resend(store); err != nil {
			failed(store, err)
		}
	}
	for leads && ctx.Err() == nil {
		batches, err := s.st.TakeSummaries(s.months, chunk)
		if err != nil {
			s.log.Warn("member summaries not taken; will retry", "err", err)
			time.AfterFunc(s.interval, s.poke)
			break
		}
		if len(batches) == 0 {
			break
		}
		for _, b := range batches {
			if err := s.publish(protocol.MembersTopic(b.Store), b); err != nil {
				failed(b.Store, err)
			}
		}
	}
	for k, from := range reqs {
		if err := s.answer(k, from); err != nil {
			s.log.Warn("catch-up not sent; the register asks again", "store", k.store, "register", k.register, "err", err)
		}
	}
	s.mu.Lock()
	again := len(s.unsent) > 0 || len(s.catchUps) > 0
	s.mu.Unlock()
	if again {
		time.AfterFunc(s.interval, s.poke)
	}
}

// resend publishes the store's stream from its sent position to its head.
func (s *summariser) resend(store string) error {
	streams, err := s.st.SummaryStreams()
	if err != nil {
		return err
	}
	for _, st := range streams {
		if st.Store == store {
			return s.stream(protocol.MembersTopic(store), store, st.Sent)
		}
	}
	return nil
}

// maxRebase bounds the position a register may move head office's
// counter to (Streams.Rebase): far below protocol's 2^56, so a register's
// credentials cannot use up the positions every store depends on.
const maxRebase = 1 << 55

// defaultRebaseEvery is Options.RebaseEvery's default.
const defaultRebaseEvery = 10 * time.Minute

// answer sends one register its store's stream from its position (the
// round checked the position first: a register ahead of the counter had
// its store's members placed after it, and the round sends them).
func (s *summariser) answer(k regKey, from uint64) error {
	err := s.stream(protocol.RegisterMembersTopic(k.store, k.register), k.store, from)
	s.svc.count(func(st *Status) { st.CatchUps++ })
	return err
}

// rebase checks a summary version a register applied (its position, or
// the highest version it applied) against head office's counter: a
// register can hold no version above it unless head office was restored
// from an older backup (or the register's ledger came from another head
// office). Then the store's stream is rebased above it (Streams.Rebase),
// at most once per store and rebaseEvery: a register's credentials alone
// (its own catch-up topic, its own status) must not make head office
// resend a store to all its registers at will. A claim above the counter
// sooner than that is refused and counted (Status.RebasesRefused),
// logged once, and the highest is checked again when the store's time is
// up (a register of a restored store whose status came after the first
// rebase is caught up then).
func (s *summariser) rebase(k regKey, pos uint64, now time.Time) error {
	if pos == 0 {
		return nil
	}
	if pos > maxRebase {
		s.log.Warn("register claims a summary version beyond what head office hands out; not followed",
			"store", k.store, "register", k.register, "version", pos)
		s.svc.count(func(st *Status) { st.RebasesRefused++ })
		return nil
	}
	if at, ok := s.rebasedAt[k.store]; ok && now.Sub(at) < s.rebaseEvery {
		c, err := s.st.SummaryCounter()
		if err != nil || pos <= c {
			return err
		}
		s.svc.count(func(st *Status) { st.RebasesRefused++ })
		d, had := s.deferred[k.store]
		if !had || pos > d.pos {
			s.deferred[k.store] = claim{k, pos}
		}
		if !had {
			next := at.Add(s.rebaseEvery)
			s.log.Warn("register claims member summaries newer than head office's counter again soon after its store's stream was rebased; "+
				"not followed now (a register's credentials alone could make head office resend the store at will), checked again later",
				"store", k.store, "register", k.register, "version", pos, "counter", c, "rebased_at", at, "checked_at", next)
			time.AfterFunc(next.Sub(now), s.poke)
		}
		return nil
	}
	rebased, n, err := s.st.Rebase(k.store, pos)
	if err != nil || !rebased {
		return err
	}
	s.rebasedAt[k.store] = now
	s.log.Warn("register holds member summaries newer than head office's counter: head office was restored from an older backup "+
		"(or the register's ledger came from another head office); its store's members are sent again above them",
		"store", k.store, "register", k.register, "version", pos, "members", n)
	s.svc.count(func(st *Status) { st.Rebases++ })
	s.poke()
	return nil
}

// stream publishes the store's stream after from, chunk by chunk, on topic.
func (s *summariser) stream(topic, store string, from uint64) error {
	for {
		b, more, err := s.st.CatchUp(store, from, chunk)
		if err != nil {
			return err
		}
		if b.Seq == 0 {
			return nil // nothing after from
		}
		if err := s.publish(topic, b); err != nil {
			return err
		}
		if !more {
			return nil
		}
		from = b.Seq
	}
}

// publish sends one batch on topic, split in halves (at member positions)
// while a message would be too large. On the store's own topic a
// confirmed message moves the store's sent position.
func (s *summariser) publish(topic string, b hqstore.StreamBatch) error {
	sums := make([]protocol.MemberSummary, len(b.Members))
	bonus := s.bonusFor(topic, b.Store)
	for i, m := range b.Members {
		sums[i] = ToProtocol(m)
		if !bonus {
			sums[i].FirstBonus, sums[i].BirthdayYear = "", 0
		}
	}
	from := b.From
	modern := topic != protocol.MembersTopic(b.Store) || s.modern(b.Store)
	for len(sums) > 0 {
		n := len(sums)
		var msg []byte
		for {
			seq := b.Seq
			if n < len(sums) {
				seq = b.Positions[n-1]
			}
			ms := protocol.MemberSummaries{Store: b.Store, Seq: seq, Members: sums[:n]}
			if modern {
				ms.From = &from
			}
			enc, err := protocol.EncodeMembers(ms)
			if errors.Is(err, protocol.ErrTooLarge) && n > 1 {
				n /= 2
				continue
			}
			if err != nil {
				return err
			}
			msg = enc
			break
		}
		seq := b.Seq
		if n < len(sums) {
			seq = b.Positions[n-1]
		}
		signed, err := s.signer.Seal(topic, msg)
		if err != nil {
			return err
		}
		t := s.c.Publish(topic, 1, false, signed)
		if !broker.WaitTimeout(t, s.wait) {
			return ErrTimeout
		}
		if t.Error() != nil {
			return t.Error()
		}
		onStore := topic == protocol.MembersTopic(b.Store)
		s.svc.count(func(st *Status) {
			st.SummariesSent += uint64(n)
			if !onStore {
				st.CatchUpSummaries += uint64(n)
			}
		})
		if onStore {
			if err := s.st.SummarySent(b.Store, seq); err != nil {
				return fmt.Errorf("record sent position: %w", err)
			}
		}
		sums, b.Positions = sums[n:], b.Positions[n:]
		from = seq
	}
	return nil
}
