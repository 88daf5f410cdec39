package broker

import (
	"crypto/tls"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Token is a broker operation in progress. Done is closed when it has
// completed; Error is then its outcome (nil: the broker confirmed it, e.g.
// PUBACK for QoS 1). paho's mqtt.Token satisfies it.
type Token interface {
	Done() <-chan struct{}
	Error() error
}

// Publisher sends messages.
type Publisher interface {
	// Publish sends payload on topic; the Token completes when the broker
	// confirmed it (at QoS 1) or the send failed.
	Publish(topic string, qos byte, retained bool, payload []byte) Token
}

// Conn is one live connection to a broker.
type Conn interface {
	Publisher
	// Subscribe subscribes to filters (filter -> QoS). Messages arrive on
	// the Options.OnMessage handler given when the connection was made.
	Subscribe(filters map[string]byte) Token
	// Lost is closed when the connection drops. It never reopens: the
	// caller makes a new connection.
	Lost() <-chan struct{}
	// Close disconnects, waiting up to quiesce for work in flight.
	Close(quiesce time.Duration)
}

// Handler receives a message on a subscription. It runs on the client's
// goroutine: it must not block for long. retained is the message's RETAIN
// flag as delivered: true only for a retained message the broker hands
// over because a subscription was made (MQTT 3.1.1, 3.3.1.3), false for a
// message matching a subscription already in place, whatever flag it was
// published with.
type Handler func(topic string, payload []byte, retained bool)

// Will is the message the broker publishes when the connection dies
// without a clean disconnect.
type Will struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
}

// Options say how to make one connection.
type Options struct {
	// Brokers are URLs ("tcp://host:1883", "ssl://host:8883") tried in
	// order.
	Brokers  []string
	ClientID string
	// Username and Password, when the broker wants them.
	Username, Password string
	// TLS is used for ssl:// brokers.
	TLS *tls.Config
	// CleanSession false keeps the broker-side session (subscriptions and
	// queued QoS 1 messages) across connections.
	CleanSession bool
	// KeepAlive and PingTimeout detect a dead link; ConnectTimeout and
	// WriteTimeout bound the connect and each write.
	KeepAlive, PingTimeout, ConnectTimeout, WriteTimeout time.Duration
	// Will, when set, is registered with the broker at connect.
	Will *Will
	// OnMessage receives every message on the connection's subscriptions.
	OnMessage Handler
}

// Dialer makes one connection. The Conn is returned at once; the Token
// completes when the broker accepted the connection (or refused it). The
// Conn may be used only after that, and must be closed either way.
type Dialer func(o Options) (Conn, Token)

var _ Dialer = Dial

// Dial connects with paho. The connection is one connection only: no
// automatic reconnect or connect retry (the caller owns reconnecting), an
// in-memory message store that lives and dies with it (the caller's own
// durable queue is the store), and handlers that may run concurrently
// (order is the caller's business). Its network connection is Buffered
// and acknowledges what it reads at once (TCP_QUICKACK on Linux).
func Dial(o Options) (Conn, Token) {
	c := &pahoConn{lost: make(chan struct{})}
	po := mqtt.NewClientOptions()
	for _, b := range o.Brokers {
		po.AddBroker(b)
	}
	po.SetClientID(o.ClientID).
		SetCleanSession(o.CleanSession).
		SetStore(NewStore()).
		// Reads through a buffer, writes coalesced (Buffered): paho's
		// own reads and writes are a system call or more per packet.
		// Acknowledges what it reads at once (quickAcked): head office's
		// ack is not held up by the broker's Nagle.
		SetCustomOpenConnectionFn(quickAcked(o.WriteTimeout)).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		// Handlers must never block paho; each runs on its own goroutine.
		SetOrderMatters(false).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(o.PingTimeout).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(o.WriteTimeout).
		SetConnectionLostHandler(func(mqtt.Client, error) { c.once.Do(func() { close(c.lost) }) })
	if o.OnMessage != nil {
		h := o.OnMessage
		po.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { h(m.Topic(), m.Payload(), m.Retained()) })
	}
	if o.Will != nil {
		po.SetBinaryWill(o.Will.Topic, o.Will.Payload, o.Will.QoS, o.Will.Retained)
	}
	if o.Username != "" {
		po.SetUsername(o.Username).SetPassword(o.Password)
	}
	if o.TLS != nil {
		po.SetTLSConfig(o.TLS)
	}
	c.c = mqtt.NewClient(po)
	return c, c.c.Connect()
}

type pahoConn struct {
	c    mqtt.Client
	lost chan struct{}
	once sync.Once
}

func (c *pahoConn) Publish(topic string, qos byte, retained bool, payload []byte) Token {
	return c.c.Publish(topic, qos, retained, payload)
}

func (c *pahoConn) Subscribe(filters map[string]byte) Token {
	return c.c.SubscribeMultiple(filters, nil) // nil: the OnMessage handler
}

func (c *pahoConn) Lost() <-chan struct{} { return c.lost }

func (c *pahoConn) Close(quiesce time.Duration) { c.c.Disconnect(uint(quiesce.Milliseconds())) }

// PahoPublisher is the Publisher of an existing paho client (head office's
// auto-reconnecting client).
func PahoPublisher(c mqtt.Client) Publisher { return pahoPublisher{c} }

type pahoPublisher struct{ c mqtt.Client }

func (p pahoPublisher) Publish(topic string, qos byte, retained bool, payload []byte) Token {
	return p.c.Publish(topic, qos, retained, payload)
}

// WaitTimeout waits at most d for t and reports whether it completed.
func WaitTimeout(t Token, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return true
	case <-timer.C:
		return false
	}
}
