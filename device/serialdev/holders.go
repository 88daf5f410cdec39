package serialdev

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Holder is another process that has a device open.
type Holder struct {
	PID  int
	Comm string // the process name from /proc/PID/comm, e.g. "cat"
}

func (h Holder) String() string {
	if h.Comm == "" {
		return "pid " + strconv.Itoa(h.PID)
	}
	return fmt.Sprintf("pid %d (%s)", h.PID, h.Comm)
}

// Holders lists the other processes that have the device at path open, as
// far as /proc shows them (processes of other users are invisible without
// privileges). Left out are this process and, for a pseudo-terminal, every
// process that holds its master side: that is the "device" end (a
// simulator, socat, a test), not a competing reader. A nil result means
// no other holder was found.
//
// A descriptor whose /proc name is the device's is a holder only if it is
// the same file (device and inode): another devpts instance (a container's,
// a mount namespace's) numbers its pseudo-terminals from 0 too, and /proc
// names them /dev/pts/N all the same.
func Holders(path string) []Holder {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil
	}
	var dev unix.Stat_t
	if err := unix.Stat(real, &dev); err != nil {
		return nil
	}
	same := func(fdPath string) bool {
		var st unix.Stat_t
		return unix.Stat(fdPath, &st) == nil && st.Dev == dev.Dev && st.Ino == dev.Ino
	}
	ptyIndex := ""
	if rest, ok := strings.CutPrefix(real, "/dev/pts/"); ok {
		ptyIndex = rest
	}
	self := os.Getpid()
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Holder
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		holds, master := false, false
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil {
				continue
			}
			switch {
			case target == real:
				holds = holds || same(filepath.Join(fdDir, fd.Name()))
			case ptyIndex != "" && (target == "/dev/ptmx" || target == "/dev/pts/ptmx"):
				if ptyMasterIndex(filepath.Join("/proc", p.Name(), "fdinfo", fd.Name())) == ptyIndex {
					master = true
				}
			}
		}
		if holds && !master {
			comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
			out = append(out, Holder{PID: pid, Comm: strings.TrimSpace(string(comm))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// ptyMasterIndex reads "tty-index:" from a ptmx descriptor's fdinfo.
func ptyMasterIndex(fdinfo string) string {
	b, err := os.ReadFile(fdinfo)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "tty-index:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// heldError is the busy error naming the holders.
func heldError(path string, hs []Holder) error {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.String()
	}
	return fmt.Errorf("open %s: %w: held by %s", path, errBusy, strings.Join(names, ", "))
}

// openWatch reports opens of a device node by anyone (inotify IN_OPEN),
// so the cost of looking for holders (a walk of /proc) is only paid when
// somebody opened the port.
type openWatch struct{ fd int }

// watchOpens watches path for opens; nil when inotify is not available
// (the caller then looks for holders now and then instead).
func watchOpens(path string) *openWatch {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	if _, err := unix.InotifyAddWatch(fd, real, unix.IN_OPEN); err != nil {
		unix.Close(fd)
		return nil
	}
	return &openWatch{fd: fd}
}

// opened drains the pending events and reports whether there were any.
func (w *openWatch) opened() bool {
	var buf [4096]byte
	any := false
	for {
		n, err := unix.Read(w.fd, buf[:])
		if n <= 0 || err != nil {
			return any
		}
		any = true
	}
}

func (w *openWatch) close() { unix.Close(w.fd) }
