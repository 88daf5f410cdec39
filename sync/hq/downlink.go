package hq

import (
	"context"
	"fmt"
	"log/slog"
	stdsync "sync"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

type regKey struct{ store, register string }

// acker publishes acks, coalesced per register (only the latest watermark
// matters), so the ingest goroutine never waits on the broker.
//
// An ack answers something the register did: it is sent after a commit
// that held events of that register, never on a timer, so an idle or
// powered-off register gets nothing (docs/protocol.md "Acks"). A commit
// that moved the watermark, or that held only events head office had
// already (the register resent them: it asks), is acknowledged at once.
// A commit that left a gap open asks for a resend only when the gap has
// stayed open for GapGrace and is still open in the store (with several
// workers the missing events are usually in another worker's queue, and
// whichever worker applies them applies the held ones too): the request
// names the window head office waits for (gap..gap_to, up to the first
// held event), is repeated at most every GapRetry, and backs off while
// the register makes no progress. Acks are QoS 0, so the broker queues
// none for a register that is away; the last plain ack of each register
// is retained, so a register that connects learns head office's
// watermark at once.
type acker struct {
	c     broker.Publisher
	wait  time.Duration
	retry time.Duration
	grace time.Duration
	log   *slog.Logger
	svc   *Service
	// state reads a register's stream as committed now (the store's
	// RegisterState).
	state   func(register string) (hqstore.RegisterState, error)
	mu      stdsync.Mutex
	pending map[regKey]uint64 // watermark to acknowledge
	sent    map[regKey]uint64 // the last watermark the broker took (or head office's at start)
	gaps    map[regKey]*gapState
	// incs is the incarnation each register's acks name (absent: legacy,
	// acks without one, as older registers expect).
	incs map[regKey]string
	// notices are one-off acks to streams whose events are held for
	// review: each names its incarnation and says why.
	notices map[hqstore.Stream]protocol.Ack
	// policy is, per register with events its policy holds, the notice
	// every ack to it carries, so its status keeps saying so.
	policy map[regKey]*protocol.Notice
	// reused is, per register whose bound incarnation has events held as
	// reused (hqstore.RegisterState.ReusedFrom, from the latest commit or
	// read), the first of them and the notice: every ack to it stays
	// below that number, says why, and is not retained.
	reused map[regKey]reusedHold
	kick   chan struct{}
}

// reusedHold is the first event of a register held as reused and the
// notice its acks carry meanwhile.
type reusedHold struct {
	from   uint64
	notice *protocol.Notice
}

// gapState is a gap a commit of this worker left open in a register's
// stream.
type gapState struct {
	wm    uint64        // the watermark it lies above
	since time.Time     // when this worker saw it open above wm
	asked time.Time     // when the register was last asked to fill it (zero: not yet)
	wait  time.Duration // the least time between two requests
	// armed: the register sent something beyond the gap since it was
	// last asked; a request answers that, never a timer alone.
	armed bool
}

func newAcker(c broker.Publisher, wait time.Duration, log *slog.Logger, svc *Service) *acker {
	var state func(string) (hqstore.RegisterState, error)
	if svc.st != nil {
		state = svc.st.RegisterState
	}
	return &acker{c: c, wait: wait, retry: svc.opts.GapRetry, grace: svc.opts.GapGrace, log: log, svc: svc, state: state,
		pending: map[regKey]uint64{}, sent: map[regKey]uint64{}, gaps: map[regKey]*gapState{},
		incs: map[regKey]string{}, notices: map[hqstore.Stream]protocol.Ack{},
		policy: map[regKey]*protocol.Notice{}, reused: map[regKey]reusedHold{},
		kick: make(chan struct{}, 1)}
}

// setPolicy records what head office's policy holds of a register's
// events; the register's next acks say it (protocol.NoticePolicy).
func (a *acker) setPolicy(rs hqstore.RegisterState) {
	k := regKey{rs.Store, rs.Register}
	a.mu.Lock()
	defer a.mu.Unlock()
	if rs.PolicyHeld == 0 {
		delete(a.policy, k)
		return
	}
	text := fmt.Sprintf("head office holds %d of this register's events for review (its policy refused them; see loyalty-hq review); latest: %s",
		rs.PolicyHeld, rs.PolicyNote)
	if len(text) > protocol.MaxNoticeText {
		text = text[:protocol.MaxNoticeText]
	}
	a.policy[k] = &protocol.Notice{Code: protocol.NoticePolicy, Held: rs.PolicyHeld, Text: text}
}

// setReused records whether events of the register's bound incarnation
// are held as reused (rs.ReusedFrom): while they are, every ack to it
// acknowledges at most the number below the first of them and carries
// the reused notice (a code every register accepts), so the register
// keeps them (docs/protocol.md "Incarnations").
func (a *acker) setReused(rs hqstore.RegisterState) {
	k := regKey{rs.Store, rs.Register}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setReusedLocked(k, rs)
}

func (a *acker) setReusedLocked(k regKey, rs hqstore.RegisterState) {
	if rs.ReusedFrom == 0 {
		delete(a.reused, k)
		return
	}
	text := hqstore.ReusedText(rs.Register)
	if len(text) > protocol.MaxNoticeText {
		text = text[:protocol.MaxNoticeText]
	}
	a.reused[k] = reusedHold{from: rs.ReusedFrom, notice: &protocol.Notice{Code: protocol.NoticeReused, Held: max(rs.Review, 1), Text: text}}
}

// capped is what an ack to k may say: at most the number below the
// first event held as reused, with the reused notice; else wm and the
// policy's notice, if any. Callers hold a.mu.
func (a *acker) capped(k regKey, wm uint64) (uint64, *protocol.Notice) {
	if r, ok := a.reused[k]; ok {
		return min(wm, r.from-1), r.notice
	}
	return wm, a.notice(k)
}

// setIncarnation names the incarnation the register's acks are for.
func (a *acker) setIncarnation(store, register, inc string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if inc == "" {
		delete(a.incs, regKey{store, register})
		return
	}
	a.incs[regKey{store, register}] = inc
}

// hold queues a notice ack to a stream whose events are held for review.
func (a *acker) hold(h hqstore.Hold) {
	text := h.Text
	if len(text) > protocol.MaxNoticeText {
		text = text[:protocol.MaxNoticeText]
	}
	a.mu.Lock()
	a.notices[h.Stream] = protocol.Ack{Register: h.Register, Incarnation: h.Incarnation, Watermark: h.Watermark,
		Notice: &protocol.Notice{Code: h.Reason, Held: h.Held, Text: text}}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// known records the watermark a register was last acknowledged with (head
// office's own at start), without sending anything.
func (a *acker) known(store, register string, wm uint64) {
	a.mu.Lock()
	a.sent[regKey{store, register}] = wm
	a.mu.Unlock()
}

// set records a committed watermark (and whether a gap is open above it)
// to send.
func (a *acker) set(store, register string, wm uint64, gap bool) {
	k := regKey{store, register}
	a.mu.Lock()
	a.pending[k] = max(a.pending[k], wm)
	switch g := a.gaps[k]; {
	case !gap:
		delete(a.gaps, k)
	case g == nil || g.wm != wm:
		// A new gap, or the stream moved on below it: the grace starts
		// again, and so does the back-off.
		a.gaps[k] = &gapState{wm: wm, since: a.graceFrom(time.Now()), wait: a.retry, armed: true}
	default:
		g.armed = true
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// graceFrom is when the grace of a gap seen at now starts: later by the
// time messages now wait in this worker's queue, since the events the gap
// waits for were sent before the ones beyond it and may wait as long in
// another worker's queue.
func (a *acker) graceFrom(now time.Time) time.Time {
	if a.svc == nil {
		return now
	}
	return now.Add(time.Duration(a.svc.queueDelay.Load()))
}

// maxGapWait bounds the back-off between resend requests to a register
// that does not fill its gap.
const maxGapWait = time.Minute

func (a *acker) run(ctx context.Context) {
	iv := a.retry
	if a.grace > 0 {
		iv = min(iv, a.grace)
	}
	tick := time.NewTicker(iv / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Shutdown: acknowledge what the last commits made durable,
			// each wait bounded by the broker timeout.
			a.flush()
			return
		case <-a.kick:
		case <-tick.C:
		}
		a.flush()
	}
}

// notice returns the policy notice an ack to k carries, if k accepts it.
// Callers hold a.mu.
func (a *acker) notice(k regKey) *protocol.Notice {
	n := a.policy[k]
	if n != nil && !a.svc.accepts(k.store, k.register, n.Code) {
		return nil // a register before this notice code would refuse the whole ack
	}
	return n
}

type ackOut struct {
	k      regKey
	ack    protocol.Ack
	t      broker.Token
	oneOff bool // a notice to a held stream, not watermark bookkeeping
}

func (a *acker) flush() {
	now := time.Now()
	var out []ackOut
	var due []regKey
	a.mu.Lock()
	for k, wm := range a.pending {
		delete(a.pending, k)
		wm, n := a.capped(k, wm)
		if a.gaps[k] != nil && wm <= a.sent[k] {
			// The register sent beyond a gap and the watermark has not
			// moved: nothing new to say until the gap request is due.
			continue
		}
		out = append(out, ackOut{k: k, ack: protocol.Ack{Register: k.register, Incarnation: a.incs[k], Watermark: wm, Notice: n}})
	}
	for k, g := range a.gaps {
		if g.armed && now.Sub(g.since) >= a.grace && now.Sub(g.asked) >= g.wait {
			due = append(due, k)
		}
	}
	for st, ack := range a.notices {
		// Sent once per batch that held something: the register resends
		// while it waits, and each resend brings the notice again.
		out = append(out, ackOut{k: regKey{st.Store, st.Register}, ack: ack, oneOff: true})
		delete(a.notices, st)
	}
	a.mu.Unlock()
	for _, k := range due {
		if ack, ok := a.gapRequest(k, now); ok {
			out = append(out, ackOut{k: k, ack: ack})
		}
	}
	a.publish(out)
}

// gapRequest reads the register's stream as committed now and, when the
// gap this worker saw is still open there, returns the request to fill
// it: from the watermark up to the first event held beyond it (gap_to,
// to registers that accept it). Another worker that closed the gap, or
// moved the stream on, answers for itself: nothing is asked.
func (a *acker) gapRequest(k regKey, now time.Time) (protocol.Ack, bool) {
	rs, err := a.state(k.register)
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.gaps[k]
	switch {
	case g == nil: // closed by a commit of ours meanwhile
		return protocol.Ack{}, false
	case err != nil:
		a.log.Warn("read a register's stream before asking for a resend; asking later", "register", k.register, "err", err)
		g.asked = now
		return protocol.Ack{}, false
	case !rs.Gap || rs.Store != k.store || rs.Incarnation != a.incs[k] || rs.Watermark < g.wm:
		delete(a.gaps, k)
		return protocol.Ack{}, false
	case rs.Watermark != g.wm:
		// Another worker moved the stream on; it may well close the rest.
		*g = gapState{wm: rs.Watermark, since: a.graceFrom(now), wait: a.retry, armed: true}
		return protocol.Ack{}, false
	}
	a.setReusedLocked(k, rs)
	wm, n := a.capped(k, rs.Watermark)
	ack := protocol.Ack{Register: k.register, Incarnation: a.incs[k], Watermark: wm, Gap: rs.Watermark + 1, Notice: n}
	if rs.WaitTo >= ack.Gap && a.svc.acceptsField(k.store, k.register, protocol.AckGapTo) {
		ack.GapTo = rs.WaitTo
	}
	// Ask again after GapRetry; back off (doubling, up to maxGapWait)
	// while the register makes no progress, e.g. when it is offline.
	if !g.asked.IsZero() {
		g.wait = min(2*g.wait, maxGapWait)
	}
	g.asked, g.armed = now, false
	return ack, true
}

// publish sends acks and waits until the connection has taken them
// (QoS 0: queued for its writer, broker.Buffered).
func (a *acker) publish(out []ackOut) {
	for i := range out {
		topic := protocol.AckTopic(out[i].k.store, out[i].k.register)
		doc, err := protocol.EncodeAck(out[i].ack)
		if err != nil {
			a.log.Error("encode ack", "register", out[i].k.register, "err", err)
			continue
		}
		// Signed like every document head office sends, bound to the
		// register's ack topic, to a register that takes signed acks only
		// (its status lists protocol.AckSigned): it forgets events only on
		// an ack head office signed (docs/security.md). A register of the
		// previous release takes the bare ack, as before.
		b := doc
		if a.svc.acceptsField(out[i].k.store, out[i].k.register, protocol.AckSigned) {
			if b, err = a.svc.opts.Signer.Seal(topic, doc); err != nil {
				a.log.Error("sign ack", "register", out[i].k.register, "err", err)
				continue
			}
		}
		// QoS 0: a register that is away gets nothing queued. The plain
		// ack of a register with an incarnation is retained (one per
		// register), so it is there when the register connects; gap
		// requests and notices are answers to what it just sent, and a
		// legacy register (no incarnation) could be a fresh ledger that
		// must not take another's watermark. The policy's notice is a
		// standing state of the register's stream, retained with it; an
		// ack kept below events held as reused is not (it carries the
		// reused notice), so the retained one never covers them.
		retain := out[i].ack.Incarnation != "" && out[i].ack.Gap == 0 && !out[i].oneOff &&
			(out[i].ack.Notice == nil || out[i].ack.Notice.Code == protocol.NoticePolicy)
		out[i].t = a.c.Publish(topic, 0, retain, b)
	}
	for _, s := range out {
		if s.t == nil {
			continue
		}
		if s.oneOff {
			// A notice is not the register's watermark bookkeeping: a
			// lost one is sent again with the next resend it answers.
			if broker.WaitTimeout(s.t, a.wait) && s.t.Error() == nil {
				a.svc.count(func(st *Status) { st.AcksSent++; st.NoticesSent++ })
			}
			continue
		}
		ok := broker.WaitTimeout(s.t, a.wait)
		if ok && s.t.Error() == nil {
			a.svc.count(func(st *Status) {
				st.AcksSent++
				if s.ack.Gap != 0 {
					st.GapRequests++
				}
			})
			a.mu.Lock()
			a.sent[s.k] = max(a.sent[s.k], s.ack.Watermark)
			a.mu.Unlock()
			continue
		}
		err := s.t.Error()
		if !ok {
			err = ErrTimeout
		}
		a.log.Warn("ack not confirmed by broker; will retry", "register", s.k.register, "watermark", s.ack.Watermark, "err", err)
		a.mu.Lock()
		if s.ack.Gap == 0 {
			a.pending[s.k] = max(a.pending[s.k], s.ack.Watermark)
		} else if g := a.gaps[s.k]; g != nil {
			g.asked, g.armed = time.Time{}, true
		}
		a.mu.Unlock()
	}
}

// ToProtocol converts a store summary to its wire form; the profile is
// cut down to TillProfile. The bonus fields are the caller's to clear for
// a register that does not accept them (summariser.bonusFor).
func ToProtocol(ms hqstore.MemberSummary) protocol.MemberSummary {
	m := TillProfile(ms.Member)
	return protocol.MemberSummary{
		MemberID: m.ID, Balance: ms.Balance, Tier: m.Tier, Included: ms.Included, Member: &m,
		Spend12m: ms.Spend12m, Visits12m: ms.Visits12m, Retention: ms.Retention,
		FirstBonus: ms.FirstBonus, BirthdayYear: ms.BirthdayYear,
	}
}
