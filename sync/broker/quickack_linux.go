package broker

import (
	"crypto/tls"
	"net"
	"syscall"
)

// quickAck returns a reader of c that, after each read from a TCP
// connection, asks the kernel to acknowledge what arrived at once
// (TCP_QUICKACK; Linux leaves quick-ack mode again on its own, so it is
// asked after every read). Other connections are read as they are.
func quickAck(c net.Conn) readerFunc {
	tc := c
	if t, ok := c.(*tls.Conn); ok {
		tc = t.NetConn()
	}
	sc, ok := tc.(*net.TCPConn) // not a unix socket: no TCP_QUICKACK there
	if !ok {
		return c.Read
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c.Read
	}
	var serr error
	set := func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1) }
	if err := raw.Control(set); err != nil || serr != nil {
		return c.Read // refused once: not asked again on every read
	}
	return func(p []byte) (int, error) {
		n, err := c.Read(p)
		if n > 0 {
			_ = raw.Control(set) // a socket that took it once takes it again
		}
		return n, err
	}
}
