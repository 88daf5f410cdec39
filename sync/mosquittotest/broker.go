package mosquittotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// Options configures Start. A nil *Options means defaults: anonymous access,
// no persistence, mosquitto's own queue limits.
type Options struct {
	// Binary is the mosquitto executable. Default: $MOSQUITTO, then
	// "mosquitto" on $PATH.
	Binary string
	// Persistence keeps sessions and queued messages in a file in Dir
	// (written on clean stop and every AutosaveInterval seconds).
	Persistence bool
	// AutosaveInterval is persistence's autosave_interval in seconds;
	// 0 means mosquitto's default (1800).
	AutosaveInterval int
	// Dir holds config, log, password, ACL and persistence files. Default:
	// t.TempDir(). Pass the same Dir to a second Start to reuse persistence.
	Dir string
	// Users maps user names to passwords. When set, anonymous access is off
	// and a password file is generated with mosquitto_passwd.
	Users map[string]string
	// ACL is the content of an ACL file (mosquitto acl_file syntax), used
	// when non-empty.
	ACL string
	// MaxQueuedMessages sets max_queued_messages (per client); 0 keeps
	// mosquitto's default of 1000. Above the limit mosquitto drops silently.
	MaxQueuedMessages int
	// MaxInflightMessages sets max_inflight_messages; 0 keeps the default 20.
	MaxInflightMessages int
	// TLS, when set, makes the listener a TLS listener.
	TLS *TLS
	// Extra lines appended to the generated config.
	Extra []string
	// StartTimeout bounds the wait for the port to accept connections.
	// Default 10s.
	StartTimeout time.Duration
}

// TLS configures a TLS listener. Paths are PEM files.
type TLS struct {
	CAFile, CertFile, KeyFile string
	// RequireCertificate asks clients for a certificate signed by CAFile.
	RequireCertificate bool
	// IdentityAsUsername uses the client certificate's CN as user name (for
	// ACL patterns with %u).
	IdentityAsUsername bool
}

// Broker is a running (or killed) mosquitto.
type Broker struct {
	t    testing.TB
	opts Options
	port int
	dir  string
	conf string
	log  string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the current process has been reaped.
	exited chan struct{}
}

// Start starts mosquitto and registers its stop with t.Cleanup. When no
// mosquitto binary is found it skips the test, or fails it when the CI
// environment variable is set (testkit.Missing).
func Start(t testing.TB, opts *Options) *Broker {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Binary == "" {
		o.Binary = findBinary()
		if o.Binary == "" {
			testkit.Missing(t, "mosquitto", "no $MOSQUITTO and not on $PATH (Debian puts it in /usr/sbin; make testdeps installs it)")
			return nil
		}
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 10 * time.Second
	}
	b := &Broker{t: t, opts: o, dir: o.Dir,
		conf: filepath.Join(o.Dir, "mosquitto.conf"), log: filepath.Join(o.Dir, "mosquitto.log")}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("mosquittotest: free port: %v", err)
		}
		b.port = port
		if err := b.writeConfig(); err != nil {
			t.Fatalf("mosquittotest: %v", err)
		}
		if lastErr = b.start(); lastErr == nil {
			t.Cleanup(b.Stop)
			return b
		}
	}
	t.Fatalf("mosquittotest: start: %v\n%s", lastErr, b.Log())
	return nil
}

func findBinary() string {
	if p := os.Getenv("MOSQUITTO"); p != "" {
		return p
	}
	// Only $PATH: a broker hidden in a fixed directory would make "is
	// mosquitto there?" depend on more than the environment the test runs
	// in. The Makefile adds the sbin directories to $PATH.
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	return ""
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before mosquitto binds; Start retries with a new port then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *Broker) writeConfig() error {
	o := b.opts
	var c strings.Builder
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", b.port)
	if os.Getuid() == 0 {
		// Stay root: the generated files live in a root-owned temp dir.
		c.WriteString("user root\n")
	}
	c.WriteString("log_dest file " + b.log + "\n")
	c.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	c.WriteString("connection_messages true\n")
	if o.Persistence {
		c.WriteString("persistence true\npersistence_location " + b.dir + "/\n")
		if o.AutosaveInterval > 0 {
			fmt.Fprintf(&c, "autosave_interval %d\n", o.AutosaveInterval)
		}
	}
	if o.MaxQueuedMessages > 0 {
		fmt.Fprintf(&c, "max_queued_messages %d\n", o.MaxQueuedMessages)
	}
	if o.MaxInflightMessages > 0 {
		fmt.Fprintf(&c, "max_inflight_messages %d\n", o.MaxInflightMessages)
	}
	if len(o.Users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		if err := writePasswords(pw, o.Users); err != nil {
			return err
		}
		c.WriteString("allow_anonymous false\npassword_file " + pw + "\n")
	} else if o.TLS == nil || !o.TLS.IdentityAsUsername {
		c.WriteString("allow_anonymous true\n")
	}
	if o.ACL != "" {
		acl := filepath.Join(b.dir, "acl")
		if err := os.WriteFile(acl, []byte(o.ACL), 0o600); err != nil {
			return fmt.Errorf("write acl: %w", err)
		}
		c.WriteString("acl_file " + acl + "\n")
	}
	if o.TLS != nil {
		fmt.Fprintf(&c, "cafile %s\ncertfile %s\nkeyfile %s\n", o.TLS.CAFile, o.TLS.CertFile, o.TLS.KeyFile)
		fmt.Fprintf(&c, "require_certificate %t\nuse_identity_as_username %t\n", o.TLS.RequireCertificate, o.TLS.IdentityAsUsername)
	}
	for _, l := range o.Extra {
		c.WriteString(l + "\n")
	}
	return os.WriteFile(b.conf, []byte(c.String()), 0o600)
}

func writePasswords(path string, users map[string]string) error {
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return fmt.Errorf("write passwd: %w", err)
	}
	for u, p := range users {
		out, err := exec.Command("mosquitto_passwd", "-b", path, u, p).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mosquitto_passwd %s: %w: %s", u, err, out)
		}
	}
	return nil
}

func (b *Broker) start() error {
	running := strings.Count(b.Log(), " running") // "mosquitto version x running" of earlier starts
	cmd := exec.Command(b.opts.Binary, "-c", b.conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.mu.Lock()
	b.cmd, b.exited = cmd, exited
	b.mu.Unlock()
	deadline := time.Now().Add(b.opts.StartTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("mosquitto exited at start: %s", out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", b.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			// The answer is this mosquitto's only once its log says it
			// runs: a process that took the port before it (Start's
			// freePort, or during a Restart) answers too.
			if strings.Count(b.Log(), " running") > running {
				return nil
			}
		}
		if time.Now().After(deadline) {
			b.signal(syscall.SIGKILL)
			return fmt.Errorf("mosquitto did not listen on %s within %v", b.Addr(), b.opts.StartTimeout)
		}
		time.Sleep(10 * time.Millisecond) // poll interval while waiting for the port
	}
}

// Addr is host:port of the listener.
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// URL is the broker URL for paho: tcp://127.0.0.1:port (ssl:// with TLS).
func (b *Broker) URL() string {
	if b.opts.TLS != nil {
		return "ssl://" + b.Addr()
	}
	return "tcp://" + b.Addr()
}

// Port is the listener's port; it stays the same across Restart.
func (b *Broker) Port() int { return b.port }

// Dir is the directory holding the config, log and persistence files.
func (b *Broker) Dir() string { return b.dir }

// PID is the current process id, 0 when not running.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Running reports whether the broker process is alive.
func (b *Broker) Running() bool {
	b.mu.Lock()
	ex := b.exited
	b.mu.Unlock()
	if ex == nil {
		return false
	}
	select {
	case <-ex:
		return false
	default:
		return true
	}
}

// signal sends sig and waits (bounded) for the process to be reaped.
func (b *Broker) signal(sig syscall.Signal) {
	b.mu.Lock()
	cmd, ex := b.cmd, b.exited
	b.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-ex:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-ex:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-ex
	}
}

// Reload makes the broker re-read its configuration, certificates and
// revocation list (SIGHUP), as `systemctl reload mosquitto` does; the
// connections it has stay up.
func (b *Broker) Reload() {
	b.mu.Lock()
	cmd := b.cmd
	b.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGHUP)
	}
}

// Kill stops the broker with SIGKILL, as a crash would: no persistence save,
// no clean disconnects, last wills published only on restart for
// persisted sessions.
func (b *Broker) Kill() { b.signal(syscall.SIGKILL) }

// Stop stops the broker with SIGTERM (clean shutdown, persistence saved).
// It is safe to call more than once.
func (b *Broker) Stop() { b.signal(syscall.SIGTERM) }

// Restart starts the broker again on the same port with the same config and
// persistence directory. It kills a still-running broker first.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Kill()
	var err error
	deadline := time.Now().Add(b.opts.StartTimeout)
	for {
		// The port can stay busy for a moment after a kill; retry on the same
		// port until the deadline rather than moving to another.
		if err = b.start(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquittotest: restart on %s: %v\n%s", b.Addr(), err, b.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log returns mosquitto's log so far (for failure messages).
func (b *Broker) Log() string {
	data, err := os.ReadFile(b.log)
	if err != nil {
		return ""
	}
	return string(data)
}
