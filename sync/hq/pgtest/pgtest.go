package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// ErrMissing reports that PostgreSQL's server binaries were not found.
var ErrMissing = errors.New("pgtest: PostgreSQL server binaries not found")

// Options configures Start.
type Options struct {
	// Durable keeps fsync on (benchmarks that measure commits); tests
	// leave it off, which survives a killed server but not a power cut.
	Durable bool
	// Settings are extra postgres -c settings.
	Settings map[string]string
}

// Server is a running throwaway cluster.
type Server struct {
	bin      string
	dir      string
	port     int
	password string
	opts     Options
	cred     *syscall.Credential
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	schemas  int
}

// User is the superuser the cluster is made with.
const User = "loyalty"

// FindBin returns the folder of PostgreSQL's server binaries: $PG_BIN,
// else the newest /usr/lib/postgresql/<version>/bin, else the folder of
// initdb on PATH.
func FindBin() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%w: PG_BIN=%s has no initdb", ErrMissing, d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w: not in /usr/lib/postgresql/*/bin, $PG_BIN or PATH; make testdeps installs Debian's postgresql", ErrMissing)
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start makes and starts a new cluster.
func Start(opts Options) (*Server, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	s := &Server{bin: bin, dir: dir, password: hex.EncodeToString(pw), opts: opts}
	if err := s.init(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for try := 0; ; try++ {
		if s.port, err = freePort(); err == nil {
			if err = s.start(); err == nil {
				return s, nil
			}
		}
		if try == 3 {
			s.Close()
			return nil, err
		}
	}
}

// init runs initdb as an unprivileged user when running as root.
func (s *Server) init() error {
	if os.Geteuid() == 0 {
		var u *user.User
		var err error
		for _, name := range []string{"postgres", "nobody"} {
			if u, err = user.Lookup(name); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("pgtest: running as root and no postgres or nobody user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return err
		}
	}
	pwfile := filepath.Join(s.dir, "pw")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		if err := os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return err
		}
	}
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", s.data(), "-U", User, "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	out, err := cmd.CombinedOutput()
	os.Remove(pwfile)
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	args := []string{"-D", s.data(), "-p", strconv.Itoa(s.port), "-h", "127.0.0.1", "-k", s.dir,
		"-c", "logging_collector=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB"}
	if !s.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for k, v := range s.opts.Settings {
		args = append(args, "-c", k+"="+v)
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.DSN(""))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("pgtest: postgres exited at start:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.stop(syscall.SIGKILL)
			return fmt.Errorf("pgtest: postgres not ready within 60s: %v\n%s", err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addr is the server's loopback address.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Password is the superuser's password.
func (s *Server) Password() string { return s.password }

// DSN returns a connection string for the superuser; with schema, the
// connection's search_path is that schema.
func (s *Server) DSN(schema string) string {
	d := fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", User, s.password, s.Addr())
	if schema != "" {
		d += "&search_path=" + schema
	}
	return d
}

// Schema creates a new, empty schema and returns its name and a DSN whose
// search_path is it: a test's own database, at the cost of one statement.
func (s *Server) Schema() (name, dsn string, err error) {
	s.mu.Lock()
	s.schemas++
	name = fmt.Sprintf("t%d", s.schemas)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN(""))
	if err != nil {
		return "", "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", "", err
	}
	return name, s.DSN(name), nil
}

// Log returns the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return string(b)
}

// PID is the postmaster's process id (0 when stopped).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	if sig == syscall.SIGKILL {
		// The postmaster's children die with it only eventually; kill the group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop shuts the server down ("fast": clients are disconnected).
func (s *Server) Stop() { s.stop(syscall.SIGINT) }

// Kill kills the server without a shutdown (crash recovery at the next
// start).
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

// Restart stops the server if it runs and starts it again on the same
// port and data.
func (s *Server) Restart() error {
	s.Stop()
	var err error
	for try := 0; try < 50; try++ {
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // the old port may linger briefly
	}
	return err
}

// Close stops the server and removes its folder.
func (s *Server) Close() {
	s.stop(syscall.SIGINT)
	os.RemoveAll(s.dir)
}

// Need returns srv, or ends the test when the package's TestMain could
// not start one (err): skipped, or failed naming PostgreSQL under CI.
func Need(t testing.TB, srv *Server, err error) *Server {
	t.Helper()
	if srv != nil {
		return srv
	}
	if errors.Is(err, ErrMissing) {
		testkit.Missing(t, "postgresql", err.Error())
	}
	t.Fatalf("pgtest: %v", err)
	return nil
}

// Main starts a server for a test package's TestMain and stops it after
// m.Run; start's result goes to set (keep it for Need).
func Main(m *testing.M, opts Options, set func(*Server, error)) int {
	srv, err := Start(opts)
	set(srv, err)
	code := m.Run()
	if srv != nil {
		srv.Close()
	}
	return code
}

// CPUTime is the processor time (user and system) the server has used so
// far: the postmaster and the processes it runs now, and those it ran
// that have exited. Linux only (it reads /proc); 0 elsewhere or stopped.
func (s *Server) CPUTime() time.Duration {
	pm := s.PID()
	if pm == 0 {
		return 0
	}
	ds, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	ticks := 0
	for _, d := range ds {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: state, ppid,
		// ... utime (12th), stime, cutime, cstime.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		n := 0
		switch {
		case pid == pm:
			n = 4 // with its exited children
		case ppid == pm:
			n = 2
		}
		for k := 0; k < n; k++ {
			v, _ := strconv.Atoi(f[11+k])
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's
// times (100 on every Linux this runs on).
const clockTicks = 100
