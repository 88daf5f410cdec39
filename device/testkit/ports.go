package testkit

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"
)

// FreeAddr asks the kernel for a free loopback port and returns its
// address. The port is free only until the child process it is handed to
// binds it: another process can take it in between. A test starting a
// child on it retries on a new port (PortTaken, MoveAddr) up to PortTries
// times, and counts the child up only when the child's own log shows it on
// the address, so a stranger answering on the port is never taken for it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// PortTries is how many ports a child's start tries before it gives up.
const PortTries = 5

// PortTaken reports whether a child's log says it could not bind its port.
func PortTaken(log string) bool { return strings.Contains(log, "address already in use") }

// MoveAddr replaces the address old, where it ends a line of the config
// file at path, by a new free port (FreeAddr) and returns the new address.
func MoveAddr(t testing.TB, path, old string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old+"\n")) {
		t.Fatalf("%s does not hold the address %s to move", path, old)
	}
	addr := FreeAddr(t)
	t.Logf("port %s taken by another process; trying %s", old, addr)
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(old+"\n"), []byte(addr+"\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return addr
}
