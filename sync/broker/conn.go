package broker

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// Buffered is a paho OpenConnectionFunc (ClientOptions.
// SetCustomOpenConnectionFn): it opens the connection as paho's own
// opener does (tcp, mqtt and unix; ssl, tls, mqtts and tcps; ws and wss;
// the proxy settings of the environment) and hands paho a connection that
// reads through a buffer and coalesces writes.
//
// Why: paho reads each packet straight off the socket, one read for the
// type byte, one per byte of the remaining length and one for the rest,
// and writes each packet, a PUBACK of 4 bytes too, with a write of its
// own: four system calls or more per message received. Head office
// receives tens of thousands of messages a second; with the buffer one
// read takes in every packet that has arrived, and the PUBACKs paho
// queues while a write is on its way go out in the next one.
//
// A write returns once its bytes are queued (as one to the kernel's
// socket buffer returns before they reach the broker); one writer
// goroutine per connection sends what is queued, each write bounded by
// writeTimeout (paho's own write deadlines, set around each write, are
// replaced by it), and a failed or timed-out write fails every write
// after it and closes the connection, so paho's reader sees it lost at
// once. Bytes queued but not yet written when that happens are lost
// with the connection: a QoS 1 publish is sent again (paho keeps it until
// its PUBACK), a QoS 0 one (head office's acks) is not, and the
// register's resend covers it. Close sends what is
// queued (a DISCONNECT among it) before closing, waiting at most a
// second.
func Buffered(writeTimeout time.Duration) mqtt.OpenConnectionFunc {
	return func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		return BufferedOver(uri, o, writeTimeout, nil)
	}
}

// BufferedOver opens a connection as Buffered does; wrap, when set, wraps
// the network connection under the buffers (tests count what reaches the
// network).
func BufferedOver(uri *url.URL, o mqtt.ClientOptions, writeTimeout time.Duration, wrap func(net.Conn) net.Conn) (net.Conn, error) {
	return bufferedOver(uri, o, writeTimeout, wrap, false)
}

// quickAcked opens a connection as Buffered does that also acknowledges
// at once what it reads (quickAck): Dial's, a register's. A register
// publishes, then waits for small packets (PUBACKs, head office's acks);
// mosquitto by default holds a small packet while its previous one is
// unacknowledged (Nagle's algorithm, set_tcp_nodelay false), and a client
// that sends nothing meanwhile acknowledges only when its delayed-ACK
// timer fires: head office's ack came 40 ms late after every burst.
// Head office's connection (Buffered) sends PUBACKs all the time and is
// left as it was.
func quickAcked(writeTimeout time.Duration) mqtt.OpenConnectionFunc {
	return func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		return bufferedOver(uri, o, writeTimeout, nil, true)
	}
}

func bufferedOver(uri *url.URL, o mqtt.ClientOptions, writeTimeout time.Duration, wrap func(net.Conn) net.Conn, quick bool) (net.Conn, error) {
	c, err := open(uri, o)
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		c = wrap(c)
	}
	r := io.Reader(c)
	if quick {
		r = quickAck(c)
	}
	return newBufConn(c, r, writeTimeout), nil
}

// open opens the network connection as paho v1.5's openConnection does.
func open(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	switch uri.Scheme {
	case "ws", "wss":
		u := *uri // gorilla websocket refuses a URL with a user
		u.User = nil
		var tlsc *tls.Config
		if uri.Scheme == "wss" {
			tlsc = o.TLSConfig
		}
		return mqtt.NewWebsocket(u.String(), tlsc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "mqtt", "tcp":
		return proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	case "unix":
		if uri.Host != "" {
			return dialer.Dial("unix", uri.Host)
		}
		return dialer.Dial("unix", uri.Path)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		if os.Getenv("all_proxy") == "" {
			return tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
		}
		conn, err := proxy.FromEnvironment().Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, o.TLSConfig)
		if err := tc.Handshake(); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tc, nil
	}
	return nil, errUnknownScheme
}

var errUnknownScheme = errors.New("broker: unknown protocol")

// maxQueued bounds the bytes waiting for the writer; a write beyond it
// waits (the connection's own back-pressure).
const maxQueued = 1 << 20

// bufConn is a net.Conn that reads through a buffer and queues writes for
// its writer goroutine.
type bufConn struct {
	net.Conn
	r       *bufio.Reader
	timeout time.Duration

	mu      sync.Mutex
	cond    sync.Cond // queued grew, or the writer took or finished a write
	queued  []byte
	spare   []byte
	err     error // the first failed write: every later write fails
	closing bool
	done    chan struct{} // the writer has stopped
	once    sync.Once
}

func newBufConn(c net.Conn, r io.Reader, timeout time.Duration) *bufConn {
	b := &bufConn{Conn: c, r: bufio.NewReaderSize(r, 64<<10), timeout: timeout, done: make(chan struct{})}
	b.cond.L = &b.mu
	go b.writer()
	return b
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// readerFunc is an io.Reader made of its Read.
type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Write queues p for the writer.
func (b *bufConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && !b.closing && len(b.queued) > 0 && len(b.queued)+len(p) > maxQueued {
		b.cond.Wait()
	}
	switch {
	case b.err != nil:
		return 0, b.err
	case b.closing:
		return 0, net.ErrClosed
	}
	b.queued = append(b.queued, p...)
	b.cond.Broadcast()
	return len(p), nil
}

// writer sends what is queued, all of it in one write, until the
// connection closes or a write fails.
func (b *bufConn) writer() {
	defer close(b.done)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for len(b.queued) == 0 && !b.closing {
			b.cond.Wait()
		}
		if len(b.queued) == 0 {
			return // closing, all sent
		}
		out := b.queued
		b.queued = b.spare[:0]
		// Writes waiting for room may queue behind this one now: the
		// queue is empty while it is on its way.
		b.cond.Broadcast()
		b.mu.Unlock()
		var err error
		if b.timeout > 0 {
			err = b.Conn.SetWriteDeadline(time.Now().Add(b.timeout))
		}
		if err == nil {
			_, err = b.Conn.Write(out)
		}
		b.mu.Lock()
		b.spare = out[:0]
		b.cond.Broadcast() // room for waiting writes
		if err != nil {
			b.err = err
			b.queued = nil
			// Close under paho's reader so it sees the connection lost
			// now, not at its next write (which, idle, is a keepalive
			// ping whose failure paho only logs).
			_ = b.Conn.Close()
			return
		}
	}
}

// SetDeadline sets the read deadline; writes have the writer's own.
func (b *bufConn) SetDeadline(t time.Time) error { return b.Conn.SetReadDeadline(t) }

// SetWriteDeadline does nothing: the writer bounds each of its writes.
func (b *bufConn) SetWriteDeadline(time.Time) error { return nil }

// Close sends what is queued, waiting at most a second for it, and
// closes the connection.
func (b *bufConn) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closing = true
		b.cond.Broadcast()
		b.mu.Unlock()
		select {
		case <-b.done:
		case <-time.After(time.Second):
		}
	})
	return b.Conn.Close()
}
