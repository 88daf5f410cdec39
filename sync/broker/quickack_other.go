//go:build !linux

package broker

import "net"

// quickAck returns c's reader: TCP_QUICKACK is Linux's.
func quickAck(c net.Conn) readerFunc { return c.Read }
