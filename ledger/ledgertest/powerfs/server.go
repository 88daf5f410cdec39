package powerfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Op names the operations a Fault can hit.
type Op string

const (
	OpWrite Op = "write" // write(2) and fallocate(2)
	OpSync  Op = "sync"  // fsync(2) and fdatasync(2), of files and directories
)

// Fault makes the Nth operation Op from now (N >= 1) fail with Errno;
// with Sticky every later one fails too (a full or dead card).
type Fault struct {
	Op     Op
	N      int
	Errno  syscall.Errno
	Sticky bool
}

// Latency is how long a sync with something to write takes: a log-normal
// spread around Median, and now and then a spike drawn uniformly from
// [SpikeMin, SpikeMax].
type Latency struct {
	Median    time.Duration
	Sigma     float64 // spread of the log-normal; 0 means always Median
	SpikeProb float64
	SpikeMin  time.Duration
	SpikeMax  time.Duration
}

// SDCard is a Raspberry Pi's SD card: about 4 ms a sync, one in fifty
// taking 35-76 ms (docs and measurements in the sync brief).
func SDCard() Latency {
	return Latency{Median: 4 * time.Millisecond, Sigma: 0.3, SpikeProb: 0.02, SpikeMin: 35 * time.Millisecond, SpikeMax: 76 * time.Millisecond}
}

func (l Latency) draw(r *rand.Rand) time.Duration {
	if l.SpikeProb > 0 && r.Float64() < l.SpikeProb {
		return l.SpikeMin + time.Duration(r.Int64N(int64(l.SpikeMax-l.SpikeMin)+1))
	}
	if l.Sigma <= 0 {
		return l.Median
	}
	return time.Duration(float64(l.Median) * math.Exp(l.Sigma*r.NormFloat64()))
}

// Stats counts what the filesystem was asked to do since it was mounted.
type Stats struct {
	Writes       int64
	BytesWritten int64
	Syncs        int64         // file and directory syncs, with or without anything to write
	SyncTime     time.Duration // latency added to syncs
	Faults       int64         // injected errors returned
}

// The server process: the parent starts the test binary again with these
// variables set; init serves and exits before any test runs.
const (
	envMount   = "POWERFS_SERVE_MOUNT"
	envBacking = "POWERFS_SERVE_BACKING"
	envConfig  = "POWERFS_SERVE_CONFIG"
)

func init() {
	if mnt := os.Getenv(envMount); mnt != "" {
		os.Exit(serve(mnt, os.Getenv(envBacking), os.Getenv(envConfig)))
	}
}

type serverConfig struct {
	Latency Latency
	Seed    uint64
}

// request and reply are the control protocol: one JSON object a line on
// the server's stdin and stdout.
type request struct {
	Op      string
	Tear    bool
	Fault   Fault
	Latency Latency
	Seed    uint64
}

type reply struct {
	Ready       bool   `json:",omitempty"`
	Err         string `json:",omitempty"`
	Unavailable bool   `json:",omitempty"`
	Torn        int    `json:",omitempty"`
	Stats       Stats
}

func serve(mnt, backing, config string) int {
	out := json.NewEncoder(os.Stdout)
	var cfg serverConfig
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		_ = out.Encode(reply{Err: "config: " + err.Error()})
		return 1
	}
	mt, rep := mountImage(mnt, backing, cfg)
	_ = out.Encode(rep)
	if mt == nil {
		return 1
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var req request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			_ = out.Encode(reply{Err: err.Error()})
			continue
		}
		m := mt.m
		var rep reply
		switch req.Op {
		case "unmount", "remount":
			if err := mt.unmount(backing); err != nil {
				rep.Err = err.Error()
			}
			m.mu.Lock()
			rep.Stats = m.stats
			m.mu.Unlock()
			if req.Op == "unmount" || rep.Err != "" {
				_ = out.Encode(rep)
				return 0
			}
			cfg.Seed = req.Seed
			mt, rep = mountImage(mnt, backing, cfg)
			_ = out.Encode(rep)
			if mt == nil {
				return 1
			}
			continue
		}
		m.mu.Lock()
		switch req.Op {
		case "cut":
			if !m.cut {
				rep.Torn = m.powerCut(req.Tear)
				if err := m.saveImage(backing, true); err != nil {
					rep.Err = err.Error()
				}
			}
		case "fail":
			f := req.Fault
			if f.N < 1 || (f.Op != OpWrite && f.Op != OpSync) || f.Errno == 0 {
				rep.Err = fmt.Sprintf("bad fault %+v", f)
			} else {
				m.faults = append(m.faults, &f)
			}
		case "clear":
			m.faults = nil
		case "latency":
			m.lat = req.Latency
		case "stats":
		default:
			rep.Err = "unknown op " + req.Op
		}
		rep.Stats = m.stats
		m.mu.Unlock()
		_ = out.Encode(rep)
	}
	// The parent is gone: do not leave a mount behind.
	mt.m.mu.Lock()
	mt.m.cut = true
	mt.m.mu.Unlock()
	_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
	return 0
}

// mounted is one mount of an image.
type mounted struct {
	mnt    string
	m      *model
	served chan struct{}
}

// mountImage loads the image in backing and mounts it on mnt.
func mountImage(mnt, backing string, cfg serverConfig) (*mounted, reply) {
	m := newModel(cfg.Seed, cfg.Latency)
	if err := m.loadImage(backing); err != nil {
		return nil, reply{Err: "load image: " + err.Error()}
	}
	srv, err := fuse.NewServer(&rawFS{RawFileSystem: fuse.NewDefaultRawFileSystem(), m: m}, mnt, &fuse.MountOptions{
		DirectMount: true, FsName: "powerfs", Name: "powerfs",
		DisableReadDirPlus: true, DisableXAttrs: true, MaxBackground: 64,
	})
	if err != nil {
		return nil, reply{Err: fmt.Sprintf("mount %s: %v", mnt, err),
			Unavailable: errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENODEV) || errors.Is(err, os.ErrNotExist)}
	}
	mt := &mounted{mnt: mnt, m: m, served: make(chan struct{})}
	go func() { srv.Serve(); close(mt.served) }()
	if err := srv.WaitMount(); err != nil {
		return nil, reply{Err: fmt.Sprintf("mount %s: %v", mnt, err)}
	}
	return mt, reply{Ready: true}
}

// unmount takes the filesystem off its mount point. Without a cut before,
// it is an orderly shutdown: everything reaches the card.
func (mt *mounted) unmount(backing string) error {
	for try := 0; ; try++ {
		err := syscall.Unmount(mt.mnt, 0)
		if err == nil {
			break
		}
		if try == 20 {
			// Still busy (a killed writer's files are closed
			// asynchronously): detach; the kernel finishes when the
			// last file closes.
			if err := syscall.Unmount(mt.mnt, syscall.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", mt.mnt, err)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-mt.served:
	case <-time.After(2 * time.Second):
	}
	m := mt.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.cut {
		m.cut = true // nothing more reaches this image
		if err := m.saveImage(backing, false); err != nil {
			return err
		}
	}
	return nil
}

func sortedNames(kids map[string]*node) []string {
	names := make([]string, 0, len(kids))
	for k := range kids {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
