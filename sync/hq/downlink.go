package hq

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	stdsync "sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

type regKey struct{ store, register string }

// acker publishes acks, coalesced per register (only the latest watermark
// matters), so the ingest goroutine never waits on the broker.
type acker struct {
	c       mqtt.Client
	wait    time.Duration
	retry   time.Duration
	log     *slog.Logger
	svc     *Service
	mu      stdsync.Mutex
	pending map[regKey]uint64    // watermark to acknowledge
	gaps    map[regKey]bool      // registers with a gap still open
	lastGap map[regKey]time.Time // when we last asked each for a resend
	kick    chan struct{}
}

func newAcker(c mqtt.Client, wait time.Duration, log *slog.Logger, svc *Service) *acker {
	return &acker{c: c, wait: wait, retry: svc.opts.GapRetry, log: log, svc: svc,
		pending: map[regKey]uint64{}, gaps: map[regKey]bool{}, lastGap: map[regKey]time.Time{},
		kick: make(chan struct{}, 1)}
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
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *acker) run(ctx context.Context) {
	tick := time.NewTicker(a.retry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
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
		k   regKey
		ack protocol.Ack
		t   mqtt.Token
	}
	var out []sent
	a.mu.Lock()
	keys := make(map[regKey]bool, len(a.pending)+len(a.gaps))
	for k := range a.pending {
		keys[k] = true
	}
	for k := range a.gaps {
		if now.Sub(a.lastGap[k]) >= a.retry {
			keys[k] = true
		}
	}
	for k := range keys {
		wm, ok := a.pending[k]
		if !ok {
			continue // a gap without a fresh watermark: needs the last one
		}
		ack := protocol.Ack{Register: k.register, Watermark: wm}
		if a.gaps[k] && now.Sub(a.lastGap[k]) >= a.retry {
			ack.Gap = wm + 1
			a.lastGap[k] = now
		}
		delete(a.pending, k)
		out = append(out, sent{k: k, ack: ack})
	}
	a.mu.Unlock()
	for i := range out {
		b, err := protocol.EncodeAck(out[i].ack)
		if err != nil {
			a.log.Error("encode ack", "register", out[i].k.register, "err", err)
			continue
		}
		out[i].t = a.c.Publish(protocol.AckTopic(out[i].k.store, out[i].k.register), 1, false, b)
	}
	for _, s := range out {
		if s.t == nil {
			continue
		}
		ok := s.t.WaitTimeout(a.wait)
		if ok && s.t.Error() == nil {
			a.svc.count(func(st *Status) {
				st.AcksSent++
				if s.ack.Gap != 0 {
					st.GapRequests++
				}
			})
			// Keep the watermark known for later gap requests.
			a.mu.Lock()
			if _, newer := a.pending[s.k]; !newer && a.gaps[s.k] {
				a.pending[s.k] = s.ack.Watermark
			}
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

// summariser sends chain-wide member summaries down to every known store.
type summariser struct {
	c        mqtt.Client
	st       *hqstore.Store
	epoch    uint64
	counter  uint64
	interval time.Duration
	wait     time.Duration
	log      *slog.Logger
	svc      *Service
	mu       stdsync.Mutex
	dirty    map[string]bool
	stores   map[string]bool
	full     map[string]bool // stores that get every member at the next round
	kick     chan struct{}
}

func newSummariser(c mqtt.Client, st *hqstore.Store, epoch uint64, interval, wait time.Duration, log *slog.Logger, svc *Service) *summariser {
	return &summariser{c: c, st: st, epoch: epoch, interval: interval, wait: wait, log: log, svc: svc,
		dirty: map[string]bool{}, stores: map[string]bool{}, full: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// addStore records a store to send summaries to. A store seen for the first
// time by this process gets every member once: it may have missed
// summaries sent before head office knew it, or before a restart.
func (s *summariser) addStore(store string) {
	if store == "" || s.interval < 0 {
		return
	}
	s.mu.Lock()
	isNew := !s.stores[store]
	if isNew {
		s.stores[store] = true
		s.full[store] = true
	}
	s.mu.Unlock()
	if isNew {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *summariser) mark(ids []string) {
	if len(ids) == 0 || s.interval < 0 {
		return
	}
	s.mu.Lock()
	for _, id := range ids {
		s.dirty[id] = true
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *summariser) run(ctx context.Context) {
	if s.interval < 0 {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.round()
		select { // rate limit: coalesce what arrives meanwhile
		case <-ctx.Done():
			return
		case <-time.After(s.interval):
		}
	}
}

func (s *summariser) round() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.dirty))
	for id := range s.dirty {
		ids = append(ids, id)
	}
	s.dirty = map[string]bool{}
	stores := make([]string, 0, len(s.stores))
	for st := range s.stores {
		if !s.full[st] {
			stores = append(stores, st)
		}
	}
	var full []string
	for st := range s.full {
		full = append(full, st)
	}
	s.full = map[string]bool{}
	s.mu.Unlock()
	for _, st := range full {
		if err := s.sendAll(st); err != nil {
			s.log.Warn("full member sync not sent; will retry", "store", st, "err", err)
			s.mu.Lock()
			s.full[st] = true
			s.mu.Unlock()
		}
	}
	sort.Strings(ids)
	sort.Strings(stores)
	var sums []protocol.MemberSummary
	for _, id := range ids {
		if len(id) > 128 {
			continue // cannot be addressed in the protocol
		}
		ms, err := s.st.Summary(id)
		if err != nil {
			s.log.Warn("member summary", "member", id, "err", err)
			continue
		}
		sums = append(sums, ToProtocol(ms))
	}
	var failed bool
	for _, store := range stores {
		if err := s.publish(store, sums); err != nil {
			failed = true
			s.log.Warn("member summaries not sent; will retry", "store", store, "err", err)
		}
	}
	if failed {
		s.mark(ids)
	}
}

// sendAll sends every member's summary to one store, 500 at a time, never
// holding a read transaction while waiting on the broker.
func (s *summariser) sendAll(store string) error {
	var ids []string
	if err := s.st.EachMember(func(m ledger.Member) error {
		ids = append(ids, m.ID)
		return nil
	}); err != nil {
		return err
	}
	for len(ids) > 0 {
		n := min(500, len(ids))
		var sums []protocol.MemberSummary
		for _, id := range ids[:n] {
			if len(id) > 128 {
				continue
			}
			ms, err := s.st.Summary(id)
			if err != nil {
				return err
			}
			sums = append(sums, ToProtocol(ms))
		}
		if err := s.publish(store, sums); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

func (s *summariser) publish(store string, sums []protocol.MemberSummary) error {
	const chunk = 500
	for len(sums) > 0 {
		n := min(chunk, len(sums))
		for {
			s.counter++
			msg := protocol.MemberSummaries{Store: store, Seq: s.epoch<<32 | s.counter&0xffffffff, Members: sums[:n]}
			b, err := protocol.EncodeMembers(msg)
			if errors.Is(err, protocol.ErrTooLarge) && n > 1 {
				n /= 2
				continue
			}
			if err != nil {
				return err
			}
			t := s.c.Publish(protocol.MembersTopic(store), 1, false, b)
			if !t.WaitTimeout(s.wait) {
				return ErrTimeout
			}
			if t.Error() != nil {
				return t.Error()
			}
			s.svc.count(func(st *Status) { st.SummariesSent += uint64(n) })
			break
		}
		sums = sums[n:]
	}
	return nil
}

// ToProtocol converts a store summary to its wire form.
func ToProtocol(ms hqstore.MemberSummary) protocol.MemberSummary {
	m := ms.Member
	return protocol.MemberSummary{
		MemberID: m.ID, Balance: ms.Balance, Tier: m.Tier, Included: ms.Included, Member: &m,
	}
}
