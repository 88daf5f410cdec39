package hq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/sync/broker"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
)

// Sentinel errors.
var (
	// ErrOptions reports a missing or invalid option.
	ErrOptions = errors.New("hq: invalid options")
	// ErrTimeout reports a broker operation that did not complete in time.
	ErrTimeout = errors.New("hq: broker operation timed out")
)

// Conn says how to reach the broker.
type Conn struct {
	Broker   string // "tcp://host:1883" or "ssl://host:8883"; required
	ClientID string // fixed, so the persistent session survives restarts; default "loyalty-hq"
	Username string
	Password string
	TLS      *tls.Config // nil: plain TCP (use only on loopback)
	// WaitTimeout bounds every wait on a paho token. Default 10s.
	WaitTimeout time.Duration
}

func (c Conn) waitTimeout() time.Duration {
	if c.WaitTimeout <= 0 {
		return 10 * time.Second
	}
	return c.WaitTimeout
}

// Options configures a Service. Zero values mean the documented defaults.
type Options struct {
	Conn Conn
	// Filters are the events subscriptions. Default
	// [protocol.AllEventsFilter]; see the package documentation before
	// using several instances or "$share/...".
	Filters []string
	// MaxBatch is the most events applied in one transaction. Default 8192:
	// large enough that a slow fdatasync (tens of ms on a busy disk) is
	// paid once for many events.
	MaxBatch int
	// Queue is the capacity, in MQTT messages, between paho's handler and
	// the ingest goroutine. Default 16384 (it must hold what arrives during
	// one commit).
	Queue int
	// MaxQueuedBytes bounds the bytes of those messages too. When full,
	// paho's handler waits (back-pressure: the broker keeps the messages
	// for head office's session; nothing is dropped), counted in
	// Status.QueueWaits and logged. Default 256 MiB.
	MaxQueuedBytes int64
	// GapRetry is the least time between two resend requests to one
	// register. Default 1s.
	GapRetry time.Duration
	// GapGrace is how long a gap in a register's stream may stay open
	// before head office asks the register to resend: with several
	// workers the missing events are usually queued at another worker,
	// which applies them and the events held beyond them. The time the
	// messages wait in this worker's queue is added (in a reconnect storm
	// the other workers' queues are as long). Default 1s; negative asks
	// at once.
	GapGrace time.Duration
	// SummaryInterval is the least time between two rounds of member
	// summaries; a longer one coalesces more changes per member. Default
	// 500ms. Negative disables summaries.
	SummaryInterval time.Duration
	// SummaryMonths: a member's summary goes to the stores where head
	// office saw the member enrol or buy within this many months. Default
	// 12; negative: every store the member ever shopped at.
	SummaryMonths int
	// RebaseEvery is the least time between two rebases of one store's
	// summary stream (docs/protocol.md "Member summaries": a register
	// claiming a version above the chain-wide counter, as after head
	// office was restored from an older backup). A claim above the counter
	// sooner is refused, counted (Status.RebasesRefused) and checked again
	// when the time is up, so one register's credentials cannot make head
	// office resend its store to every register of it at will. Default
	// 10 minutes; the first rebase of a store after a start is at once.
	RebaseEvery time.Duration
	// Logger receives the service's logs. Default: discard.
	Logger *slog.Logger
	// Signer signs every member summary (sync/signing); registers refuse
	// unsigned ones. Required.
	Signer *signing.Signer
	// Keys verify the config documents head office finds retained on the
	// broker before it records them. Default: Signer's public key alone;
	// during a rotation pin the old and the new key.
	Keys *signing.Keyring
	// Group, when set, makes this service one of several workers on one
	// shared store (PostgreSQL): the events filters are subscribed as the
	// shared subscription "$share/<Group>/<filter>" with a clean session
	// (the registers' ledgers are the only queue), and Conn.ClientID must
	// be this worker's own.
	Group string
	// Coordinator, with Group, elects the worker that sends member
	// summaries and brings it every worker's changes
	// (pgstore.Coordinator). Nil: this service sends the summaries of its
	// own commits.
	Coordinator Coordinator
	// LookupEvery and LookupBurst bound the card lookups head office
	// answers for one register: LookupBurst at once, then one per
	// LookupEvery; what comes faster is refused unanswered (the register
	// times out as without an answer), counted in
	// Status.LookupsRefused and logged once per run of refusals. Lookups
	// are answered one at a time, so this keeps one register's flood (a
	// stolen credential reading members) from holding up every other
	// till's lookup. Defaults 1s and 20; a till asks only for a card it
	// does not know.
	LookupEvery time.Duration
	LookupBurst int
	// Policy, when set, checks every event before its effect is applied
	// (sync/hq/policy): what it refuses is held for review, logged,
	// counted and told to the register. loyalty-hq serve always sets one;
	// nil applies everything (tests of other parts). Rule sets in the
	// config documents head office records are added to it.
	Policy *policy.Policy
}

// Coordinator splits the work that must happen once among workers on one
// store.
type Coordinator interface {
	// Leader reports whether this worker sends member summaries now.
	Leader() bool
	// Changes delivers, while this worker leads, what every worker's
	// commits changed, and an empty Change when it becomes the leader.
	Changes() <-chan hqstore.Change
}

// Status is a snapshot of the service's counters.
type Status struct {
	Connected      bool   `json:"connected"`
	Subscribed     bool   `json:"subscribed"`      // the events subscription is confirmed
	Messages       uint64 `json:"messages"`        // MQTT messages received
	Malformed      uint64 `json:"malformed"`       // messages refused by the decoder
	VersionRefused uint64 `json:"version_refused"` // of those, in a protocol or CloudEvents version head office does not speak
	Events         uint64 `json:"events"`          // events handed to the store
	Applied        uint64 `json:"applied"`         // events newly applied
	Duplicates     uint64 `json:"duplicates"`      // events already applied
	Rejected       uint64 `json:"rejected"`        // events the store refused as invalid
	Conflicts      uint64 `json:"conflicts"`       // conflicts found
	Reviewed       uint64 `json:"reviewed"`        // events held for review (another incarnation or store, a reused number)
	// Erasures counts the member erasures recorded; ErasuresPending the
	// registers asked to confirm one that have not yet (loyalty-hq
	// members erasures lists them).
	Erasures        int    `json:"erasures,omitempty"`
	ErasuresPending int    `json:"erasures_pending,omitempty"`
	Commits         uint64 `json:"commits"`        // store transactions
	CommitErrors    uint64 `json:"commit_errors"`  // failed transactions (nothing acked)
	AcksSent        uint64 `json:"acks_sent"`      // acks the connection took (QoS 0: queued to be written)
	GapRequests     uint64 `json:"gap_requests"`   // resend requests sent
	NoticesSent     uint64 `json:"notices_sent"`   // acks telling a register why its events are held
	SummariesSent   uint64 `json:"summaries_sent"` // member summaries sent (per store)
	CatchUps        uint64 `json:"catch_ups"`      // catch-up requests answered
	// CatchUpSummaries counts the member summaries of SummariesSent that
	// answered a catch-up request (on one register's members topic), not
	// sent on a store's topic.
	CatchUpSummaries uint64 `json:"catch_up_summaries"`
	// Rebases counts the rebases of a store's summary stream: a
	// register's catch-up position or status claimed a version above the
	// chain-wide counter (head office restored from an older backup), and
	// the store's members were placed after it (Streams.Rebase).
	Rebases uint64 `json:"summary_rebases"`
	// RebasesRefused counts such claims not followed: above 2^55, or
	// sooner than Options.RebaseEvery after the store's last rebase (the
	// highest is checked again when that time is up).
	RebasesRefused uint64 `json:"summary_rebases_refused"`
	Lookups        uint64 `json:"lookups"`         // card lookups answered
	LookupsRefused uint64 `json:"lookups_refused"` // card lookups refused unanswered: a register asking faster than Options.LookupEvery allows
	ConfigsRefused uint64 `json:"configs_refused"` // retained config documents without head office's signature
	// ConfigsRestored counts older config documents found retained on
	// the broker (signed, but below head office's record: a replay by
	// whoever can publish there) that head office replaced with its
	// record.
	ConfigsRestored uint64 `json:"configs_restored"`
	// PolicyHeld counts events head office's policy held for review
	// (applied to their stream, not to balances or members), by check
	// in PolicyHeldBy (sync/hq/policy codes).
	PolicyHeld   uint64            `json:"policy_held"`
	PolicyHeldBy map[string]uint64 `json:"policy_held_by,omitempty"`
	QueueLen     int               `json:"queue_len"`   // messages waiting to be applied
	QueueBytes   int64             `json:"queue_bytes"` // their bytes (bounded by MaxQueuedBytes)
	QueueWaits   uint64            `json:"queue_waits"` // times a full queue held the broker back (back-pressure, nothing dropped)
	// LastError is why the last connection attempt to the broker failed
	// (TLS or network), empty once connected.
	LastError string `json:"last_error,omitempty"`
	// StoreError is why the last commit failed (the database down or
	// unreachable, a storage fault), until a commit succeeds; nothing is
	// acknowledged meanwhile.
	StoreError       string    `json:"store_error,omitempty"`
	LastCommit       time.Time `json:"last_commit,omitzero"`
	LastCommitEvents int       `json:"last_commit_events"`
}

// Service is a running head-office ingest. Create with New, start with Run.
type Service struct {
	st    hqstore.Ingest
	opts  Options
	log   *slog.Logger
	in    chan inMsg
	gate  *byteGate // bytes of the messages in in
	cfgIn chan inMsg
	reqIn chan inMsg
	acks  *acker
	sums  *summariser
	conn  atomic.Bool
	subd  atomic.Bool
	stats struct {
		stdsync.Mutex
		Status
	}
	fleet *fleet
	// lookupLimit bounds each register's card lookups (used only by
	// the requests goroutine).
	lookupLimit *limiter
	// connErrAt is when the current connection error was last logged
	// (under stats).
	connErrAt time.Time
	// beforeApply, when set by tests, runs before each commit.
	beforeApply func(n int)
	// rebaseClock, when set by tests, measures Options.RebaseEvery.
	rebaseClock atomic.Pointer[func() time.Time]
	// queueDelay is how long the last decoded events message waited in
	// this worker's queue (nanoseconds): while it is long, the events a
	// gap waits for are likely still queued here or at another worker
	// (acker).
	queueDelay atomic.Int64
	// messages counts the events messages decoded (Status.Messages).
	messages atomic.Uint64
}

type inMsg struct {
	topic   string
	payload []byte
	at      time.Time // when an events message was queued for the decoder
}

// New checks the options and returns a service over an open store: the
// bbolt *hqstore.Store or any other hqstore.Ingest (the PostgreSQL backend).
func New(st hqstore.Ingest, opts Options) (*Service, error) {
	if st == nil || opts.Conn.Broker == "" {
		return nil, fmt.Errorf("need a store and a broker url: %w", ErrOptions)
	}
	if opts.Signer == nil {
		return nil, fmt.Errorf("need a signing key (loyalty-hq keys generate): %w", ErrOptions)
	}
	if opts.Keys == nil {
		k, err := signing.NewKeyring(opts.Signer.Public())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrOptions, err)
		}
		opts.Keys = k
	}
	if opts.Conn.ClientID == "" {
		opts.Conn.ClientID = "loyalty-hq"
	}
	if len(opts.Filters) == 0 {
		opts.Filters = []string{protocol.AllEventsFilter}
	}
	if opts.Group != "" {
		if strings.ContainsAny(opts.Group, "/+#") {
			return nil, fmt.Errorf("%w: group %q: no '/', '+' or '#'", ErrOptions, opts.Group)
		}
		shared := make([]string, len(opts.Filters))
		for i, f := range opts.Filters {
			shared[i] = f
			if !strings.HasPrefix(f, "$share/") {
				shared[i] = "$share/" + opts.Group + "/" + f
			}
		}
		opts.Filters = shared
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 8192
	}
	if opts.Queue <= 0 {
		opts.Queue = 16384
	}
	if opts.MaxQueuedBytes <= 0 {
		opts.MaxQueuedBytes = 256 << 20
	}
	if opts.GapRetry <= 0 {
		opts.GapRetry = time.Second
	}
	if opts.GapGrace == 0 {
		opts.GapGrace = time.Second
	}
	opts.GapGrace = max(opts.GapGrace, 0)
	if opts.SummaryInterval == 0 {
		opts.SummaryInterval = 500 * time.Millisecond
	}
	if opts.SummaryMonths == 0 {
		opts.SummaryMonths = 12
	}
	if opts.LookupEvery <= 0 {
		opts.LookupEvery = time.Second
	}
	if opts.LookupBurst <= 0 {
		opts.LookupBurst = 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Service{fleet: newFleet(), st: st, opts: opts, log: log.With("subsystem", "hq"), in: make(chan inMsg, opts.Queue), cfgIn: make(chan inMsg, 16),
		reqIn: make(chan inMsg, 1024), lookupLimit: newLimiter(opts.LookupEvery, opts.LookupBurst)}
	s.gate = newByteGate(opts.MaxQueuedBytes, s.log)
	if err := s.forgetUnpinned(); err != nil {
		return nil, err
	}
	if opts.Policy != nil {
		if err := s.loadRuleSets(); err != nil {
			return nil, err
		}
		st.SetPolicy(opts.Policy)
	}
	return s, nil
}

// Status returns a snapshot of the counters.
func (s *Service) Status() Status {
	s.stats.Lock()
	defer s.stats.Unlock()
	st := s.stats.Status
	st.PolicyHeldBy = maps.Clone(st.PolicyHeldBy)
	st.Messages = s.messages.Load()
	st.Connected = s.conn.Load()
	st.Subscribed = st.Connected && s.subd.Load()
	st.QueueLen = len(s.in)
	st.QueueBytes, st.QueueWaits = s.gate.stats()
	return st
}

func (s *Service) count(f func(*Status)) {
	s.stats.Lock()
	f(&s.stats.Status)
	s.stats.Unlock()
}

// clientOptions builds paho options shared by the service and the config
// publisher.
func clientOptions(c Conn, clientID string) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().AddBroker(c.Broker).SetClientID(clientID).
		SetConnectTimeout(c.waitTimeout()).SetWriteTimeout(c.waitTimeout()).
		SetKeepAlive(30 * time.Second).SetPingTimeout(10 * time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		// paho reconnects head office's client by itself; its resume must
		// not write a packet the new connection is sending (broker.NewStore).
		SetStore(broker.NewStore()).
		// A read takes in every packet that has arrived, and the PUBACKs
		// queued meanwhile go out in one write (broker.Buffered).
		SetCustomOpenConnectionFn(broker.Buffered(c.waitTimeout()))
	if c.Username != "" {
		o.SetUsername(c.Username).SetPassword(c.Password)
	}
	if c.TLS != nil {
		o.SetTLSConfig(c.TLS)
	}
	return o
}

// Run connects, ingests until ctx is cancelled, then shuts down within
// about Conn.WaitTimeout. It returns nil after a cancel, or the error that
// stopped it.
func (s *Service) Run(ctx context.Context) error {
	// The epoch is no longer in members messages (positions are); it
	// still counts restarts.
	if _, err := s.st.NextEpoch(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := ctx.Done()

	o := clientOptions(s.opts.Conn, s.opts.Conn.ClientID).
		SetCleanSession(s.opts.Group != "").SetOrderMatters(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		// Only a channel send: never disk I/O on paho's goroutine. A full
		// channel is back-pressure; the ingest goroutine never waits on paho.
		// Events are bounded in bytes too (byteGate): a full queue holds
		// the broker back, it never drops.
		if strings.HasSuffix(m.Topic(), "/"+protocol.KindConfig) || protocol.IsPieceTopic(m.Topic()) {
			select {
			case s.cfgIn <- inMsg{topic: m.Topic(), payload: m.Payload()}:
			case <-done:
			}
			return
		}
		if strings.HasSuffix(m.Topic(), "/"+protocol.KindCatchUp) || strings.HasSuffix(m.Topic(), "/"+protocol.KindLookup) {
			select {
			case s.reqIn <- inMsg{topic: m.Topic(), payload: m.Payload()}:
			case <-done:
			}
			return
		}
		if strings.HasSuffix(m.Topic(), "/"+protocol.KindStatus) {
			// Memory only; a register's position in its store's
			// summary stream beyond the head means head office was
			// restored from an older backup (summariser.rebase).
			if st := s.fleet.status(m.Topic(), m.Payload(), time.Now()); st != nil && s.sums != nil {
				s.sums.position(st.Store, st.Register, max(st.MembersSeq, st.MembersMax))
			}
			return
		}
		s.enqueue(inMsg{topic: m.Topic(), payload: m.Payload(), at: time.Now()}, done)
	}
	o.SetDefaultPublishHandler(handler)
	wait := s.opts.Conn.waitTimeout()
	o.SetOnConnectHandler(func(c mqtt.Client) {
		s.conn.Store(true)
		s.log.Info("connected", "broker", s.opts.Conn.Broker, "filters", s.opts.Filters)
		go func() { // never wait on a token inside a paho callback
			// Events, and the config documents in force (retained), which
			// head office records in its store.
			subs := map[string]byte{protocol.ChainConfigTopic(): 1, protocol.StoreConfigTopic("+"): 1,
				protocol.CataloguePiecesFilter("+"): 1,
				protocol.AllStatusFilter:            0} // registers' status, for the fleet page
			for _, f := range s.opts.Filters {
				subs[f] = 1
			}
			// The registers' catch-up requests and lookups: one worker
			// answers each (any can: they read the shared store).
			for _, f := range []string{protocol.AllCatchUpFilter, protocol.AllLookupFilter} {
				if s.opts.Group != "" {
					f = "$share/" + s.opts.Group + "/" + f
				}
				subs[f] = 1
			}
			t := c.SubscribeMultiple(subs, nil)
			if !t.WaitTimeout(wait) {
				s.log.Error("subscribe timed out; reconnecting", "filters", s.opts.Filters)
				return
			} else if t.Error() != nil {
				s.log.Error("subscribe refused", "filters", s.opts.Filters, "err", t.Error())
				return
			}
			s.subd.Store(true)
			s.log.Info("subscribed", "filters", s.opts.Filters)
		}()
	})
	o.SetConnectionNotificationHandler(s.connectionNotice)
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		s.conn.Store(false)
		s.subd.Store(false)
		s.log.Warn("connection lost", "err", err)
	})
	client := mqtt.NewClient(o)
	pub := broker.PahoPublisher(client)
	s.acks = newAcker(pub, wait, s.log, s)
	months := max(s.opts.SummaryMonths, 0)
	s.sums = newSummariser(pub, s.st, months, s.opts.SummaryInterval, wait, s.log, s)
	s.sums.signer = s.opts.Signer
	if s.opts.RebaseEvery > 0 {
		s.sums.rebaseEvery = s.opts.RebaseEvery
	}
	s.sums.now = func() time.Time {
		if f := s.rebaseClock.Load(); f != nil {
			return (*f)()
		}
		return time.Now()
	}

	t := client.Connect() // with ConnectRetry it keeps trying in the background
	go func() {
		if t.WaitTimeout(wait) && t.Error() != nil {
			s.log.Error("connect", "err", t.Error())
		}
	}()

	var wg stdsync.WaitGroup
	if c := s.opts.Coordinator; c != nil {
		s.sums.lead = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-c.Changes():
					// The changed members are marked in the store;
					// the leader takes them from there.
					s.sums.poke()
				}
			}
		}()
	}
	wg.Add(5)
	go func() { defer wg.Done(); s.eraseLoop(ctx, pub, wait) }()
	go func() { defer wg.Done(); s.configLoop(ctx) }()
	go func() { defer wg.Done(); s.requests(ctx) }()
	go func() { defer wg.Done(); s.acks.run(ctx) }()
	go func() { defer wg.Done(); s.sums.run(ctx) }()

	// Know every register's watermark; send nothing. A register waiting
	// for an ack head office could not send before it stopped resends
	// from its watermark when head office stays silent, and that resend
	// is answered (no ack storm for idle or powered-off registers).
	if regs, err := s.st.Registers(); err == nil {
		for _, r := range regs {
			s.sums.seen(r.Store, r.Register)
			s.acks.setIncarnation(r.Store, r.Register, r.Incarnation)
			s.acks.known(r.Store, r.Register, r.Watermark)
			s.acks.setPolicy(r)
			s.acks.setReused(r)
		}
	}

	err := s.ingest(ctx)
	cancel()
	wg.Wait()
	client.Disconnect(uint(min(wait, time.Second).Milliseconds()))
	s.conn.Store(false)
	return err
}

// connectionNotice logs why head office cannot reach the broker, in
// paho's own words (a TLS verification failure, a refused connection, a
// broker that refused the credentials), at each new reason and again
// every minute while it lasts; Status.LastError keeps it.
func (s *Service) connectionNotice(_ mqtt.Client, n mqtt.ConnectionNotification) {
	switch n := n.(type) {
	case mqtt.ConnectionNotificationConnected:
		s.count(func(st *Status) { st.LastError = "" })
	case mqtt.ConnectionNotificationFailed:
		why := "cannot connect to the broker"
		if n.Reason != nil {
			why = n.Reason.Error()
		}
		var repeat bool
		now := time.Now()
		s.count(func(st *Status) {
			repeat = st.LastError == why && now.Sub(s.connErrAt) < time.Minute
			st.LastError = why
			if !repeat {
				s.connErrAt = now
			}
		})
		if !repeat {
			s.log.Error("cannot connect to the broker; retrying", "broker", s.opts.Conn.Broker, "err", why)
		}
	case mqtt.ConnectionNotificationBrokerFailed:
		s.log.Debug("broker connection attempt failed", "broker", n.Broker.String(), "err", n.Reason)
	}
}

// decodeLoop decodes messages off paho's channel (the envelope, then the
// store's own decoding and checks, hqstore.Prepare) and hands batches to
// the committer. It runs beside ingest so that decoding the next batch
// overlaps the commit (and its fdatasync) of the current one; while the
// committer is busy, the batch grows, up to MaxBatch.
func (s *Service) decodeLoop(ctx context.Context, out chan<- []hqstore.Event) {
	var batch []hqstore.Event
	for {
	drain:
		for len(batch) < s.opts.MaxBatch {
			select {
			case m := <-s.in:
				batch = s.decode(m, batch)
			default:
				break drain
			}
		}
		switch {
		case len(batch) == 0:
			select {
			case <-ctx.Done():
				return
			case m := <-s.in:
				batch = s.decode(m, batch)
			}
		case len(batch) >= s.opts.MaxBatch:
			select {
			case <-ctx.Done():
				return
			case out <- batch:
				batch = nil
			}
		default:
			select {
			case <-ctx.Done():
				return
			case out <- batch:
				batch = nil
			case m := <-s.in:
				batch = s.decode(m, batch)
			}
		}
	}
}

// ingest commits batches until ctx is cancelled.
func (s *Service) ingest(ctx context.Context) error {
	batches := make(chan []hqstore.Event)
	decoded := make(chan struct{})
	ctx, stop := context.WithCancel(ctx) // also stops the decoder when ingest fails
	go func() { defer close(decoded); s.decodeLoop(ctx, batches) }()
	defer func() { <-decoded }()
	defer stop()
	for {
		var evs []hqstore.Event
		select {
		case <-ctx.Done():
			return nil
		case evs = <-batches:
		}
		if s.beforeApply != nil {
			s.beforeApply(len(evs))
		}
		t0 := time.Now()
		res, err := s.st.Apply(evs)
		s.log.Debug("commit", "events", len(evs), "took", time.Since(t0))
		if errors.Is(err, hqstore.ErrStorage) {
			// The store's file failed a write or a sync: nothing is acked,
			// and nothing more can be trusted to the open file. Stop;
			// loyalty-hq exits and its restart reopens the store, and the
			// registers resend from the last watermark acknowledged.
			s.count(func(st *Status) { st.CommitErrors++ })
			s.log.Error("commit failed; stopping, nothing of it was acknowledged", "events", len(evs), "err", err)
			return fmt.Errorf("head office store: %w", err)
		}
		if err != nil {
			// Nothing was applied and nothing is acked: the registers keep
			// the events and resend them (the next gap request asks).
			s.count(func(st *Status) { st.CommitErrors++; st.StoreError = err.Error() })
			s.log.Error("commit failed; events will be resent", "events", len(evs), "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond): // let a transient disk error pass
			}
			continue
		}
		now := time.Now()
		s.count(func(st *Status) {
			st.Events += uint64(len(evs))
			st.Applied += uint64(res.Applied)
			st.Duplicates += uint64(res.Duplicates)
			st.Rejected += uint64(len(res.Rejected))
			st.Conflicts += uint64(len(res.Conflicts))
			st.Reviewed += uint64(res.Reviewed)
			for _, h := range res.PolicyHolds {
				st.PolicyHeld++
				if st.PolicyHeldBy == nil {
					st.PolicyHeldBy = map[string]uint64{}
				}
				st.PolicyHeldBy[h.Code]++
			}
			st.Commits++
			st.StoreError = ""
			st.LastCommit = now
			st.LastCommitEvents = len(evs)
		})
		for _, r := range res.Rejected {
			s.log.Warn("event rejected; the register's stream waits here until it sends a valid event", "err", r)
		}
		for _, c := range res.Conflicts {
			s.log.Warn("conflict", "kind", c.Kind, "register", c.Register, "seq", c.Seq, "alias", c.Alias, "detail", c.Detail)
		}
		for _, h := range res.Holds {
			s.log.Warn("events held for review", "store", h.Store, "register", h.Register, "incarnation", h.Incarnation,
				"reason", h.Reason, "held", h.Held, "detail", h.Text)
		}
		for _, h := range res.PolicyHolds {
			s.log.Warn("event held for review by policy; its stream goes on", "store", h.Store, "register", h.Register,
				"seq", h.Seq, "check", h.Code, "why", h.Text)
		}
		// Only now, after the commit: acknowledge.
		for _, rs := range res.Registers {
			s.acks.setPolicy(rs)
			s.acks.setReused(rs)
			s.sums.seen(rs.Store, rs.Register)
			s.acks.setIncarnation(rs.Store, rs.Register, rs.Incarnation)
			s.acks.set(rs.Store, rs.Register, rs.Watermark, rs.Gap)
		}
		for _, h := range res.Holds {
			s.acks.hold(h)
		}
		if s.opts.Coordinator == nil { // else the leader hears of them
			s.sums.mark(res.Members)
		}
	}
}

// enqueue hands an events message to the decoder, waiting while the
// queue is full in messages or bytes; false when done closed first.
func (s *Service) enqueue(m inMsg, done <-chan struct{}) bool {
	if !s.gate.acquire(int64(len(m.payload)), done) {
		return false
	}
	select {
	case s.in <- m:
		return true
	case <-done:
		s.gate.release(int64(len(m.payload)))
		return false
	}
}

func (s *Service) decode(m inMsg, evs []hqstore.Event) []hqstore.Event {
	s.gate.release(int64(len(m.payload)))
	if !m.at.IsZero() {
		s.queueDelay.Store(int64(time.Since(m.at)))
	}
	s.messages.Add(1) // an atomic: no lock per message
	n := len(evs)
	evs, err := appendMessage(evs, m.topic, m.payload)
	if errors.Is(err, protocol.ErrVersion) {
		// Only this message: the register's stream carries on from its
		// watermark once it sends in a version head office speaks.
		s.count(func(st *Status) { st.Malformed++; st.VersionRefused++ })
		s.log.Warn("message in a version head office does not speak dropped; upgrade head office before registers (docs/protocol.md, \"Upgrade order\")",
			"topic", m.topic, "err", err)
		return evs
	}
	if err != nil {
		s.count(func(st *Status) { st.Malformed++ })
		s.log.Warn("malformed message dropped", "topic", m.topic, "bytes", len(m.payload), "err", err)
		return evs
	}
	// The store's own decoding and checks, here beside the commit of the
	// batch before rather than inside the next transaction.
	hqstore.Prepare(evs[n:])
	return evs
}

// configLoop records every valid config document seen on the broker (the
// retained ones arrive at each connect) in the store, so head office keeps
// a durable record of what is in force even if the broker loses its
// retained messages.
func (s *Service) configLoop(ctx context.Context) {
	for {
		var m inMsg
		select {
		case <-ctx.Done():
			return
		case m = <-s.cfgIn:
		}
		if len(m.payload) == 0 {
			continue // a cleared retained message
		}
		t, err := protocol.ParseTopic(m.topic)
		if err != nil {
			s.log.Warn("config on an unknown topic", "topic", m.topic, "err", err)
			continue
		}
		if t.Kind == protocol.KindCatalogue {
			s.recordPiece(m, t)
			continue
		}
		doc, key, err := s.opts.Keys.Verify(m.topic, m.payload, protocol.MaxConfigSize+signing.Overhead)
		if err != nil {
			s.log.Warn("config document on the broker not signed by head office; registers refuse it too", "topic", m.topic, "err", err)
			s.count(func(st *Status) { st.ConfigsRefused++ })
			continue
		}
		cfg, err := protocol.DecodeConfig(doc, t)
		if err != nil {
			s.log.Warn("invalid config document on the broker; registers refuse it too", "topic", m.topic, "err", err)
			continue
		}
		s.learnRules(m.topic, cfg, key)
		switch err := s.st.RecordConfig(m.topic, cfg.ConfigVersion, doc); {
		case err == nil:
			s.log.Info("config in force recorded", "topic", m.topic, "version", cfg.ConfigVersion)
			s.recordSigned(m.topic, cfg.ConfigVersion, key)
		case errors.Is(err, hqstore.ErrStaleConfig):
			s.restoreConfig(ctx, m.topic, cfg.ConfigVersion)
		default:
			s.log.Error("record config", "topic", m.topic, "err", err)
		}
	}
}

// restoreConfig puts head office's recorded document for kind back on the
// broker when the broker holds an older one (version): a genuinely signed
// but superseded document replayed by whoever can publish there would
// otherwise be what a new or restored register takes (review8). The
// document head office published itself comes back at the same version
// and changes nothing.
func (s *Service) restoreConfig(ctx context.Context, kind string, version uint64) {
	docs, err := s.st.Configs()
	if err != nil {
		s.log.Error("read the config record", "err", err)
		return
	}
	rec := RecordOf(docs)
	d, ok := rec[kind]
	if !ok || version >= d.Version {
		return
	}
	s.log.Warn("an older config document is retained on the broker than head office's record: publishing the record again",
		"topic", kind, "on_broker", version, "recorded", d.Version)
	s.count(func(st *Status) { st.ConfigsRestored++ })
	ds, err := recorded(rec, kind)
	if err == nil {
		_, err = publishSet(ctx, s.opts.Conn, s.opts.Signer, ds, PublishOptions{Record: rec, RecordRead: true, Republish: true})
	}
	if err != nil {
		s.log.Error("publish the recorded config again", "topic", kind, "version", d.Version, "err", err)
	}
}

// recordPiece records a catalogue piece seen on the broker, so head office
// can republish a catalogue in pieces from its own record.
func (s *Service) recordPiece(m inMsg, t protocol.Topic) {
	doc, key, err := s.opts.Keys.Verify(m.topic, m.payload, protocol.MaxPieceSize+signing.Overhead)
	if err != nil {
		s.log.Warn("catalogue piece on the broker not signed by head office; registers refuse it too", "topic", m.topic, "err", err)
		s.count(func(st *Status) { st.ConfigsRefused++ })
		return
	}
	p, err := protocol.DecodePiece(doc, t.Store, t.Piece)
	if err != nil {
		s.log.Warn("invalid catalogue piece on the broker; registers refuse it too", "topic", m.topic, "err", err)
		return
	}
	switch err := s.st.RecordConfig(m.topic, p.ConfigVersion, doc); {
	case err == nil:
		s.log.Debug("catalogue piece recorded", "topic", m.topic, "version", p.ConfigVersion)
		s.recordSigned(m.topic, p.ConfigVersion, key)
	case errors.Is(err, hqstore.ErrStaleConfig):
	default:
		s.log.Error("record catalogue piece", "topic", m.topic, "err", err)
	}
}

// DecodeMessage turns one upstream MQTT message into store events. It
// checks the topic, the CloudEvents envelope and that every event's source
// is the register of the topic (protocol.DecodeEvents); it never panics.
func DecodeMessage(topic string, payload []byte) ([]hqstore.Event, error) {
	evs, err := appendMessage(nil, topic, payload)
	if err != nil {
		return nil, err
	}
	return evs, nil
}

// appendMessage is DecodeMessage appending the events to dst, so the
// decoder builds them straight into its batch. On error it returns dst
// as given (what it wrote past len(dst) is cleared).
func appendMessage(dst []hqstore.Event, topic string, payload []byte) ([]hqstore.Event, error) {
	t, err := protocol.ParseTopic(topic)
	if err != nil {
		return dst, fmt.Errorf("decode: %w", err)
	}
	if t.Kind != protocol.KindEvents {
		return dst, fmt.Errorf("decode: %w: %s is not an events topic", protocol.ErrTopic, topic)
	}
	pevs, err := protocol.DecodeEvents(payload, t.Store, t.Register)
	if err != nil {
		return dst, fmt.Errorf("decode %s: %w", topic, err)
	}
	n := len(dst)
	dst = slices.Grow(dst, len(pevs))
	for _, e := range pevs {
		rec, err := e.Record()
		if err != nil {
			// Defensive: DecodeEvents has checked every event's
			// sequence, Record's only failure today; the batch is left
			// as it was all the same.
			clear(dst[n:])
			return dst[:n], fmt.Errorf("decode %s: %w", topic, err)
		}
		dst = append(dst, hqstore.Event{Register: t.Register, Store: t.Store, Incarnation: e.Incarnation, PrevIncarnation: e.PrevIncarnation, OutboxRecord: rec})
	}
	return dst, nil
}

// acceptsField reports whether a register understands an optional ack
// field (protocol.AckFields), from its last status.
func (s *Service) acceptsField(store, register, field string) bool {
	return s.fleet != nil && s.fleet.acceptsField(store, register, field)
}

// accepts reports whether a register accepts an ack notice code (from its
// last status; see fleet.accepts).
func (s *Service) accepts(store, register, code string) bool {
	if s.fleet == nil {
		return protocol.LegacyNotice(code)
	}
	return s.fleet.accepts(store, register, code)
}
