package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loyalty-terminal/loyalty/device/backoff"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/broker"
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
	// (acks in between are coalesced) while events remain unsent or
	// unacknowledged; an ack that covers everything the outbox holds and
	// at least BatchEvents events since the last Confirm is confirmed at
	// once. Default 100ms.
	ConfirmEvery time.Duration
	// KeepAlive is the MQTT keep-alive; a dead link is noticed within
	// about 1.5x this. Default 15s.
	KeepAlive time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay (exponential,
	// full jitter: each wait is uniform between BackoffMin and
	// BackoffMin*2^(attempt-1), capped at BackoffMax). Defaults 200ms and
	// 5s.
	BackoffMin, BackoffMax time.Duration
	// StatusInterval is how often the retained status is refreshed while
	// online. Default 30s.
	StatusInterval time.Duration
	// TakeoverWithin: a connection lost this soon after it was made counts
	// towards a session takeover (the broker drops a client when another
	// connects with its client id, e.g. a second register with the same
	// register.id); three in a row are reported in Status.Takeover.
	// Default 5s.
	TakeoverWithin time.Duration

	// Dial makes each connection to the broker. Default broker.Dial
	// (paho); logic tests pass a fake (sync/broker/brokertest).
	Dial broker.Dialer

	// NoAckFault is how long the link may be up with events sent and no
	// acknowledgement before Status.Fault says why that may be. Default
	// DefaultNoAckFault.
	NoAckFault time.Duration
	// Software is the register's build version, for the retained status
	// (head office's fleet page).
	Software string

	// Clock stamps status messages. Default: system clock, trusted.
	Clock clock.Clock
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger

	// OnConfig is called, one at a time, with each accepted config
	// document (newer than the one in force for its scope). Returning an
	// error rejects it: the version in force does not change.
	OnConfig func(ctx context.Context, c protocol.Config) error
	// OnMembers is called, one at a time, with each accepted members
	// message, and with the summary in a lookup answer (Lookup), which is
	// applied on a goroutine of its own and so may run beside a members
	// message: the callback must take that (ApplyMembersTo does: the
	// ledger keeps each member's newer summary). See LedgerSummaries for
	// the mapping to the ledger.
	OnMembers func(ctx context.Context, m protocol.MemberSummaries) error
	// OnErase is called, one at a time, with each erasure in an accepted
	// erase document (docs/protocol.md "Member erasure"); it carries it
	// out once (ledger.EraseMember, which confirms it to head office)
	// and reports whether it did anything.
	OnErase func(ctx context.Context, member string, n uint64) (bool, error)
	// OnPiecedConfig is called instead of OnConfig with a store document
	// whose catalogue comes in pieces; it stages the document and says
	// which pieces are wanted. OnPiece is called with each verified piece;
	// it stores the piece and, with the last one, puts the document in
	// force (Pieces.Applied). A piece of another version than the one
	// staged is answered with ledger.ErrOtherVersion and ignored.
	OnPiecedConfig func(ctx context.Context, c protocol.Config) (Pieces, error)
	OnPiece        func(ctx context.Context, p protocol.CataloguePiece, digest string) (Pieces, error)
	// PieceTimeout: while a pieced catalogue is incomplete and no piece
	// arrived for this long, the pieces are asked of the broker again.
	// Default 30s.
	PieceTimeout time.Duration
	// ConfigVersions are the config versions already in force at start
	// (e.g. from the ledger), so a stale retained config is not re-applied.
	ConfigVersions ConfigVersions
	// MembersSeq is the position in the store's member-summary stream at
	// start, used when the outbox does not keep one (a *ledger.Ledger
	// does: MembersPosition).
	MembersSeq uint64
	// GapWait is how long a gap in the member-summary stream may stay open
	// (parts after it arrived, the part before not) before the register
	// asks head office for the stream from its position. Default 2s.
	GapWait time.Duration
	// CatchUpAgain is about how long (0.8-1.2x) after connecting a
	// register that has sent no events in the session asks for its
	// store's member summaries a second time, once: a quiet register gets
	// no ack, the other trigger of that request (down.go), and its
	// request at connect may have reached nobody after a broker restart.
	// Default 30s; negative: never.
	CatchUpAgain time.Duration
	// Keys are head office's pinned public keys. Config documents and
	// member summaries must be signed by one of them (sync/signing);
	// anything else is refused, counted (Status.Refused) and explained
	// (ConfigError, MembersError). Nil refuses every downstream document.
	Keys *signing.Keyring
}

// keyStore is the ledger's record of the keys that signed what is in
// force (*ledger.Ledger implements it): read at start, after recording
// the keys pinned now.
type keyStore interface {
	NotePinned(ctx context.Context, ids []string) (ledger.DocKeys, error)
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
	down chan message
	// stop is closed when Run returns, releasing handlers still queued.
	stop chan struct{}
	// probing is owned by the Run goroutine (see session).
	probing bool
	// ran makes a second Run fail instead of corrupting state.
	ran atomic.Bool
	// ackSig wakes the session loop when an ack arrived (capacity 1).
	ackSig chan struct{}
	// fetchSig asks the session to fetch catalogue pieces (capacity 1).
	fetchSig chan struct{}

	// foundC carries lookup answers to lookupsLoop.
	foundC chan message

	mu sync.Mutex
	st state
	// conn is the live connection (nil while down); lookups are the
	// Lookup calls waiting, by correlation id. Guarded by mu.
	conn    broker.Conn
	lookups map[string]chan *protocol.MemberSummary

	id identity

	// batches and payloads keep the storage of outbox reads
	// (*ledger.OutboxBatch) and of events messages (*[]byte) for the next
	// batch: a payload comes back when its PUBACK is in.
	batches, payloads sync.Pool
	eventsTopic       string
}

// state is guarded by Uplink.mu.
type state struct {
	online    bool
	watermark uint64 // last confirmed
	published uint64 // highest seq handed to the broker in this session
	lastAck   time.Time
	lastErr   string
	ackW      uint64 // highest watermark received, not yet applied
	lastW     uint64 // the watermark of the last ack received
	// ackProof and lastProof are the acks that carried ackW and lastW,
	// to verify before a Confirm relies on one (acksig.go); ackErr is
	// why the last ack was refused.
	ackProof, lastProof ackProof
	ackErr              string
	acks                uint64 // acks received
	// askedOnAck is the session (sessions) that asked for the member
	// stream a second time: on its first live ack after it sent events
	// (down.go), or, having sent none, when Options.CatchUpAgain passed
	// (session.go).
	askedOnAck uint64
	// sentInSession: this session has published events, so an ack can
	// be head office's answer (not the retained ack the broker hands
	// over at subscribe).
	sentInSession bool
	gapReq        uint64 // lowest gap request received, not yet applied
	gapTo         uint64 // the end of those requests (0: none, from gapReq on)
	cfg           ConfigVersions
	// keys are the keys that signed what is in force, and the keys
	// pinned now (ledger.DocKeys; kept in the ledger when the outbox is
	// one).
	keys       ledger.DocKeys
	cfgErr     string
	membersSeq uint64
	membersMax uint64 // highest members message seq applied since start
	membersErr string
	eraseErr   string
	erased     uint64
	pieces     pieceState
	// ahead are stream parts applied beyond a gap; gapSince when the gap
	// opened, gapAsked when the register last asked to fill it, gapWait
	// the wait before asking again.
	ahead              []span
	gapSince, gapAsked time.Time
	gapWait            time.Duration
	catchUps, lookups  uint64
	// otherPieces counts catalogue pieces of another version, ignored.
	otherPieces uint64
	refused     Refused
	rejected    uint64
	resends     uint64
	sessions    uint64
	// quickLosses counts the sessions in a row that lost their connection
	// within TakeoverWithin of starting; takeovers, the times that reached
	// takeoverRun.
	quickLosses uint64
	takeovers   uint64
	since       time.Time // when the current session started
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
	defD(&o.BackoffMax, 5*time.Second)
	defD(&o.GapWait, 2*time.Second)
	if o.CatchUpAgain == 0 {
		o.CatchUpAgain = 30 * time.Second
	}
	defD(&o.StatusInterval, 30*time.Second)
	defD(&o.TakeoverWithin, 5*time.Second)
	defD(&o.PieceTimeout, 30*time.Second)
	defD(&o.NoAckFault, DefaultNoAckFault)
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	o.Clock = clock.Or(o.Clock)
	if o.Dial == nil {
		o.Dial = broker.Dial
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	u := &Uplink{ob: ob, o: o, log: log.With("subsystem", "uplink"),
		down: make(chan message, 16), stop: make(chan struct{}), ackSig: make(chan struct{}, 1),
		fetchSig: make(chan struct{}, 1),
		foundC:   make(chan message, 16), eventsTopic: protocol.EventsTopic(o.Store, o.Register)}
	u.st.cfg = o.ConfigVersions
	u.id.reg = o.Register
	u.st.membersSeq = o.MembersSeq
	if ps, ok := ob.(positionStore); ok {
		p, err := ps.MembersPosition()
		if err != nil {
			return nil, fmt.Errorf("uplink: ledger member summary position: %w", err)
		}
		u.st.membersSeq = max(p, o.MembersSeq)
	}
	u.st.keys.Pinned = slices.Sorted(slices.Values(o.Keys.IDs()))
	if ks, ok := ob.(keyStore); ok && len(u.st.keys.Pinned) > 0 {
		k, err := ks.NotePinned(context.Background(), u.st.keys.Pinned)
		if err != nil {
			return nil, fmt.Errorf("uplink: ledger document keys: %w", err)
		}
		u.st.keys = k
		if m := k.Members; m != "" && !slices.Contains(k.Pinned, m) {
			// The position was set by a key no longer pinned: ask head
			// office for its stream from 0 (its answer restarts the
			// stream in the ledger: applyMembers), not from a position
			// head office may never reach.
			u.st.membersSeq = 0
		}
	}
	if rn, ok := ob.(renumberer); ok {
		u.id.rn = rn
	}
	if is, ok := ob.(incarnationSource); ok {
		inc, err := is.Incarnation()
		if err != nil {
			return nil, fmt.Errorf("uplink: ledger incarnation: %w", err)
		}
		u.id.inc = inc
	}
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
	wg.Add(3)
	go func() { defer wg.Done(); u.downstream(ctx) }()
	go func() { defer wg.Done(); u.lookupsLoop(ctx) }()
	go func() { defer wg.Done(); u.watchGaps(ctx) }()
	defer func() { close(u.stop); wg.Wait() }()

	attempt := 0
	for ctx.Err() == nil {
		conn, err := u.connect(ctx)
		if err == nil {
			attempt = 0
			began := time.Now()
			err = u.session(ctx, conn)
			u.teardown(conn, ctx.Err() != nil)
			u.takeover(err, time.Since(began))
		}
		u.mu.Lock()
		u.st.online = false
		u.conn = nil
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
	pending, _, _ := u.ob.OutboxStats()
	s := protocol.Status{Store: u.o.Store, Register: u.o.Register, State: state,
		Pending: uint64(max(pending, 0)), At: now, ClockTrusted: trusted}
	u.fleetStatus(&s)
	b, _ := protocol.EncodeStatus(s)
	return b
}

// connect makes one connection attempt (a fresh client each time).
func (u *Uplink) connect(ctx context.Context) (broker.Conn, error) {
	conn, tok := u.o.Dial(broker.Options{
		Brokers:  u.o.Brokers,
		ClientID: u.o.ClientID,
		Username: u.o.Username, Password: u.o.Password,
		TLS: u.o.TLS,
		// The broker keeps our subscriptions (config, members, acks) while
		// we are away; the ledger, not the broker, is the events' store.
		CleanSession:   false,
		KeepAlive:      u.o.KeepAlive,
		PingTimeout:    min(u.o.KeepAlive/2, u.o.OpTimeout),
		ConnectTimeout: u.o.OpTimeout,
		WriteTimeout:   u.o.OpTimeout,
		Will: &broker.Will{Topic: protocol.StatusTopic(u.o.Store, u.o.Register),
			Payload: u.statusPayload(protocol.StateOffline), QoS: 1, Retained: true},
		OnMessage: u.route,
	})
	if err := wait(ctx, tok, u.o.OpTimeout+time.Second); err != nil {
		conn.Close(0)
		return nil, fmt.Errorf("connect: %w", err)
	}
	return conn, nil
}

// wait waits for tok at most d (or until ctx ends).
func wait(ctx context.Context, tok broker.Token, d time.Duration) error {
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

func (u *Uplink) teardown(conn broker.Conn, clean bool) {
	if clean && !isClosed(conn.Lost()) {
		// A clean shutdown suppresses the will, so say offline ourselves.
		tok := conn.Publish(protocol.StatusTopic(u.o.Store, u.o.Register), 1, true, u.statusPayload(protocol.StateOffline))
		broker.WaitTimeout(tok, min(u.o.OpTimeout, 2*time.Second))
	}
	conn.Close(250 * time.Millisecond)
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (u *Uplink) encode(dst []byte, b *ledger.OutboxBatch, st ledger.Stamp) ([]byte, uint64, error) {
	if st.Incarnation == "" {
		st.Incarnation = u.id.current()
	}
	p, err := protocol.AppendBatch(dst, u.o.Store, u.o.Register, st.Incarnation, st.Prev, b)
	if errors.Is(err, protocol.ErrTooLarge) && len(b.Recs) > 1 {
		// Large records: send fewer per message.
		b.Recs = b.Recs[:len(b.Recs)/2]
		return u.encode(dst, b, st)
	}
	if err != nil {
		return dst, 0, fmt.Errorf("encode seq %d: %w", b.Recs[0].Seq, err)
	}
	return p, b.Recs[len(b.Recs)-1].Seq, nil
}

func (u *Uplink) setErr(s string) { u.count(func(st *state) { st.lastErr = s }) }

func (u *Uplink) count(f func(*state)) {
	u.mu.Lock()
	f(&u.st)
	u.mu.Unlock()
}

// takeoverRun is how many quickly lost sessions in a row are reported as
// a takeover.
const takeoverRun = 3

// takeover counts a session that lost its connection soon after it was
// made: in a row, that is what a broker does to two clients with one
// client id (a copied config). A session that lasted resets the count.
func (u *Uplink) takeover(err error, lasted time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !errors.Is(err, ErrConnectionLost) || lasted >= u.o.TakeoverWithin {
		u.st.quickLosses = 0
		return
	}
	u.st.quickLosses++
	if u.st.quickLosses == takeoverRun {
		u.st.takeovers++
		u.log.Error("the broker session keeps being taken over: another register may use the same register.id (and client id)",
			"client_id", u.o.ClientID, "lost_within", u.o.TakeoverWithin, "in_a_row", u.st.quickLosses)
	}
}
