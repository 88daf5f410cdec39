package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// message is one downstream config or members message waiting to be
// applied.
type message struct {
	topic   string
	payload []byte
}

// route is the connection's handler for every message on our
// subscriptions. It runs on the client's goroutine, so it never blocks for
// long and never panics. retained: the broker handed the message over at
// subscribe (broker.Handler).
func (u *Uplink) route(topic string, payload []byte, retained bool) {
	m := message{topic, payload}
	defer func() {
		if r := recover(); r != nil {
			u.reject(fmt.Sprintf("handler panic on %s: %v", m.topic, r))
		}
	}()
	t, err := protocol.ParseTopic(m.topic)
	if err != nil {
		u.reject(err.Error())
		return
	}
	switch t.Kind {
	case protocol.KindAck:
		if t.Store != u.o.Store || t.Register != u.o.Register {
			u.reject("ack for " + m.topic)
			return
		}
		sa, ok := u.openAck(m.topic, m.payload)
		if !ok {
			return
		}
		a := sa.Ack
		learnt := u.renumber(sa)
		continued := false
		if !u.id.forUs(a) {
			if continued = u.continueStream(sa); !continued && !learnt {
				// Another ledger uses this register id; its watermark
				// says nothing about our events.
				return
			}
		}
		u.mu.Lock()
		// An ack confirms at most what this process handed to the broker
		// (or what the ledger had confirmed already): a forged or
		// replayed ack, even one head office once signed, cannot make
		// the register forget what it never sent. One beyond is head
		// office's answer to events an earlier process sent: they are
		// resent, and the answer to that confirms them. A fresh ledger
		// continuing the stream (continued) holds nothing below the ack.
		top := max(u.st.published, u.st.watermark)
		if !retained || continued {
			w := a.Watermark
			if !continued {
				w = min(w, top)
			}
			if w > u.st.ackW || u.st.ackProof.msg == nil {
				u.st.ackW = w
				u.st.ackProof = ackProof{w: a.Watermark, topic: sa.topic, msg: sa.msg, ok: sa.good}
			}
			u.st.lastW = w
			u.st.lastProof = ackProof{w: a.Watermark, topic: sa.topic, msg: sa.msg, ok: sa.good}
		}
		// else: head office's retained ack, handed over at subscribe,
		// confirms nothing. It is head office's last word on this
		// incarnation, which may be about events another copy of this
		// ledger sent under the same numbers (a ledger restored from a
		// backup that recorded sales offline past head office's
		// watermark): forgetting ours on its word would lose them unsent.
		// The session sends from the ledger's own watermark and head
		// office's live answer confirms what it holds of ours (at most
		// the events since the last Confirm are sent twice, and counted
		// once). The watermark still served above: a restored ledger
		// behind it, and a new incarnation learning its numbers; a
		// learnt one confirms nothing either (review6: a restored ledger
		// that renumbered on it forgot the sales it had recorded offline,
		// mapped below the ack, unsent). A fresh ledger continuing the
		// stream (continued) holds no event below the ack.
		if a.Gap != 0 {
			// Requests not yet applied merge into one: from the lowest
			// gap to the highest end (0: no end, resend from the gap on).
			switch {
			case u.st.gapReq == 0:
				u.st.gapReq, u.st.gapTo = a.Gap, a.GapTo
			case u.st.gapTo == 0 || a.GapTo == 0:
				u.st.gapReq, u.st.gapTo = min(u.st.gapReq, a.Gap), 0
			default:
				u.st.gapReq, u.st.gapTo = min(u.st.gapReq, a.Gap), max(u.st.gapTo, a.GapTo)
			}
		}
		u.st.lastAck = time.Now()
		u.st.acks++
		// The session's first live ack after it sent events shows head
		// office listening. Not the retained ack the broker hands over at
		// subscribe (retained): paho runs each handler on a goroutine of
		// its own, so that one can be handled after the session's first
		// send. The catch-up request sent at connect may have reached
		// nobody: after a broker restart, head office's workers (clean
		// sessions) may subscribe after this register, and summaries the
		// broker had confirmed but not delivered died with it. Ask once
		// more.
		conn := u.conn
		again := !retained && conn != nil && u.st.online && u.st.sentInSession && u.st.askedOnAck != u.st.sessions
		if again {
			u.st.askedOnAck = u.st.sessions
		}
		u.mu.Unlock()
		select {
		case u.ackSig <- struct{}{}:
		default:
		}
		if again {
			u.askAgain(conn)
		}
	case protocol.KindFound:
		if t.Store != u.o.Store || t.Register != u.o.Register {
			u.reject("lookup answer for " + m.topic)
			return
		}
		select {
		case u.foundC <- m:
		default:
			u.reject("lookup answers arrive faster than they are applied")
		}
	case protocol.KindConfig, protocol.KindMembers, protocol.KindCatalogue, protocol.KindErase:
		if t.Register != "" && t.Register != u.o.Register {
			u.reject("members for " + m.topic)
			return
		}
		// Applied one at a time off paho's goroutine: callbacks write the
		// ledger and may take a while.
		select {
		case u.down <- m:
		case <-u.stop:
		}
	default:
		u.reject("unexpected topic " + m.topic)
	}
}

// countVersion counts a document refused for its protocol version.
func (u *Uplink) countVersion(err error) {
	if errors.Is(err, protocol.ErrVersion) {
		u.count(func(s *state) { s.refused.Version++ })
	}
}

func (u *Uplink) reject(why string) {
	u.log.Warn("downstream message rejected", "reason", why)
	u.count(func(s *state) { s.rejected++ })
}

func (u *Uplink) downstream(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-u.down:
			u.apply(ctx, m)
		}
	}
}

// apply validates and hands on one config or members message. A rejected
// document changes nothing: the one in force stays. Only the downstream
// goroutine calls it, so documents are applied one at a time: each reads
// the version in force, calls back and records the new version before the
// next one starts.
func (u *Uplink) apply(ctx context.Context, m message) {
	defer func() {
		if r := recover(); r != nil {
			u.reject(fmt.Sprintf("callback panic on %s: %v", m.topic, r))
		}
	}()
	t, err := protocol.ParseTopic(m.topic)
	if err != nil {
		u.reject(err.Error())
		return
	}
	if t.Store != "" && t.Store != u.o.Store {
		u.reject("message for store " + t.Store)
		return
	}
	if (t.Kind == protocol.KindConfig || t.Kind == protocol.KindCatalogue || t.Kind == protocol.KindErase) && len(m.payload) == 0 {
		return // a cleared retained message: nothing to apply
	}
	doc, key, ok := u.verify(t, m.topic, m.payload)
	if !ok {
		return
	}
	switch t.Kind {
	case protocol.KindConfig:
		u.applyConfig(ctx, t, doc, key)
	case protocol.KindMembers:
		u.applyMembers(ctx, doc, key)
	case protocol.KindCatalogue:
		u.applyPiece(ctx, t, doc)
	case protocol.KindErase:
		u.applyErase(ctx, doc)
	}
}

// applyConfig applies a config document signed by key. The version rules
// hold unless the document in force in its scope was signed by a key no
// longer pinned (a leaked key the operator removed: docs/operations.md
// "Recovering from a leaked signing key"); then this document, signed by
// a pinned key, goes in force whatever its version and sets the floor.
func (u *Uplink) applyConfig(ctx context.Context, t protocol.Topic, b []byte, key string) {
	if len(b) == 0 {
		return // a cleared retained message: nothing to apply
	}
	fail := func(err error) {
		u.log.Warn("config rejected", "err", err)
		u.countVersion(err)
		u.count(func(s *state) { s.rejected++; s.cfgErr = err.Error() })
	}
	c, err := protocol.DecodeConfig(b, t)
	if err != nil {
		fail(err)
		return
	}
	c.SignedBy = key
	store := c.Scope == protocol.ScopeStore
	u.mu.Lock()
	cur := &u.st.cfg.Chain
	if store {
		cur = &u.st.cfg.Store
	}
	current := *cur
	lifted := u.st.keys.Lifts(u.st.keys.ScopeKey(store), key)
	u.mu.Unlock()
	if lifted {
		u.log.Warn("config in force was signed by a key no longer pinned; head office's document replaces it whatever its version",
			"scope", c.Scope, "version", c.ConfigVersion, "in_force", current, "key", key)
	} else if c.ConfigVersion == current {
		return // the retained copy again, or a duplicate delivery
	}
	if !lifted && !protocol.Newer(current, c.ConfigVersion) {
		// Older than the version in force: a replay, or head office's
		// previous document arriving after its next one (paho runs each
		// handler on a goroutine of its own, so two documents sent close
		// together can reach the queue in either order). Refused and
		// counted, but ConfigError stays as it is: the config in force is
		// newer, so there is nothing wrong to show on the register.
		err := fmt.Errorf("%w: %s config version %d, %d in force", ErrStale, c.Scope, c.ConfigVersion, current)
		u.log.Warn("config rejected", "err", err)
		u.count(func(s *state) { s.rejected++; s.refused.Replayed++ })
		return
	}
	if c.CataloguePieces != nil {
		if u.o.OnPiecedConfig == nil {
			fail(fmt.Errorf("store config version %d: a catalogue in pieces is not taken here", c.ConfigVersion))
			return
		}
		p, err := u.o.OnPiecedConfig(ctx, c)
		if err != nil {
			fail(fmt.Errorf("%s config version %d: %w", c.Scope, c.ConfigVersion, err))
			return
		}
		u.log.Info("config waiting for its catalogue pieces", "version", c.ConfigVersion, "have", p.Have, "want", p.Want)
		u.count(func(s *state) { s.cfgErr = ""; s.pieces.key = key })
		u.wantPieces(p)
		return
	}
	if u.o.OnConfig != nil {
		if err := u.o.OnConfig(ctx, c); err != nil {
			fail(fmt.Errorf("%s config version %d: %w", c.Scope, c.ConfigVersion, err))
			return
		}
	}
	u.mu.Lock()
	*cur = c.ConfigVersion
	u.st.keys.SetScopeKey(store, key)
	u.st.cfgErr = ""
	superseded := u.st.pieces.cur
	if superseded != nil && store && (superseded.Version <= c.ConfigVersion || lifted) {
		// A store document still waiting for its catalogue pieces is
		// superseded (the ledger dropped its staging; whatever its
		// version when a removed key's document was in force): stop
		// asking for them.
		u.st.pieces.cur = nil
	} else {
		superseded = nil
	}
	u.mu.Unlock()
	if superseded != nil {
		u.log.Info("catalogue pieces no longer wanted", "version", superseded.Version, "superseded_by", c.ConfigVersion)
	}
	u.log.Info("config applied", "scope", c.Scope, "version", c.ConfigVersion)
}
