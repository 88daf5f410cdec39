package powerfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// Options configures Mount. A nil *Options means defaults.
type Options struct {
	// Dir is the mount point; default a new t.TempDir(). Mount the same
	// Dir and Backing again after Unmount to open the surviving image at
	// the same paths.
	Dir string
	// Backing holds the image between mounts; default a new t.TempDir().
	Backing string
	// Latency delays syncs; zero means none.
	Latency Latency
	// Seed makes tears and latencies repeatable.
	Seed uint64
}

// FS is a mounted test filesystem. Its methods are safe for concurrent use.
type FS struct {
	// Dir is where the filesystem is mounted.
	Dir string
	// Backing is the folder that holds the image between mounts.
	Backing string

	mu      sync.Mutex
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Scanner
	done    bool
	waitErr chan error
}

// ErrUnmounted: the filesystem was already unmounted.
var ErrUnmounted = errors.New("powerfs: unmounted")

// Mount mounts a filesystem over o.Dir whose image is o.Backing. It skips
// the test when FUSE is unavailable here, and fails it instead when env CI
// is set. The filesystem is unmounted when the test ends, also when it
// fails (lazily if it is still busy).
func Mount(t testing.TB, o *Options) *FS {
	t.Helper()
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Backing == "" {
		opts.Backing = t.TempDir()
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if err := available(); err != nil {
		unavailable(t, err)
	}
	cfg, err := json.Marshal(serverConfig{Latency: opts.Latency, Seed: opts.Seed})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envMount+"="+opts.Dir, envBacking+"="+opts.Backing, envConfig+"="+string(cfg))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("powerfs: start server: %v", err)
	}
	f := &FS{Dir: opts.Dir, Backing: opts.Backing, cmd: cmd, in: in, out: bufio.NewScanner(outR), waitErr: make(chan error, 1)}
	f.out.Buffer(make([]byte, 64<<10), 1<<20)
	t.Cleanup(f.cleanup)
	rep, err := f.read()
	switch {
	case err != nil:
		t.Fatalf("powerfs: server did not start: %v", err)
	case rep.Unavailable:
		unavailable(t, errors.New(rep.Err))
	case rep.Err != "" || !rep.Ready:
		t.Fatalf("powerfs: %s", rep.Err)
	}
	return f
}

// available reports why FUSE cannot work here, or nil.
func available() error {
	fd, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("/dev/fuse: %w", err)
	}
	_ = fd.Close()
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			return errors.New("not root and no fusermount3 on PATH")
		}
	}
	return nil
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	testkit.Missing(t, "FUSE", fmt.Sprintf("%v: the power-cut tests need /dev/fuse and root or fusermount3 (Debian package fuse3, `make testdeps`)", err))
}

func (f *FS) read() (reply, error) {
	if !f.out.Scan() {
		err := f.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return reply{}, fmt.Errorf("powerfs server: %w", err)
	}
	var rep reply
	if err := json.Unmarshal(f.out.Bytes(), &rep); err != nil {
		return reply{}, fmt.Errorf("powerfs server said %q: %w", f.out.Bytes(), err)
	}
	return rep, nil
}

func (f *FS) do(req request) (reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return reply{}, ErrUnmounted
	}
	b, err := json.Marshal(req)
	if err != nil {
		return reply{}, err
	}
	if _, err := f.in.Write(append(b, '\n')); err != nil {
		return reply{}, fmt.Errorf("powerfs server: %w", err)
	}
	rep, err := f.read()
	if err == nil && rep.Err != "" {
		err = fmt.Errorf("powerfs %s: %s", req.Op, rep.Err)
	}
	return rep, err
}

// Cut is the power cut: everything not synced is dropped (with tear, a
// random 512-byte-aligned prefix of the last unsynced write survives), the
// card's image is written to Backing, and every later operation on the
// mount fails with EIO. It returns how many bytes of the last write were
// kept by the tear (-1: none torn).
func (f *FS) Cut(tear bool) (int, error) {
	rep, err := f.do(request{Op: "cut", Tear: tear})
	return rep.Torn, err
}

// Fail arms a fault.
func (f *FS) Fail(flt Fault) error {
	_, err := f.do(request{Op: "fail", Fault: flt})
	return err
}

// ClearFaults disarms every fault.
func (f *FS) ClearFaults() error {
	_, err := f.do(request{Op: "clear"})
	return err
}

// SetLatency replaces the sync latency profile.
func (f *FS) SetLatency(l Latency) error {
	_, err := f.do(request{Op: "latency", Latency: l})
	return err
}

// Stats returns the counters since the mount.
func (f *FS) Stats() (Stats, error) {
	rep, err := f.do(request{Op: "stats"})
	return rep.Stats, err
}

// Remount unmounts the filesystem (an orderly shutdown unless Cut came
// first) and mounts the image that survived again at the same place, with
// a new seed for tears and latencies. Close the files on the mount (and
// stop the processes using it) first. It is Unmount and Mount without
// starting a new server process.
func (f *FS) Remount(seed uint64) error {
	_, err := f.do(request{Op: "remount", Seed: seed})
	return err
}

// Unmount unmounts the filesystem. Without a Cut before it, it is an
// orderly shutdown and everything written is kept. Close the files on the
// mount (and stop the processes using it) first.
func (f *FS) Unmount() error {
	_, err := f.do(request{Op: "unmount"})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return err
	}
	f.done = true
	_ = f.in.Close()
	werr := f.wait(5 * time.Second)
	if err == nil {
		err = werr
	}
	return err
}

func (f *FS) wait(d time.Duration) error {
	go func() { f.waitErr <- f.cmd.Wait() }()
	select {
	case err := <-f.waitErr:
		return err
	case <-time.After(d):
		_ = f.cmd.Process.Kill()
		_ = syscall.Unmount(f.Dir, syscall.MNT_DETACH)
		return errors.New("powerfs: server did not exit; killed it and detached the mount")
	}
}

// cleanup runs when the test ends: a mount still in place goes, lazily
// if busy, and the server process with it.
func (f *FS) cleanup() {
	f.mu.Lock()
	done := f.done
	f.mu.Unlock()
	if done {
		return
	}
	if err := f.Unmount(); err != nil {
		_ = syscall.Unmount(f.Dir, syscall.MNT_DETACH)
	}
}
