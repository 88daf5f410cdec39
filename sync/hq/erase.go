package hq

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
)

// eraseInterval is how often head office checks its erasures version and,
// when it moved, reads its erasures and publishes what changed (an erasure made by `loyalty-hq members erase`
// while serve runs on PostgreSQL; a bbolt store is erased with serve
// stopped and published at start).
const eraseInterval = 2 * time.Second

// eraseLoop publishes each store's erase document (docs/protocol.md
// "Member erasure"): signed, retained, QoS 1, on loyalty/v1/<store>/erase,
// listing every erasure of a member seen at the store. It publishes a
// store's document again only when it changed (and at start); it counts
// the registers that have not confirmed in Status.ErasuresPending.
func (s *Service) eraseLoop(ctx context.Context, pub broker.Publisher, wait time.Duration) {
	es := &eraseState{sent: map[string]string{}}
	t := time.NewTicker(eraseInterval)
	defer t.Stop()
	for {
		if s.conn.Load() {
			if err := s.publishErasures(pub, wait, es); err != nil {
				s.log.Warn("erase documents not published; will retry", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// EraseDocs builds each store's erase document from the erasures, the
// newest that fit MaxEraseSize (older ones are dropped with a count).
func EraseDocs(es []hqstore.Erasure) (docs map[string]protocol.EraseDoc, dropped int) {
	by := map[string][]protocol.Erasure{}
	for _, e := range es {
		for _, st := range e.Stores {
			by[st] = append(by[st], protocol.Erasure{N: e.N, Member: e.Member})
		}
	}
	docs = map[string]protocol.EraseDoc{}
	for st, list := range by {
		sort.Slice(list, func(i, j int) bool { return list[i].N < list[j].N })
		d := protocol.EraseDoc{Store: st, Erasures: list}
		for {
			_, err := protocol.EncodeErase(d)
			if !errors.Is(err, protocol.ErrTooLarge) || len(d.Erasures) <= 1 {
				break
			}
			cut := len(d.Erasures) / 10
			cut = max(cut, 1)
			dropped += cut
			d.Erasures = d.Erasures[cut:]
		}
		docs[st] = d
	}
	return docs, dropped
}

// eraseState is what eraseLoop published: each store's document, and the
// store's erasures version they were built from (done: all published).
type eraseState struct {
	sent    map[string]string
	version uint64
	done    bool
}

// publishErasures publishes the erase documents that changed. A tick
// whose erasures version (hqstore.Erasures.ErasuresVersion, shared by
// every worker) has not moved since everything was published reads one
// number and does nothing else: the erasures are kept for good, and
// decoding them all and building every store's document every tick cost
// 140 ms of CPU at 10,000 erasures.
func (s *Service) publishErasures(pub broker.Publisher, wait time.Duration, state *eraseState) error {
	v, err := s.st.ErasuresVersion()
	if err != nil {
		return err
	}
	if state.done && v == state.version {
		return nil
	}
	sent := state.sent
	es, err := s.st.Erasures()
	if err != nil {
		return err
	}
	pending := 0
	for _, e := range es {
		pending += len(e.Pending())
	}
	s.count(func(st *Status) { st.Erasures, st.ErasuresPending = len(es), pending })
	docs, dropped := EraseDocs(es)
	if dropped > 0 {
		s.log.Warn("erase documents: the oldest erasures no longer fit the document", "dropped", dropped)
	}
	stores := make([]string, 0, len(docs))
	for st := range docs {
		stores = append(stores, st)
	}
	sort.Strings(stores)
	var errs []string
	for _, st := range stores {
		b, err := protocol.EncodeErase(docs[st])
		if err != nil {
			errs = append(errs, st+": "+err.Error())
			continue
		}
		if sent[st] == string(b) {
			continue
		}
		topic := protocol.EraseTopic(st)
		signed, err := s.opts.Signer.Seal(topic, b)
		if err != nil {
			return err
		}
		t := pub.Publish(topic, 1, true, signed)
		if !broker.WaitTimeout(t, wait) {
			errs = append(errs, st+": "+ErrTimeout.Error())
			continue
		}
		if err := t.Error(); err != nil {
			errs = append(errs, st+": "+err.Error())
			continue
		}
		sent[st] = string(b)
		s.log.Info("erase document published", "store", st, "erasures", len(docs[st].Erasures))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	// Read before the erasures: a change after the read moves it again.
	state.version, state.done = v, true
	return nil
}
