package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/device/backoff"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// Sentinel errors.
var (
	// ErrOptions: New was given incomplete or inconsistent options.
	ErrOptions = errors.New("uplink: invalid options")
	// ErrTimeout: a broker operation (connect, subscribe, PUBACK) did not
	// complete in time; the connection is treated as dead (half-open links
	// look exactly like this).
	ErrTimeout = errors.New("uplink: broker did not answer in time")
	// ErrConnectionLost: the connection to the broker dropped.
	ErrConnectionLost = errors.New("uplink: connection lost")
	// ErrStale: a downstream document is older than the one in force.
	ErrStale = errors.New("uplink: stale or out-of-order document")
)

// Outbox is what the uplink needs from the ledger. *ledger.Ledger
// implements it.
type Outbox interface {
	// Outbox returns up to max records with Seq > after, in order.
	Outbox(after uint64, max int) ([]ledger.OutboxRecord, error)
	// Confirm records head office's watermark and prunes up to it.
	Confirm(w uint64) error
	// Confirmed returns the watermark last confirmed.
	Confirmed() (uint64, error)
	// OutboxStats reports the records waiting and the oldest of them.
	OutboxStats() (pending int, oldest ledger.OutboxRecord, err error)
	// OutboxNotify signals (non-blocking, capacity 1) new records.
	OutboxNotify() <-chan struct{}
}

var _ Outbox = (*ledger.Ledger)(nil)

// Options configures an Uplink. Zero fields take the documented defaults.
type Options struct {
	// Brokers are broker URLs ("tcp://host:1883", "ssl://host:8883"),
	// tried in order. Required.
	Brokers []string
	// Store and Register identify this register (protocol.ValidID).
	// Required.
	Store, Register string
	// ClientID is the fixed MQTT client id of the persistent session.
	// Default "loyalty-<store>-<register>".
	ClientID string
	// Username and Password for the broker, if it wants them.
	Username, Password string
	// TLS, when set, is used for ssl:// brokers (CA pool, client
	// certificate).
	TLS *tls.Config

	// Window is the number of messages awaiting PUBACK. Default 32.
	Window int
	// BatchEvents is the number of events per MQTT message (a CloudEvents
	// JSON batch). Default 64; 1 sends one event per message.
	BatchEvents int
	// MaxUnacked bounds the events published but not yet acknowledged by
	// head office; beyond it the uplink waits for acks. It keeps a
	// register from flooding head office's broker queue (mosquitto drops
	// silently past max_queued_messages). Default 16384.
	MaxUnacked int
	// OpTimeout bounds every broker wait (connect, subscribe, PUBACK).
	// Default 10s.
	OpTimeout time.Duration
	// AckTimeout: when events are outstanding and head office's watermark
	// has not moved for this long, resend one batch from the watermark as
	// a probe and send more only once head office answers (every session
	// also starts with such a probe). The wait doubles on each silent
	// round up to 16x and resets on progress. It is also the least time
	// between two resends for the same gap request. Default 10s.
	AckTimeout time.Duration
	// ConfirmEvery is the least time between two Outbox.Confirm calls
	// (acks in between are coalesced). Default 100ms.
	ConfirmEvery time.Duration
	// KeepAlive is the MQTT keep-alive; a dead link is noticed within
	// about 1.5x this. Default 15s.
	KeepAlive time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay (exponential,
	// full jitter). Defaults 200ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// StatusInterval is how often the retained status is refreshed while
	// online. Default 30s.
	StatusInterval time.Duration

	// Clock stamps status messages. Default: system clock, trusted.
	Clock clock.Clock
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger

	// OnConfig is called, one at a time, with each accepted config
	// document (newer than the one in force for its scope). Returning an
	// error rejects it: the version in force does not change.
	OnConfig func(ctx context.Context, c protocol.Config) error
	// OnMembers is called, one at a time, with each accepted members
	// message. See LedgerSummaries for the mapping to the ledger.
	OnMembers func(ctx context.Context, m protocol.MemberSummaries) error
	// ConfigVersions are the config versions already in force at start
	// (e.g. from the ledger), so a stale retained config is not re-applied.
	ConfigVersions ConfigVersions
	// MembersSeq is the last members message Seq applied before start.
	MembersSeq uint64
	// Keys are head office's pinned public keys. Config documents and
	// member summaries must be signed by one of them (sync/signing);
	// anything else is refused, counted (Status.Refused) and explained
	// (ConfigError, MembersError). Nil refuses every downstream document.
	Keys *signing.Keyring
}

// ConfigVersions are the config versions in force per scope.
type ConfigVersions struct {
	Chain uint64 `json:"chain"`
	Store uint64 `json:"store"`
}

// Uplink is the register's link to head office. Create with New, run with
// Run; Status is safe to call at any time from any goroutine.
type Uplink struct {
	ob   Outbox
	o    Options
	log  *slog.Logger
	down chan mqtt.Message
	// stop is closed when Run returns, releasing handlers still queued.
	stop chan struct{}
	// probing is owned by the Run goroutine (see session).
	probing bool
	// ran makes a second Run fail instead of corrupting state.
	ran atomic.Bool
	// ackSig wakes the session loop when an ack arrived (capacity 1).
	ackSig chan struct{}

	mu sync.Mutex
	st state
}

// state is guarded by Uplink.mu.
type state struct {
	online     bool
	watermark  uint64 // last confirmed
	published  uint64 // highest seq handed to the broker in this session
	lastAck    time.Time
	lastErr    string
	ackW       uint64 // highest watermark received, not yet applied
	acks       uint64 // acks received
	gapReq     uint64 // lowest gap request received, not yet applied
	cfg        ConfigVersions
	cfgErr     string
	membersSeq uint64
	membersErr string
	refused    Refused
	rejected   uint64
	resends    uint64
	sessions   uint64
}

// New checks the options and returns an Uplink for ob.
func New(ob Outbox, opts *Options) (*Uplink, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if ob == nil {
		return nil, fmt.Errorf("%w: no outbox", ErrOptions)
	}
	if len(o.Brokers) == 0 {
		return nil, fmt.Errorf("%w: no broker", ErrOptions)
	}
	if err := protocol.ValidID(o.Store); err != nil {
		return nil, fmt.Errorf("%w: store: %w", ErrOptions, err)
	}
	if err := protocol.ValidID(o.Register); err != nil {
		return nil, fmt.Errorf("%w: register: %w", ErrOptions, err)
	}
	if o.ClientID == "" {
		o.ClientID = "loyalty-" + o.Store + "-" + o.Register
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Window, 32)
	def(&o.BatchEvents, 64)
	def(&o.MaxUnacked, 16384)
	if o.BatchEvents > protocol.MaxBatch {
		return nil, fmt.Errorf("%w: BatchEvents %d above %d", ErrOptions, o.BatchEvents, protocol.MaxBatch)
	}
	defD(&o.OpTimeout, 10*time.Second)
	defD(&o.AckTimeout, 10*time.Second)
	defD(&o.KeepAlive, 15*time.Second)
	defD(&o.ConfirmEvery, 100*time.Millisecond)
	defD(&o.BackoffMin, 200*time.Millisecond)
	defD(&o.BackoffMax, 30*time.Second)
	defD(&o.StatusInterval, 30*time.Second)
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	o.Clock = clock.Or(o.Clock)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	u := &Uplink{ob: ob, o: o, log: log.With("subsystem", "uplink"),
		down: make(chan mqtt.Message, 16), stop: make(chan struct{}), ackSig: make(chan struct{}, 1)}
	u.st.cfg = o.ConfigVersions
	u.st.membersSeq = o.MembersSeq
	return u, nil
}

// Run keeps the link up until ctx is cancelled, then publishes an offline
// status, disconnects (bounded by OpTimeout) and returns nil. It returns an
// error only when the ledger cannot be read at start or when called a
// second time (an Uplink runs once).
func (u *Uplink) Run(ctx context.Context) error {
	if u.ran.Swap(true) {
		return fmt.Errorf("%w: Run called twice", ErrOptions)
	}
	w, err := u.ob.Confirmed()
	if err != nil {
		return fmt.Errorf("uplink: read watermark: %w", err)
	}
	u.mu.Lock()
	u.st.watermark = w
	u.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); u.downstream(ctx) }()
	defer func() { close(u.stop); wg.Wait() }()

	attempt := 0
	for ctx.Err() == nil {
		cl, lost, err := u.connect(ctx)
		if err == nil {
			attempt = 0
			err = u.session(ctx, cl, lost)
			u.teardown(cl, ctx.Err() != nil)
		}
		u.mu.Lock()
		u.st.online = false
		if err != nil && ctx.Err() == nil {
			u.st.lastErr = err.Error()
		}
		u.mu.Unlock()
		if ctx.Err() != nil {
			break
		}
		u.log.Warn("link down", "err", err, "attempt", attempt+1)
		attempt++
		t := time.NewTimer(u.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return nil
}

// backoff is the reconnect delay before attempt n: exponential with full
// jitter, uniform in [BackoffMin, BackoffMin*2^(n-1) capped at BackoffMax].
func (u *Uplink) backoff(attempt int) time.Duration {
	return backoff.Policy{Min: u.o.BackoffMin, Max: u.o.BackoffMax, Jitter: true}.Delay(attempt)
}

func (u *Uplink) statusPayload(state string) []byte {
	now, trusted := u.o.Clock.Now()
	u.mu.Lock()
	w := u.st.watermark
	u.mu.Unlock()
	pending, _, _ := u.ob.OutboxStats()
	b, _ := protocol.EncodeStatus(protocol.Status{Store: u.o.Store, Register: u.o.Register, State: state,
		Pending: uint64(max(pending, 0)), Watermark: w, At: now, ClockTrusted: trusted})
	return b
}

// connect makes one connection attempt with a fresh paho client.
func (u *Uplink) connect(ctx context.Context) (mqtt.Client, <-chan struct{}, error) {
	lost := make(chan struct{})
	var once sync.Once
	po := mqtt.NewClientOptions()
	for _, b := range u.o.Brokers {
		po.AddBroker(b)
	}
	po.SetClientID(u.o.ClientID).
		SetCleanSession(false).
		// The ledger is the store; paho's store only spans one connection.
		SetStore(mqtt.NewMemoryStore()).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		// Handlers must never block paho; each runs on its own goroutine
		// and ordering is checked by sequence numbers, not delivery order.
		SetOrderMatters(false).
		SetKeepAlive(u.o.KeepAlive).
		SetPingTimeout(min(u.o.KeepAlive/2, u.o.OpTimeout)).
		SetConnectTimeout(u.o.OpTimeout).
		SetWriteTimeout(u.o.OpTimeout).
		SetBinaryWill(protocol.StatusTopic(u.o.Store, u.o.Register), u.statusPayload(protocol.StateOffline), 1, true).
		SetDefaultPublishHandler(u.route).
		SetConnectionLostHandler(func(mqtt.Client, error) { once.Do(func() { close(lost) }) })
	if u.o.Username != "" {
		po.SetUsername(u.o.Username).SetPassword(u.o.Password)
	}
	if u.o.TLS != nil {
		po.SetTLSConfig(u.o.TLS)
	}
	cl := mqtt.NewClient(po)
	tok := cl.Connect()
	if err := wait(ctx, tok, u.o.OpTimeout+time.Second); err != nil {
		cl.Disconnect(0)
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	return cl, lost, nil
}

// wait waits for tok at most d (or until ctx ends).
func wait(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return ErrTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (u *Uplink) teardown(cl mqtt.Client, clean bool) {
	if clean && cl.IsConnectionOpen() {
		// A clean shutdown suppresses the will, so say offline ourselves.
		tok := cl.Publish(protocol.StatusTopic(u.o.Store, u.o.Register), 1, true, u.statusPayload(protocol.StateOffline))
		tok.WaitTimeout(min(u.o.OpTimeout, 2*time.Second))
	}
	cl.Disconnect(250)
}

// inflight is one message awaiting PUBACK.
type inflight struct {
	tok  mqtt.Token
	last uint64 // highest seq in the message, 0 for status
	at   time.Time
}

// session publishes on a live connection until it fails or ctx ends.
func (u *Uplink) session(ctx context.Context, cl mqtt.Client, lost <-chan struct{}) error {
	to := u.o.OpTimeout
	if err := wait(ctx, cl.Publish(protocol.StatusTopic(u.o.Store, u.o.Register), 1, true, u.statusPayload(protocol.StateOnline)), to); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	subs := map[string]byte{
		protocol.AckTopic(u.o.Store, u.o.Register): 1,
		protocol.StoreConfigTopic(u.o.Store):       1,
		protocol.ChainConfigTopic():                1,
		protocol.MembersTopic(u.o.Store):           1,
	}
	if err := wait(ctx, cl.SubscribeMultiple(subs, nil), to); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	u.mu.Lock()
	u.st.online = true
	u.st.lastErr = ""
	u.st.sessions++
	watermark := u.st.watermark
	u.mu.Unlock()
	u.log.Info("link up", "broker", strings.Join(u.o.Brokers, ","), "watermark", watermark)

	// Everything after the watermark is resent: whatever was in flight on
	// the previous connection may or may not have reached head office.
	cursor := watermark
	// Probing (after head office fell silent, until it answers): keep only
	// one batch outstanding. While head office is down this keeps the
	// register from filling the broker's queue for it with copies
	// (mosquitto drops past max_queued_messages, and whatever is queued is
	// applied later as duplicates). It carries over to the next session.
	probing := u.probing
	defer func() { u.probing = probing }()
	u.mu.Lock()
	acksSeen := u.st.acks
	u.mu.Unlock()
	var q []inflight
	seenAck := watermark
	var lastConfirm time.Time
	ackWait := u.o.AckTimeout
	lastProgress := time.Now()
	var lastGap uint64
	var lastGapAt time.Time
	statusT := time.NewTicker(u.o.StatusInterval)
	defer statusT.Stop()
	pollT := time.NewTicker(time.Second) // in case a notification is missed
	defer pollT.Stop()
	notify := u.ob.OutboxNotify()

	for {
		// Apply acknowledgements.
		u.mu.Lock()
		ackW, gap, acks := u.st.ackW, u.st.gapReq, u.st.acks
		u.st.gapReq = 0
		u.mu.Unlock()
		if acks != acksSeen {
			acksSeen, probing = acks, false
		}
		if ackW > seenAck {
			seenAck = ackW
			lastProgress = time.Now()
			ackWait = u.o.AckTimeout
		}
		confirmIn := time.Duration(0)
		if ackW > watermark {
			// Confirm is a ledger write (an fsync when the till is idle):
			// coalesce acks to at most one Confirm per ConfirmEvery so sync
			// never competes with sales for the disk.
			if d := u.o.ConfirmEvery - time.Since(lastConfirm); d > 0 {
				confirmIn = d
			} else if err := u.ob.Confirm(ackW); err != nil {
				// Beyond what the ledger holds (ErrPruneNotAllowed) means head
				// office is confused; never prune what we did not send.
				u.log.Error("confirm failed", "watermark", ackW, "err", err)
				u.setErr(fmt.Sprintf("confirm %d: %v", ackW, err))
				u.mu.Lock()
				u.st.ackW = watermark
				u.mu.Unlock()
				seenAck = watermark
			} else {
				watermark = ackW
				lastConfirm = time.Now()
				u.mu.Lock()
				u.st.watermark = watermark
				u.mu.Unlock()
			}
		}
		// acked is what head office has (confirms to the ledger may lag it).
		acked := max(watermark, seenAck)
		if cursor <= acked {
			cursor = acked
			// Nothing outstanding: head office's silence only counts from
			// the moment something is waiting for it.
			lastProgress = time.Now()
		}
		if gap != 0 && gap-1 < cursor && gap > acked {
			// Head office missed gap..: resend from there. Head office repeats
			// the request with every message it receives beyond the gap, so
			// the same gap is honoured again only after AckTimeout; a new gap
			// (progress was made) at once.
			if gap != lastGap || time.Since(lastGapAt) > u.o.AckTimeout {
				u.log.Info("resend on gap request", "from", gap, "cursor", cursor)
				cursor = gap - 1
				lastGap, lastGapAt = gap, time.Now()
				u.count(func(s *state) { s.resends++ })
			}
		}

		// Fill the window.
		limit := u.o.MaxUnacked
		if probing {
			limit = u.o.BatchEvents
		}
		for len(q) < u.o.Window && cursor-acked < uint64(limit) {
			n := min(u.o.BatchEvents, limit-int(cursor-acked))
			recs, err := u.ob.Outbox(cursor, n)
			if err != nil {
				return fmt.Errorf("read outbox: %w", err)
			}
			if len(recs) == 0 {
				break
			}
			payload, last, err := u.encode(recs)
			if err != nil {
				return err
			}
			tok := cl.Publish(protocol.EventsTopic(u.o.Store, u.o.Register), 1, false, payload)
			q = append(q, inflight{tok: tok, last: last, at: time.Now()})
			cursor = last
			u.mu.Lock()
			u.st.published = max(u.st.published, last)
			u.mu.Unlock()
		}

		var front <-chan struct{}
		var pubDeadline <-chan time.Time
		var pubT *time.Timer
		if len(q) > 0 {
			front = q[0].tok.Done()
			pubT = time.NewTimer(time.Until(q[0].at.Add(to)))
			pubDeadline = pubT.C
		}
		var confirmC <-chan time.Time
		var confirmT *time.Timer
		if confirmIn > 0 {
			confirmT = time.NewTimer(confirmIn)
			confirmC = confirmT.C
		}
		var ackDeadline <-chan time.Time
		var ackT *time.Timer
		if cursor > acked {
			ackT = time.NewTimer(time.Until(lastProgress.Add(ackWait)))
			ackDeadline = ackT.C
		}
		var err error
		select {
		case <-ctx.Done():
		case <-lost:
			err = ErrConnectionLost
		case <-u.ackSig:
		case <-notify:
		case <-pollT.C:
		case <-confirmC:
		case <-front:
			q, err = popDone(q)
		case <-pubDeadline:
			err = fmt.Errorf("puback: %w", ErrTimeout)
		case <-ackDeadline:
			if cursor > acked {
				u.log.Warn("no ack from head office, probing", "from", acked+1, "waited", ackWait)
				cursor = acked
				probing = true
				lastProgress = time.Now()
				ackWait = min(ackWait*2, 16*u.o.AckTimeout)
				u.count(func(s *state) { s.resends++ })
			}
		case <-statusT.C:
			tok := cl.Publish(protocol.StatusTopic(u.o.Store, u.o.Register), 1, true, u.statusPayload(protocol.StateOnline))
			q = append(q, inflight{tok: tok, at: time.Now()})
		}
		if pubT != nil {
			pubT.Stop()
		}
		if ackT != nil {
			ackT.Stop()
		}
		if confirmT != nil {
			confirmT.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// popDone drops the completed messages at the front of q; a failed one
// ends the session (its events are resent from the watermark).
func popDone(q []inflight) ([]inflight, error) {
	for len(q) > 0 && isDone(q[0].tok) {
		if e := q[0].tok.Error(); e != nil {
			return q, fmt.Errorf("publish: %w", e)
		}
		q = q[1:]
	}
	return q, nil
}

func isDone(t mqtt.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

func (u *Uplink) encode(recs []ledger.OutboxRecord) ([]byte, uint64, error) {
	evs := make([]protocol.Event, len(recs))
	for i, r := range recs {
		evs[i] = protocol.FromRecord(u.o.Store, u.o.Register, r)
	}
	b, err := protocol.EncodeEvents(evs)
	if errors.Is(err, protocol.ErrTooLarge) && len(recs) > 1 {
		// Large records: send fewer per message.
		return u.encode(recs[:len(recs)/2])
	}
	if err != nil {
		return nil, 0, fmt.Errorf("encode seq %d: %w", recs[0].Seq, err)
	}
	return b, recs[len(recs)-1].Seq, nil
}

func (u *Uplink) setErr(s string) { u.count(func(st *state) { st.lastErr = s }) }

func (u *Uplink) count(f func(*state)) {
	u.mu.Lock()
	f(&u.st)
	u.mu.Unlock()
}
