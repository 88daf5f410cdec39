package hq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/testkit"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

const wait = 5 * time.Second

func connect(t testing.TB, url, id string, clean bool, configure func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).
		SetOrderMatters(false).SetConnectTimeout(wait).SetWriteTimeout(wait).
		SetStore(broker.NewStore()) // paho's own reconnect races on a shared packet otherwise
	if configure != nil {
		configure(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// register simulates a register's uplink: it keeps its events, publishes
// them, remembers head office's acks, and resends from a requested gap.
type register struct {
	t        testing.TB
	store    string
	id       string
	c        mqtt.Client
	mu       stdsync.Mutex
	recs     []ledger.OutboxRecord
	acked    uint64
	acks     []protocol.Ack
	summary  map[string]protocol.MemberSummary // latest per member (highest version) from the members messages
	version  map[string]uint64                 // the version (message seq) of each kept summary
	pos      uint64                            // the store stream's position: every part up to it was taken
	parts    []protocol.MemberSummaries        // every members message, store's topic and own topic
	found    map[string]protocol.Found         // lookup answers by id
	resends  int
	noResend bool
	closed   atomic.Bool // set when the test ends: resend goroutines stop quietly
}

func newRegister(t testing.TB, url, store, id string) *register {
	r := &register{t: t, store: store, id: id, summary: map[string]protocol.MemberSummary{}, found: map[string]protocol.Found{}}
	r.c = connect(t, url, "reg-"+id, true, nil)
	t.Cleanup(func() { r.closed.Store(true) }) // runs before connect's Disconnect
	sub := func(topic string, h mqtt.MessageHandler) {
		tok := r.c.Subscribe(topic, 1, h)
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	sub(protocol.AckTopic(store, id), func(_ mqtt.Client, m mqtt.Message) {
		a, err := decodeAck(m.Topic(), m.Payload(), id)
		if err != nil {
			t.Errorf("bad ack: %v", err)
			return
		}
		r.mu.Lock()
		r.acks = append(r.acks, a)
		r.acked = max(r.acked, a.Watermark)
		resend := a.Gap != 0 && !r.noResend
		if resend {
			r.resends++
		}
		n := uint64(len(r.recs)) // under the lock: a test may add records while a resend request arrives
		r.mu.Unlock()
		if resend {
			go r.send(seqRange(a.Gap, n)...)
		}
	})
	sub(protocol.MembersTopic(store), r.onMembers)
	sub(protocol.RegisterMembersTopic(store, id), r.onMembers)
	sub(protocol.FoundTopic(store, id), func(_ mqtt.Client, m mqtt.Message) {
		doc, err := hqRing.Open(m.Topic(), m.Payload(), protocol.MaxFoundSize+signing.Overhead)
		if err != nil {
			t.Errorf("lookup answer not signed by head office: %v", err)
			return
		}
		f, err := protocol.DecodeFound(doc, store, id)
		if err != nil {
			t.Errorf("bad lookup answer: %v", err)
			return
		}
		r.mu.Lock()
		r.found[f.ID] = f
		r.mu.Unlock()
	})
	return r
}

// onMembers takes a members message (the store's topic or the register's
// own): signed by head office, decoded, each summary kept as the latest
// of its member, the message kept in parts.
func (r *register) onMembers(_ mqtt.Client, m mqtt.Message) {
	doc, err := hqRing.Open(m.Topic(), m.Payload(), protocol.MaxMembersSize+signing.Overhead)
	if err != nil {
		r.t.Errorf("members message not signed by head office: %v", err)
		return
	}
	ms, err := protocol.DecodeMembers(doc, r.store)
	if err != nil {
		r.t.Errorf("bad members message: %v", err)
		return
	}
	r.mu.Lock()
	if r.version == nil {
		r.version = map[string]uint64{}
	}
	for _, s := range ms.Members {
		// Handlers run concurrently (SetOrderMatters(false)): an older
		// part taken after a newer one must not replace its summaries.
		if v, ok := r.version[s.MemberID]; !ok || ms.Seq >= v {
			r.summary[s.MemberID], r.version[s.MemberID] = s, ms.Seq
		}
	}
	if ms.From != nil && *ms.From <= r.pos && ms.Seq > r.pos {
		r.pos = ms.Seq
	}
	r.parts = append(r.parts, ms)
	r.mu.Unlock()
}

// catchUp asks head office for the store's summary stream after from.
func (r *register) catchUp(from uint64) {
	b, err := protocol.EncodeCatchUp(protocol.CatchUp{Register: r.id, From: from})
	if err != nil {
		r.t.Fatal(err)
	}
	if tok := r.c.Publish(protocol.CatchUpTopic(r.store, r.id), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		r.t.Fatalf("catch-up request: %v", tok.Error())
	}
}

// lookup asks head office about an alias under correlation id.
func (r *register) lookup(id, alias string) {
	b, err := protocol.EncodeLookup(protocol.Lookup{Register: r.id, ID: id, Alias: alias})
	if err != nil {
		r.t.Fatal(err)
	}
	if tok := r.c.Publish(protocol.LookupTopic(r.store, r.id), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		r.t.Fatalf("lookup: %v", tok.Error())
	}
}

func (r *register) answer(id string) (protocol.Found, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.found[id]
	return f, ok
}

// position is how far the register's members messages chain from 0
// without a gap (a register's position).
func (r *register) position() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var p uint64
	for moved := true; moved; {
		moved = false
		for _, ms := range r.parts {
			if ms.From != nil && *ms.From <= p && ms.Seq > p {
				p, moved = ms.Seq, true
			}
		}
	}
	return p
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// add records a new event locally and returns its sequence number.
func (r *register) add(typ ledger.OutboxType, data any) uint64 {
	raw, err := json.Marshal(data)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := uint64(len(r.recs) + 1)
	r.recs = append(r.recs, ledger.OutboxRecord{Seq: seq, ID: protocol.EventID(r.id, seq), Type: typ,
		WallTime: time.Date(2026, 11, 27, 9, 0, int(seq), 0, time.UTC), ClockTrusted: true, Data: raw})
	return seq
}

func (r *register) points(member string, pts ledger.Points) uint64 {
	r.mu.Lock()
	seq := uint64(len(r.recs) + 1)
	r.mu.Unlock()
	kind := ledger.KindEarn
	if pts < 0 {
		kind = ledger.KindRedeem
	}
	return r.add(ledger.OutPoints, ledger.PointEvent{ID: protocol.EventID(r.id, seq), Register: r.id, Seq: seq,
		Kind: kind, MemberID: member, Points: pts})
}

func (r *register) payload(seq uint64) []byte {
	r.mu.Lock()
	rec := r.recs[seq-1]
	r.mu.Unlock()
	b, err := protocol.EncodeEvents([]protocol.Event{protocol.FromRecord(r.store, r.id, rec)})
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// send publishes the given sequence numbers, one event per message.
func (r *register) send(seqs ...uint64) {
	for _, s := range seqs {
		if r.closed.Load() {
			return
		}
		tok := r.c.Publish(protocol.EventsTopic(r.store, r.id), 1, false, r.payload(s))
		if (!tok.WaitTimeout(wait) || tok.Error() != nil) && !r.closed.Load() {
			r.t.Errorf("publish %d: %v", s, tok.Error())
			return
		}
	}
}

// resendOnSilence makes the register behave as a real one does when head
// office stays silent (sync/uplink: AckTimeout): while some of its events
// are unacknowledged and no ack has moved the watermark for d, it resends
// from the watermark. Head office acks only what registers send, so this
// is how events lost in head office's crash come back.
func (r *register) resendOnSilence(d time.Duration) {
	go func() {
		last, since := r.ackedWM(), time.Now()
		for !r.closed.Load() {
			time.Sleep(d / 4)
			r.mu.Lock()
			acked, n := r.acked, uint64(len(r.recs))
			r.mu.Unlock()
			if acked != last || acked >= n {
				last, since = acked, time.Now()
				continue
			}
			if time.Since(since) >= d {
				since = time.Now()
				r.send(seqRange(acked+1, min(n, acked+200))...)
			}
		}
	}()
}

func (r *register) ackedWM() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acked
}

func (r *register) memberSummary(id string) (protocol.MemberSummary, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.summary[id]
	return s, ok
}

// startHQ opens a store and runs a service until the test ends.
func startHQ(t testing.TB, url string, path string, opts hq.Options) (*hq.Service, *hqstore.Store, func()) {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "hq.db")
	}
	st, err := hqstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Conn.Broker = url
	if opts.Signer == nil {
		opts.Signer = hqKey
	}
	if opts.Conn.WaitTimeout == 0 {
		opts.Conn.WaitTimeout = wait
	}
	svc, err := hq.New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once stdsync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("hq run: %v", err)
				}
			case <-time.After(3 * wait):
				t.Errorf("hq did not stop within %v", 3*wait)
			}
			if err := st.Check(); err != nil {
				t.Errorf("store check: %v", err)
			}
			st.Close()
		})
	}
	t.Cleanup(stop)
	testkit.Eventually(t, wait, "hq subscribed", func() bool { return svc.Status().Subscribed })
	return svc, st, stop
}

var _ = fmt.Sprintf

// hqKey is head office's signing key in these tests (the same in the
// re-executed head-office processes of crash_test); registers pin hqRing.
var hqKey, hqRing = func() (*signing.Signer, *signing.Keyring) {
	k, err := signing.Generate(bytes.NewReader(bytes.Repeat([]byte{42}, 32)))
	if err != nil {
		panic(err)
	}
	r, err := signing.NewKeyring(k.Public())
	if err != nil {
		panic(err)
	}
	return k, r
}()

// decodeAck decodes an ack head office sent on topic for register: signed
// with its key (hqKey here) when the register's status lists
// protocol.AckSigned, bare to one whose status does not (a register of
// the previous release, or these tests' simulated registers).
func decodeAck(topic string, payload []byte, register string) (protocol.Ack, error) {
	doc, err := signing.Unverified(payload)
	switch {
	case errors.Is(err, signing.ErrUnsigned):
		doc = payload
	case err != nil:
		return protocol.Ack{}, err
	default:
		if doc, err = hqRing.Open(topic, payload, protocol.MaxAckSize+signing.Overhead); err != nil {
			return protocol.Ack{}, err
		}
	}
	return protocol.DecodeAck(doc, register)
}
