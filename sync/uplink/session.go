package uplink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// firstAckWait bounds how long a ledger head office never confirmed
// anything of waits for head office's retained ack before it sends.
const firstAckWait = 2 * time.Second

// inflight is one message awaiting PUBACK.
type inflight struct {
	tok  broker.Token
	last uint64 // highest seq in the message, 0 for status
	at   time.Time
	buf  *[]byte // the events message's storage, reused after its PUBACK
}

// session is one connection's worth of publishing. It is owned by the Run
// goroutine; each turn of its loop does three steps:
//
//   - applyAcks: take head office's latest watermark and gap request,
//     confirm the watermark to the ledger (coalesced, one Confirm at a
//     time on a goroutine of its own, so a ledger write waiting for its
//     fsync never holds up publishing), and on a gap
//     request resend the window it names (gap..gap_to) or, without one,
//     rewind the cursor to the gap;
//   - fill: publish the window asked for, then from the cursor until the
//     window (Window messages awaiting PUBACK) or the unacknowledged bound
//     (MaxUnacked events, one batch while probing) is reached;
//   - wait: for the first of an ack, new events, a PUBACK, a deadline or a
//     timer; a failed or late PUBACK or a lost connection ends the session.
type session struct {
	u    *Uplink
	conn broker.Conn

	// cursor is the highest seq handed to the broker in this session (or
	// the point to resend from after a rewind).
	cursor uint64
	// watermark is what the ledger confirmed; seenAck is the highest
	// watermark head office sent (confirms to the ledger may lag it).
	watermark, seenAck uint64
	// acksSeen counts acks already looked at, to notice a new one.
	acksSeen uint64
	// probing: after head office fell silent, until it answers, keep only
	// one batch outstanding. While head office is down this keeps the
	// register from filling the broker's queue for it with copies
	// (mosquitto drops past max_queued_messages, and whatever is queued is
	// applied later as duplicates). It carries over to the next session.
	probing bool
	q       []inflight
	// lastConfirm is when the ledger was last confirmed; confirmIn, when
	// positive, is how long until the next Confirm is allowed.
	lastConfirm time.Time
	confirmIn   time.Duration
	// drained: the last fill found nothing in the outbox after the
	// cursor. With head office's watermark at the cursor, head office
	// has everything: no later ack to coalesce with, so confirm does not
	// wait for ConfirmEvery.
	drained bool
	// confirming: a Confirm runs on its own goroutine (a ledger write
	// waits for its fsync, which must not hold up publishing); its result
	// comes on confirmed. One at a time, so watermarks reach the ledger
	// in order.
	confirming bool
	confirmed  chan confirmResult
	// ackWait is how long head office may stay silent while events are
	// outstanding, counted from lastProgress.
	ackWait      time.Duration
	lastProgress time.Time
	// lastGap and lastGapAt: the gap request honoured last, and when.
	lastGap   uint64
	lastGapAt time.Time
	// resendFrom..resendTo is a window head office asked for (gap..gap_to)
	// below the cursor, resent before anything new; the cursor stays
	// (0: none).
	resendFrom, resendTo uint64
	// back: head office asked for events it had confirmed (it was
	// restored from an older backup); until it is past the ledger's
	// watermark again, seenAck is its own (lower) watermark and the
	// confirmed events the ledger still keeps are resent from there.
	back bool
	// firstUntil: a ledger head office never confirmed anything of
	// publishes nothing until head office's retained ack arrived or this
	// time passed, so a replacement learns the stream it continues before
	// its first event goes out (zero: no wait).
	firstUntil time.Time

	statusT, pollT, pieceT *time.Ticker
	// againT asks for the member stream a second time if nothing did
	// before it fires (Options.CatchUpAgain); nil: never.
	againT *time.Timer
	notify <-chan struct{}

	// ahead are batches read and encoded ahead of the cursor, in order:
	// while one goes to the broker, the session's reader goroutine reads
	// and encodes the next few (readAheadBatches at a time, in one outbox
	// read). pre is the read under way (nil when none); reads hands reads
	// to the reader.
	ahead []batch
	pre   *readAhead
	reads chan<- *readAhead
}

// readAheadBatches is how many batches the reader reads and encodes at a
// time ahead of the cursor: one outbox read, then one events message
// each. The session starts the next read as soon as the last one is done
// while fewer than readAheadDepth batches wait (so at most readAheadDepth
// + readAheadBatches - 1 wait; both bounded by the window).
const (
	readAheadBatches = 4
	readAheadDepth   = 3 * readAheadBatches
)

// confirmResult is the outcome of Confirm(w).
type confirmResult struct {
	w   uint64
	err error
	// proof is the ack Confirm relied on; refused, when set, is why its
	// signature was refused (no Confirm then).
	proof   ackProof
	refused error
}

// readAhead is a read of up to k batches of n events from the outbox
// after the given sequence number, encoded on the session's reader
// goroutine; done gets the batches (none when the outbox held nothing
// after it).
type readAhead struct {
	after uint64
	k, n  int
	done  chan []batch
}

// batch is one events message ready to publish: the n events after the
// sequence number after, up to last (payload nil when the outbox held
// none), in buf.
type batch struct {
	payload     []byte
	after, last uint64
	n           int
	err         error
	buf         *[]byte
}

// session publishes on a live connection until it fails or ctx ends.
func (u *Uplink) session(ctx context.Context, conn broker.Conn) error {
	s, err := u.startSession(ctx, conn)
	if err != nil {
		return err
	}
	defer s.stop()
	for {
		s.applyAcks()
		if err := s.fill(); err != nil {
			return err
		}
		err := s.wait(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// startSession announces the register online, subscribes to what comes
// down, and starts from the watermark: everything after it is resent,
// since whatever was in flight on the previous connection may or may not
// have reached head office.
func (u *Uplink) startSession(ctx context.Context, conn broker.Conn) (*session, error) {
	to := u.o.OpTimeout
	if err := wait(ctx, conn.Publish(protocol.StatusTopic(u.o.Store, u.o.Register), 1, true, u.statusPayload(protocol.StateOnline)), to); err != nil {
		return nil, fmt.Errorf("publish status: %w", err)
	}
	subs := map[string]byte{
		protocol.AckTopic(u.o.Store, u.o.Register): 1,
		protocol.StoreConfigTopic(u.o.Store):       1,
		protocol.ChainConfigTopic():                1,
		protocol.MembersTopic(u.o.Store):           1,
		// catch-up answers and lookup answers for this register alone
		protocol.RegisterMembersTopic(u.o.Store, u.o.Register): 1,
		protocol.FoundTopic(u.o.Store, u.o.Register):           1,
	}
	if err := wait(ctx, conn.Subscribe(subs), to); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	// The erase topic on its own and without waiting: an older ACL may
	// refuse it, and the session's first steps keep their timing.
	go u.subscribeErase(ctx, conn)
	// The stream from our position: a new register gets its store's
	// members, one that was away what it missed.
	if err := u.askCatchUp(conn); err != nil {
		return nil, err
	}
	u.mu.Lock()
	u.st.online = true
	u.st.since = time.Now()
	u.conn = conn
	u.st.lastErr = ""
	u.st.sessions++
	u.st.sentInSession = false
	watermark := u.st.watermark
	acks := u.st.acks
	u.mu.Unlock()
	u.log.Info("link up", "broker", strings.Join(u.o.Brokers, ","), "watermark", watermark)
	var firstUntil time.Time
	if acks == 0 && u.id.rn != nil && (watermark == 0 || u.waiting()) {
		firstUntil = time.Now().Add(firstAckWait)
	}
	reads := make(chan *readAhead)
	go u.reader(reads)
	var againT *time.Timer
	if u.o.CatchUpAgain > 0 {
		// 0.8-1.2x: after a broker restart the quiet registers of a
		// chain do not all ask at the same moment.
		againT = time.NewTimer(time.Duration(float64(u.o.CatchUpAgain) * (0.8 + 0.4*rand.Float64())))
	}
	return &session{againT: againT, u: u, conn: conn, firstUntil: firstUntil, confirmed: make(chan confirmResult, 1), reads: reads,
		cursor: watermark, watermark: watermark, seenAck: watermark, acksSeen: acks,
		probing: u.probing, ackWait: u.o.AckTimeout, lastProgress: time.Now(),
		statusT: time.NewTicker(u.o.StatusInterval),
		pollT:   time.NewTicker(time.Second),                          // in case a notification is missed
		pieceT:  time.NewTicker(max(u.o.PieceTimeout/4, time.Second)), // asks again within 1.25x PieceTimeout
		notify:  u.ob.OutboxNotify(),
	}, nil
}

func (s *session) stop() {
	if s.confirming {
		s.done(<-s.confirmed) // nothing writes the ledger after the session
	}
	if s.pre != nil {
		s.ahead = append(s.ahead, <-s.pre.done...) // nothing reads the ledger after the session
		s.pre = nil
	}
	s.dropAhead()
	close(s.reads)
	s.statusT.Stop()
	s.pollT.Stop()
	s.pieceT.Stop()
	if s.againT != nil {
		s.againT.Stop()
	}
	s.u.probing = s.probing
}

// acked is what head office has (confirms to the ledger may lag it; a
// head office gone back in time has less than the ledger confirmed).
func (s *session) acked() uint64 {
	if s.back {
		return s.seenAck
	}
	return max(s.watermark, s.seenAck)
}

// applyAcks takes the acks that arrived since the last turn: it confirms
// head office's watermark to the ledger (never anything beyond it) and
// honours a gap request by rewinding the cursor.
func (s *session) applyAcks() {
	u := s.u
	u.mu.Lock()
	ackW, lastW, gap, gapTo, acks := u.st.ackW, u.st.lastW, u.st.gapReq, u.st.gapTo, u.st.acks
	proof, lastProof := u.st.ackProof, u.st.lastProof
	u.st.gapReq, u.st.gapTo = 0, 0
	u.mu.Unlock()
	if acks != s.acksSeen {
		s.acksSeen, s.probing = acks, false
	}
	if s.back {
		// Head office catches up from below the ledger's watermark: its
		// own watermark is the progress.
		ackW = max(lastW, s.seenAck)
		proof = lastProof
		if ackW >= s.watermark {
			s.back = false
			s.u.log.Info("head office has caught up with what it had confirmed", "watermark", ackW)
		}
	}
	if ackW > s.seenAck {
		s.seenAck = ackW
		s.lastProgress = time.Now()
		s.ackWait = u.o.AckTimeout
	}
	s.confirm(ackW, proof)
	if s.cursor <= s.acked() {
		s.cursor = s.acked()
		// Nothing outstanding: head office's silence only counts from the
		// moment something is waiting for it.
		s.lastProgress = time.Now()
	}
	s.rewind(gap, gapTo)
}

// confirm hands head office's watermark ackW to the ledger, which then
// forgets the events up to it. Confirm is a ledger write (an fsync when
// the till is idle): acks are coalesced to at most one Confirm per
// ConfirmEvery so sync never competes with sales for the disk, and it
// runs on its own goroutine while the session goes on publishing (done
// takes its result). An ack that covers everything the outbox held
// (drained) and at least a batch (BatchEvents) since the last Confirm
// has no later ack to be coalesced with: it is confirmed at once, so a
// drained backlog is forgotten without waiting out ConfirmEvery (at most
// one Confirm per ack, one at a time). Acks of fewer events stay
// coalesced even when each drains the outbox: sales trickling in faster
// than ConfirmEvery would otherwise cost a Confirm (a ledger write) each.
//
// The ack is verified first (proof, head office's signature on it: the
// one verify a Confirm costs, on the Confirm's goroutine, and none when
// it was verified before); an ack that is not head office's confirms
// nothing and the session resends from the ledger's watermark.
func (s *session) confirm(ackW uint64, proof ackProof) {
	s.confirmIn = 0
	if ackW <= s.watermark || s.confirming {
		return
	}
	u := s.u
	if !proof.covers(ackW) {
		// No ack vouches for it (a watermark left from before a refusal).
		return
	}
	atOnce := s.drained && ackW >= s.cursor && ackW-s.watermark >= uint64(u.o.BatchEvents)
	if d := u.o.ConfirmEvery - time.Since(s.lastConfirm); d > 0 && !atOnce {
		s.confirmIn = d
		return
	}
	s.confirming = true
	go func() {
		if !proof.ok {
			if err := u.verifyAck(proof.topic, proof.msg); err != nil {
				s.confirmed <- confirmResult{w: ackW, proof: proof, refused: err}
				return
			}
		}
		s.confirmed <- confirmResult{w: ackW, proof: proof, err: u.ob.Confirm(ackW)}
	}()
}

// done takes the result of a Confirm.
func (s *session) done(r confirmResult) {
	s.confirming = false
	u := s.u
	if r.refused != nil {
		// Not head office's ack (forged, or from a head office older
		// than this register): nothing is forgotten, and what it may
		// have made the session skip is sent again from the watermark.
		u.refuseAck(r.proof.topic, r.refused)
		u.mu.Lock()
		if r.proof.same(u.st.ackProof) {
			u.st.ackW, u.st.ackProof = s.watermark, ackProof{}
		}
		if r.proof.same(u.st.lastProof) {
			u.st.lastW, u.st.lastProof = min(u.st.lastW, s.watermark), ackProof{}
		}
		u.mu.Unlock()
		// Back to the last ack that held; no rewind: an ack confirms at
		// most what this process published, so an unchecked one never
		// moved the cursor past an event it had not sent, and what head
		// office did not get is resent by the ack timeout as usual
		// (review11: a rewind per refused ack sent every unconfirmed
		// event again each ConfirmEvery, a storm one forged ack could
		// start).
		s.seenAck = s.watermark
		return
	}
	u.mu.Lock()
	if r.proof.same(u.st.ackProof) {
		u.st.ackProof.ok = true // another Confirm on it needs no verify
	}
	if r.err == nil {
		u.st.ackErr = ""
	}
	u.mu.Unlock()
	if r.err != nil {
		// Beyond what the ledger holds (ErrPruneNotAllowed) means head
		// office is confused; never prune what we did not send.
		u.log.Error("confirm failed", "watermark", r.w, "err", r.err)
		u.setErr(fmt.Sprintf("confirm %d: %v", r.w, r.err))
		if errors.Is(r.err, ledger.ErrPruneNotAllowed) {
			u.id.behind(r.w)
		}
		u.mu.Lock()
		u.st.ackW = s.watermark
		u.mu.Unlock()
		s.seenAck = s.watermark
		return
	}
	s.watermark = r.w
	s.lastConfirm = time.Now()
	u.id.caughtUp()
	u.mu.Lock()
	u.st.watermark = r.w
	u.mu.Unlock()
}

// rewind honours head office's request to resend from gap: it missed
// gap.. (lost by the broker, sent before it was listening, or, with
// several workers, still queued at another one). A request that names its
// end (gap_to, below the cursor: head office holds what follows) resends
// that window alone and the stream goes on from the cursor; one without
// rewinds the cursor to the gap. Head office repeats a request while the
// gap stays open, so the same gap is honoured again only after
// AckTimeout; a new gap (progress was made) at once.
func (s *session) rewind(gap, to uint64) {
	if gap != 0 && gap <= s.watermark {
		s.resendConfirmed(gap)
		return
	}
	if gap == 0 || gap-1 >= s.cursor || gap <= s.acked() {
		return
	}
	if gap == s.lastGap && time.Since(s.lastGapAt) <= s.u.o.AckTimeout {
		return
	}
	s.lastGap, s.lastGapAt = gap, time.Now()
	s.u.count(func(st *state) { st.resends++ })
	if to != 0 && to < s.cursor {
		s.u.log.Info("resend on gap request", "from", gap, "to", to, "cursor", s.cursor)
		if s.resendTo == 0 {
			s.resendFrom, s.resendTo = gap, to
		} else {
			s.resendFrom, s.resendTo = min(s.resendFrom, gap), max(s.resendTo, to)
		}
		return
	}
	s.u.log.Info("resend on gap request", "from", gap, "cursor", s.cursor)
	s.rewindTo(gap - 1)
}

// rewindTo moves the cursor back to seq: everything after it is sent
// again, a window asked for included.
func (s *session) rewindTo(seq uint64) {
	s.cursor = seq
	s.resendFrom, s.resendTo = 0, 0
}

// fill publishes from the cursor while the window has room and the events
// beyond head office's watermark stay within MaxUnacked (one batch while
// probing).
func (s *session) fill() error {
	u := s.u
	s.drained = false
	limit := u.o.MaxUnacked
	if s.probing {
		limit = u.o.BatchEvents
	}
	if !s.firstUntil.IsZero() {
		if s.acksSeen == 0 && time.Now().Before(s.firstUntil) {
			return nil
		}
		if s.acksSeen == 0 && u.waiting() {
			u.noAckToLearn()
		}
		s.firstUntil = time.Time{}
	}
	acked := s.acked()
	for len(s.q) < u.o.Window && s.resendTo != 0 {
		if err := s.resendWindow(acked); err != nil {
			return err
		}
	}
	for len(s.q) < u.o.Window && s.cursor-acked < uint64(limit) {
		n := min(u.o.BatchEvents, limit-int(s.cursor-acked))
		b := s.next(n)
		if b.err != nil {
			return b.err
		}
		if b.payload == nil {
			s.drained = true
			return nil
		}
		// While this one goes to the broker (paho's Publish waits for
		// its writer), read and encode the next ones.
		s.readAhead(b)
		// Published before the broker has it: head office's answer may
		// come before Publish returns, and an ack confirms at most what
		// was published (down.go).
		u.mu.Lock()
		u.st.published = max(u.st.published, b.last)
		u.st.sentInSession = true
		u.mu.Unlock()
		tok := s.conn.Publish(u.eventsTopic, 1, false, b.payload)
		s.q = append(s.q, inflight{tok: tok, last: b.last, at: time.Now(), buf: b.buf})
		s.cursor = b.last
	}
	return nil
}

// next returns the batch of at most n events after the cursor: the one
// read ahead when it starts there and holds no more than n events, else
// one read now (an empty read ahead may be stale: events may have come
// since). The events after a sequence number never change, so a batch
// read ahead is the batch read now. Batches read ahead that do not start
// at the cursor (it was rewound, or moved past them) are dropped.
func (s *session) next(n int) batch {
	s.collect()
	for {
		if len(s.ahead) > 0 {
			b := s.ahead[0]
			if b.after == s.cursor && b.err == nil && b.payload != nil && b.n <= n {
				s.ahead[0] = batch{}
				s.ahead = s.ahead[1:]
				return b
			}
			s.dropAhead()
		}
		r := s.pre
		if r == nil {
			break
		}
		s.pre = nil
		s.ahead = append(s.ahead, <-r.done...)
		if len(s.ahead) == 0 {
			break
		}
	}
	return s.u.readBatch(s.cursor, n)
}

// readAhead starts reading the batches after the last one known (b, or the
// last read ahead) on the reader goroutine, unless a read is under way,
// enough batches wait, or the last one known was not full (the outbox
// ended there, or its events were large: then next reads when it is
// time).
func (s *session) readAhead(b batch) {
	u := s.u
	k := min(readAheadBatches, u.o.Window)
	s.collect()
	if s.pre != nil || len(s.ahead) >= min(readAheadDepth, u.o.Window) {
		return
	}
	if len(s.ahead) > 0 {
		b = s.ahead[len(s.ahead)-1]
	}
	if b.err != nil || b.payload == nil || b.n < u.o.BatchEvents {
		return
	}
	s.pre = &readAhead{after: b.last, k: k, n: u.o.BatchEvents, done: make(chan []batch, 1)}
	s.reads <- s.pre
}

// collect takes the batches of the read under way when it is done,
// without waiting for it, so the next read can start at once. (Taken
// only when the session had used up the batches before it, a read
// started with the few left of the last one, and the session, consuming
// them faster than a read of the ledger took, waited for most reads:
// 8-22 waits of 15-34 ms in all in a 250 ms drain of 100,000 events.)
func (s *session) collect() {
	if s.pre == nil {
		return
	}
	select {
	case bs := <-s.pre.done:
		s.pre = nil
		s.ahead = append(s.ahead, bs...)
	default:
	}
}

// dropAhead forgets the batches read ahead.
func (s *session) dropAhead() {
	for i := range s.ahead {
		s.u.release(s.ahead[i].buf)
		s.ahead[i] = batch{}
	}
	s.ahead = s.ahead[:0]
}

// reader reads and encodes batches ahead of a session, one read at a time,
// until the session closes reads.
func (u *Uplink) reader(reads <-chan *readAhead) {
	for r := range reads {
		r.done <- u.readBatches(r.after, r.k, r.n)
	}
}

// readBatch reads up to n events after the given sequence number from the
// outbox and encodes them as one events message (payload nil when the
// outbox held none), in storage kept from earlier batches.
func (u *Uplink) readBatch(after uint64, n int) batch {
	bs := u.readBatches(after, 1, n)
	if len(bs) == 0 {
		return batch{}
	}
	return bs[0]
}

// readBatches reads up to k*n events after the given sequence number in
// one outbox read and encodes them as events messages of at most n events
// each, in order, in storage kept from earlier batches. It returns no
// batch when the outbox held none; a failed read or encoding is the last
// batch returned, with its error.
func (u *Uplink) readBatches(after uint64, k, n int) []batch {
	ob, _ := u.batches.Get().(*ledger.OutboxBatch)
	if ob == nil {
		ob = new(ledger.OutboxBatch)
	}
	defer u.batches.Put(ob)
	st, err := u.outbox(ob, after, k*n)
	if err != nil {
		return []batch{{after: after, err: fmt.Errorf("read outbox: %w", err)}}
	}
	var out []batch
	var part ledger.OutboxBatch
	for i := 0; i < len(ob.Recs); {
		ob.Part(&part, i, min(i+n, len(ob.Recs)))
		buf, _ := u.payloads.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		payload, last, err := u.encode((*buf)[:0], &part, st) // fewer than n when they are large
		if err != nil {
			u.release(buf)
			return append(out, batch{after: after, err: err})
		}
		*buf = payload
		out = append(out, batch{payload: payload, after: after, last: last, n: len(part.Recs), buf: buf})
		after = last
		i += len(part.Recs)
	}
	return out
}

// release keeps an events message's storage for a later batch (nobody
// may read the message any more: its PUBACK is in, or it was never
// published).
func (u *Uplink) release(buf *[]byte) {
	if buf != nil && cap(*buf) <= 2*protocol.MaxEventsMessage {
		u.payloads.Put(buf)
	}
}

// resendWindow publishes the next message of the window head office asked
// for (from above acked), or ends the window.
func (s *session) resendWindow(acked uint64) error {
	u := s.u
	from := max(s.resendFrom, acked+1)
	if from > s.resendTo {
		s.resendFrom, s.resendTo = 0, 0
		return nil
	}
	b := u.readBatch(from-1, int(min(s.resendTo-from+1, uint64(u.o.BatchEvents))))
	if b.err != nil {
		return b.err
	}
	if b.payload == nil {
		s.resendFrom, s.resendTo = 0, 0
		return nil
	}
	tok := s.conn.Publish(u.eventsTopic, 1, false, b.payload)
	s.q = append(s.q, inflight{tok: tok, last: b.last, at: time.Now(), buf: b.buf})
	s.resendFrom = b.last + 1
	if b.last >= s.resendTo {
		s.resendFrom, s.resendTo = 0, 0
	}
	return nil
}

// wait blocks until something may have changed: an ack, new events, the
// oldest PUBACK, a Confirm falling due, head office's silence running out
// (then it rewinds to the watermark and probes), or the status timer. It
// returns an error when the session must end.
func (s *session) wait(ctx context.Context) error {
	u := s.u
	var front <-chan struct{}
	var pubDeadline <-chan time.Time
	if len(s.q) > 0 {
		front = s.q[0].tok.Done()
		t := time.NewTimer(time.Until(s.q[0].at.Add(u.o.OpTimeout)))
		defer t.Stop()
		pubDeadline = t.C
	}
	var confirmDue <-chan time.Time
	if s.confirmIn > 0 {
		t := time.NewTimer(s.confirmIn)
		defer t.Stop()
		confirmDue = t.C
	}
	var firstDue <-chan time.Time
	if !s.firstUntil.IsZero() {
		t := time.NewTimer(time.Until(s.firstUntil))
		defer t.Stop()
		firstDue = t.C
	}
	acked := s.acked()
	var ackDeadline <-chan time.Time
	if s.cursor > acked {
		t := time.NewTimer(time.Until(s.lastProgress.Add(s.ackWait)))
		defer t.Stop()
		ackDeadline = t.C
	}
	var againDue <-chan time.Time
	if s.againT != nil {
		againDue = s.againT.C
	}
	select {
	case <-ctx.Done():
	case <-s.conn.Lost():
		return ErrConnectionLost
	case <-againDue:
		s.againT = nil
		if isClosed(s.conn.Lost()) {
			return ErrConnectionLost // (both were ready; select picked this one)
		}
		// A session that sent events leaves the second request to head
		// office's first live ack, which shows it listening (down.go):
		// asked now, it could reach nobody again and leave that ack
		// nothing to do.
		u.mu.Lock()
		again := u.st.askedOnAck != u.st.sessions && !u.st.sentInSession
		if again {
			u.st.askedOnAck = u.st.sessions
		}
		u.mu.Unlock()
		if again {
			u.askAgain(s.conn)
		}
	case <-u.ackSig:
	case <-s.notify:
	case <-s.pollT.C:
	case <-confirmDue:
	case r := <-s.confirmed:
		s.done(r)
	case <-firstDue:
	case <-front:
		return s.popDone()
	case <-pubDeadline:
		return fmt.Errorf("puback: %w", ErrTimeout)
	case <-ackDeadline:
		u.log.Warn("no ack from head office, probing", "from", acked+1, "waited", s.ackWait)
		s.rewindTo(acked)
		s.probing = true
		s.lastProgress = time.Now()
		s.ackWait = min(s.ackWait*2, 16*u.o.AckTimeout)
		u.count(func(st *state) { st.resends++ })
	case <-u.fetchSig:
		return s.fetchPieces(ctx, true)
	case <-s.pieceT.C:
		return s.fetchPieces(ctx, false)
	case <-s.statusT.C:
		tok := s.conn.Publish(protocol.StatusTopic(u.o.Store, u.o.Register), 1, true, u.statusPayload(protocol.StateOnline))
		s.q = append(s.q, inflight{tok: tok, at: time.Now()})
	}
	return nil
}

// popDone drops the completed messages at the front of the window; a
// failed one ends the session (its events are resent from the watermark).
func (s *session) popDone() error {
	for len(s.q) > 0 && isClosed(s.q[0].tok.Done()) {
		if e := s.q[0].tok.Error(); e != nil {
			return fmt.Errorf("publish: %w", e)
		}
		s.u.release(s.q[0].buf)
		s.q[0] = inflight{}
		s.q = s.q[1:]
	}
	return nil
}

// resendConfirmed honours a request for events head office confirmed before: it
// went back in time (restored from an older backup). The ledger keeps
// confirmed events for a window (ledger.Options.KeepConfirmedFor): those
// it still has are resent from gap. Those it no longer has are lost to
// head office; status names them (NoticeLost) and the register resends
// what it has beyond them, which head office holds until its operator
// acknowledges the gap (loyalty-hq register gap).
func (s *session) resendConfirmed(gap uint64) {
	u := s.u
	if gap == s.lastGap && time.Since(s.lastGapAt) <= u.o.AckTimeout {
		return
	}
	recs, err := u.ob.Outbox(gap-1, 1)
	if err != nil {
		u.log.Error("read kept events for head office's resend request", "from", gap, "err", err)
		return
	}
	from := gap
	if len(recs) == 0 {
		from = s.watermark + 1 // nothing kept, nothing pending
	} else if recs[0].Seq != gap {
		from = recs[0].Seq
	}
	if from > gap {
		u.id.lost(gap, from-1)
		u.log.Error("head office lost events it had confirmed, and this register no longer keeps them",
			"from", gap, "to", from-1, "kept_from", from)
	} else {
		u.log.Warn("head office asks again for events it had confirmed (restored from a backup?); resending the kept ones",
			"from", gap, "confirmed", s.watermark)
	}
	s.back = true
	s.seenAck = gap - 1
	s.rewindTo(from - 1)
	s.lastProgress = time.Now()
	s.lastGap, s.lastGapAt = gap, time.Now()
	u.count(func(st *state) { st.resends++ })
}

// outbox reads the next records to send, and what they are sent under,
// into b.
func (u *Uplink) outbox(b *ledger.OutboxBatch, after uint64, n int) (ledger.Stamp, error) {
	if u.id.rn != nil {
		if r, ok := u.id.rn.(interface {
			OutboxStampedInto(b *ledger.OutboxBatch, after uint64, max int) (ledger.Stamp, error)
		}); ok {
			return r.OutboxStampedInto(b, after, n)
		}
		recs, st, err := u.id.rn.OutboxStamped(after, n)
		*b = ledger.OutboxBatch{Recs: recs, IDPrefix: u.o.Register + "-"} // no Compact marks of an earlier read
		return st, err
	}
	if r, ok := u.ob.(interface {
		OutboxInto(b *ledger.OutboxBatch, after uint64, max int) error
	}); ok {
		return ledger.Stamp{}, r.OutboxInto(b, after, n)
	}
	recs, err := u.ob.Outbox(after, n)
	*b = ledger.OutboxBatch{Recs: recs, IDPrefix: u.o.Register + "-"} // no Compact marks of an earlier read
	return ledger.Stamp{}, err
}
