package broker_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loyalty-terminal/loyalty/sync/broker"
)

// countingConn counts the reads and writes that reach the network. With
// a gate set (hold), the next write waits until the gate is released.
type countingConn struct {
	net.Conn
	mu            sync.Mutex
	reads, writes int
	gate          chan struct{}
}

// hold makes the next network write wait until the returned function is
// called: a writer held up, whatever the machine's load.
func (c *countingConn) hold() (release func()) {
	g := make(chan struct{})
	c.mu.Lock()
	c.gate = g
	c.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(g) }) }
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	g := c.gate
	c.gate = nil
	c.mu.Unlock()
	if g != nil {
		<-g
	}
	return c.Conn.Write(p)
}

func (c *countingConn) counts() (reads, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads, c.writes
}

// pipe returns a buffered connection over one end of a TCP loopback
// connection (counted) and the other end.
func pipe(t *testing.T, timeout time.Duration) (net.Conn, *countingConn, net.Conn) {
	t.Helper()
	var counted *countingConn
	c, peer := dialLoopback(t, func(u *url.URL) (net.Conn, error) {
		return broker.BufferedOver(u, *mqtt.NewClientOptions(), timeout, func(c net.Conn) net.Conn {
			counted = &countingConn{Conn: c}
			return counted
		})
	})
	return c, counted, peer
}

// dialLoopback opens a connection with open to a loopback listener and
// returns it and the listener's end; both are closed when the test ends.
func dialLoopback(t *testing.T, open func(*url.URL) (net.Conn, error)) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := open(&url.URL{Scheme: "tcp", Host: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

// TestBufferedReadsTakeInWhatArrived: packets read as paho reads them (a
// byte, then the rest) come off a buffer that one read of the network
// filled, byte for byte as sent.
func TestBufferedReadsTakeInWhatArrived(t *testing.T) {
	c, counted, peer := pipe(t, time.Second)
	var sent bytes.Buffer
	for i := range 200 {
		sent.Write([]byte{0x30, 3, byte(i), 'a', 'b'})
	}
	if _, err := peer.Write(sent.Bytes()); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	one := make([]byte, 1)
	rest := make([]byte, 4)
	for range 200 {
		if _, err := io.ReadFull(c, one); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, rest); err != nil {
			t.Fatal(err)
		}
		got.Write(one)
		got.Write(rest)
	}
	if !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatal("bytes read differ from bytes sent")
	}
	// 400 reads by the caller; a handful reach the network (the bytes may
	// arrive in a few segments).
	if reads, _ := counted.counts(); reads > 20 {
		t.Fatalf("%d reads reached the network for 400 reads of 1,000 bytes sent at once", reads)
	}
}

// TestBufferedWritesCoalesceWhileOneIsOnItsWay: writes queued while the
// writer is held up go out together, in order, and nothing is lost.
func TestBufferedWritesCoalesceWhileOneIsOnItsWay(t *testing.T) {
	c, counted, peer := pipe(t, 5*time.Second)
	// Hold the writer up in its first network write (a gate, not full
	// socket buffers: on a loaded machine the writer could drain those
	// between the small writes, and 117 writes reached the network in
	// one CI run), then queue many small writes behind it.
	release := counted.hold()
	defer release()
	// A queue that waits for the held write to finish would wait for
	// ever: fail then instead of hanging the package.
	watchdog := time.AfterFunc(30*time.Second, func() {
		t.Error("writes queued behind a held network write waited for it to finish")
		release()
	})
	defer watchdog.Stop()
	big := bytes.Repeat([]byte{'x'}, 8<<20)
	if _, err := c.Write(big[:len(big)/8]); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	want.Write(big[:len(big)/8])
	for i := range 1000 {
		p := []byte{0x40, 2, byte(i >> 8), byte(i)}
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		want.Write(p)
	}
	release()
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("bytes received differ from bytes written, or out of order")
	}
	if _, writes := counted.counts(); writes > 100 {
		t.Fatalf("%d network writes for 1,001 writes queued behind a blocked one", writes)
	}
}

// TestBufferedCloseSendsWhatIsQueued: a DISCONNECT written just before
// Close reaches the broker.
func TestBufferedCloseSendsWhatIsQueued(t *testing.T) {
	c, _, peer := pipe(t, time.Second)
	disconnect := []byte{0xe0, 0}
	if _, err := c.Write(disconnect); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, disconnect) {
		t.Fatalf("peer got %x, want %x then end of stream", got, disconnect)
	}
	if _, err := c.Write(disconnect); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// TestBufferedStuckWriteFailsLaterWrites: a broker that stops reading
// makes the writer's write time out; the writes after it fail (paho sees
// the connection lost), whatever write deadline paho sets.
func TestBufferedStuckWriteFailsLaterWrites(t *testing.T) {
	c, _, _ := pipe(t, 100*time.Millisecond)
	_ = c.SetWriteDeadline(time.Time{}) // paho's reset after each write: no effect
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = c.Write(chunk)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writes to a peer that never reads: %v, want a deadline exceeded", err)
	}
	if _, err := c.Write([]byte{1}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after the failed one: %v, want the same error", err)
	}
	// paho's reader must learn of it at once (it would otherwise wait for
	// a keepalive, and a failed ping is only logged): the connection is
	// closed under it, so its read fails instead of waiting for the peer,
	// which sends nothing.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the failed write: %v, want the connection closed", err)
	}
}

// TestDialAcknowledgesWhatArrivesAtOnce: a broker with Nagle's
// algorithm on (mosquitto's default, set_tcp_nodelay false) holds a small
// packet while its previous one is unacknowledged; a client that sends
// nothing meanwhile (a register waiting for head office's ack after its
// last PUBLISH) would acknowledge only when its delayed-ACK timer fires,
// 40 ms on Linux. Dial's connection acknowledges what it reads at once,
// so the second of two small packets follows the first within a round
// trip.
func TestDialAcknowledgesWhatArrivesAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_QUICKACK is Linux's")
	}
	c, peer := dialLoopback(t, func(u *url.URL) (net.Conn, error) {
		return broker.QuickAcked(time.Second)(u, *mqtt.NewClientOptions())
	})
	if err := peer.(*net.TCPConn).SetNoDelay(false); err != nil { // Nagle on, as mosquitto
		t.Fatal(err)
	}
	// The peer answers each byte it reads: '1' with one byte, '2' with
	// two written one after the other.
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := peer.Read(b); err != nil {
				return
			}
			_, _ = peer.Write([]byte{'a'})
			if b[0] == '2' {
				_, _ = peer.Write([]byte{'b'})
			}
		}
	}()
	one := make([]byte, 1)
	read := func() {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, one); err != nil {
			t.Fatal(err)
		}
	}
	// Request and answer for a while: the kernel then delays its ACKs,
	// expecting to send them with the next request.
	for range 50 {
		if _, err := c.Write([]byte{'1'}); err != nil {
			t.Fatal(err)
		}
		read()
	}
	best := time.Hour
	for range 5 {
		if _, err := c.Write([]byte{'2'}); err != nil {
			t.Fatal(err)
		}
		read()
		t0 := time.Now()
		read()
		best = min(best, time.Since(t0))
	}
	// Without the immediate ACK each second byte waits about 40 ms (42.6
	// measured); the best of five is far below that even on a loaded
	// machine, and 30 ms leaves a descheduled moment room.
	if best > 30*time.Millisecond {
		t.Fatalf("the second of two small packets came %v after the first (best of 5): its sender waited for a delayed ACK", best)
	}
}
