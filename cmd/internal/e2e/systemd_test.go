package e2e_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdNotifyAndWatchdog runs loyaltyd as systemd would for a
// Type=notify unit with WatchdogSec: it must say READY=1 once it serves,
// ping WATCHDOG=1 regularly, and say STOPPING=1 on SIGTERM.
func TestSystemdNotifyAndWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	r := newRegister(t)
	r.env = []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=300000"}
	r.start()
	want := func(what string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, what) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s from loyaltyd\n%s", what, r.logs())
			}
		}
	}
	want("READY=1")
	want("WATCHDOG=1")
	want("WATCHDOG=1")
	if _, err := r.term(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	want("STOPPING=1")
}
