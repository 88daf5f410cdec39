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
// already (the register resent them: it asks), is acknowledged at once; a
// commit that left a gap open asks for a resend at most every GapRetry,
// backing off while the register makes no progress. Acks are QoS 0, so the
// broker queues none for a register that is away; the last plain ack of
// each register is retained, so a register that connects learns head
// office's watermark at once.
type acker struct {
	c       broker.Publisher
	wait    time.Duration
	retry   time.Duration
	log     *slog.Logger
	svc     *Service
	mu      stdsync.Mutex
	pending map[regKey]uint64    // watermark to acknowledge
	sent    map[regKey]uint64    // the last watermark the broker took (or head office's at start)
	gaps    map[regKey]bool      // registers with a gap still open
	lastGap map[regKey]time.Time // when we last asked each for a resend
	gapWM   map[regKey]uint64    // the watermark of that request
	gapWait map[regKey]time.Duration
	// incs is the incarnation each register's acks name (absent: legacy,
	// acks without one, as older registers expect).
	incs map[regKey]string
	// notices are one-off acks to streams whose events are held for
	// review: each names its incarnation and says why.
	notices map[hqstore.Stream]protocol.Ack
	// policy is, per register with events its policy holds, the notice
	// every ack to it carries, so its status keeps saying so.
	policy map[regKey]*protocol.Notice
	kick   chan struct{}
}

func newAcker(c broker.Publisher, wait time.Duration, log *slog.Logger, svc *Service) *acker {
	return &acker{c: c, wait: wait, retry: svc.opts.GapRetry, log: log, svc: svc,
		pending: map[regKey]uint64{}, sent: map[regKey]uint64{}, gaps: map[regKey]bool{}, lastGap: map[regKey]time.Time{},
		gapWM: map[regKey]uint64{}, gapWait: map[regKey]time.Duration{},
		incs: map[regKey]string{}, notices: map[hqstore.Stream]protocol.Ack{},
		policy: map[regKey]*protocol.Notice{},
		kick:   make(chan struct{}, 1)}
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

// set records a committed watermark (and whether a gap is open) to send.
func (a *acker) set(store, register string, wm uint64, gap bool) {
	k := regKey{store, register}
	a.mu.Lock()
	a.pending[k] = max(a.pending[k], wm)
	if gap {
		a.gaps[k] = true
	} else {
		delete(a.gaps, k)
		delete(a.gapWait, k)
		delete(a.gapWM, k)
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// maxGapWait bounds the back-off between resend requests to a register
// that does not fill its gap.
const maxGapWait = time.Minute

// gapDue reports whether a resend request to k may be sent now. Callers
// hold a.mu.
func (a *acker) gapDue(k regKey, now time.Time) bool {
	wait := a.gapWait[k]
	if wait == 0 {
		wait = a.retry
	}
	return now.Sub(a.lastGap[k]) >= wait
}

func (a *acker) run(ctx context.Context) {
	tick := time.NewTicker(a.retry)
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

func (a *acker) flush() {
	now := time.Now()
	type sent struct {
		k      regKey
		ack    protocol.Ack
		t      broker.Token
		oneOff bool // a notice to a held stream, not watermark bookkeeping
	}
	var out []sent
	a.mu.Lock()
	for k, wm := range a.pending {
		ack := protocol.Ack{Register: k.register, Incarnation: a.incs[k], Watermark: wm, Notice: a.policy[k]}
		if n := ack.Notice; n != nil && !a.svc.accepts(k.store, k.register, n.Code) {
			ack.Notice = nil // a register before this notice code would refuse the whole ack
		}
		if a.gaps[k] && !a.gapDue(k, now) && wm <= a.sent[k] {
			// The register sent beyond a gap head office asked about
			// moments ago, and the watermark has not moved: nothing new
			// to say. It resends from its watermark on its own when head
			// office stays silent.
			delete(a.pending, k)
			continue
		}
		if a.gaps[k] && a.gapDue(k, now) {
			ack.Gap = wm + 1
			// Ask again after GapRetry while the register makes progress;
			// back off (doubling, up to maxGapWait) while it does not, e.g.
			// when it is offline and the broker queues our requests.
			if a.gapWM[k] == wm && a.gapWait[k] > 0 {
				a.gapWait[k] = min(2*a.gapWait[k], maxGapWait)
			} else {
				a.gapWait[k] = a.retry
			}
			a.gapWM[k] = wm
			a.lastGap[k] = now
		}
		delete(a.pending, k)
		out = append(out, sent{k: k, ack: ack})
	}
	for st, ack := range a.notices {
		// Sent once per batch that held something: the register resends
		// while it waits, and each resend brings the notice again.
		out = append(out, sent{k: regKey{st.Store, st.Register}, ack: ack, oneOff: true})
		delete(a.notices, st)
	}
	a.mu.Unlock()
	for i := range out {
		b, err := protocol.EncodeAck(out[i].ack)
		if err != nil {
			a.log.Error("encode ack", "register", out[i].k.register, "err", err)
			continue
		}
		// QoS 0: a register that is away gets nothing queued. The plain
		// ack of a register with an incarnation is retained (one per
		// register), so it is there when the register connects; gap
		// requests and notices are answers to what it just sent, and a
		// legacy register (no incarnation) could be a fresh ledger that
		// must not take another's watermark. The policy's notice is a
		// standing state of the register's stream, retained with it.
		retain := out[i].ack.Incarnation != "" && out[i].ack.Gap == 0 && !out[i].oneOff &&
			(out[i].ack.Notice == nil || out[i].ack.Notice.Code == protocol.NoticePolicy)
		out[i].t = a.c.Publish(protocol.AckTopic(out[i].k.store, out[i].k.register), 0, retain, b)
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
		a.pending[s.k] = max(a.pending[s.k], s.ack.Watermark)
		if s.ack.Gap != 0 {
			a.lastGap[s.k] = time.Time{}
		}
		a.mu.Unlock()
	}
}

// ToProtocol converts a store summary to its wire form; the profile is
// cut down to TillProfile.
func ToProtocol(ms hqstore.MemberSummary) protocol.MemberSummary {
	m := TillProfile(ms.Member)
	return protocol.MemberSummary{
		MemberID: m.ID, Balance: ms.Balance, Tier: m.Tier, Included: ms.Included, Member: &m,
		Spend12m: ms.Spend12m, Visits12m: ms.Visits12m, Retention: ms.Retention,
	}
}
