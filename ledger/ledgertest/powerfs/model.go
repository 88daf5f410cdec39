package powerfs

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// node is a file or a directory. What reads see (data, kids) and what
// survives a cut (disk, diskKids) are kept apart; pending holds a file's
// writes since its last sync, in order.
type node struct {
	ino   uint64
	dir   bool
	perm  uint32
	mtime time.Time

	data    []byte
	disk    []byte
	pending []change

	kids     map[string]*node
	diskKids map[string]*node
	dirDirty bool
}

// change is one unsynced write (or truncate, when trunc is set).
type change struct {
	seq   uint64
	off   int64
	data  []byte
	trunc bool
	size  int64
}

// model is the whole filesystem; every field is guarded by mu.
type model struct {
	mu      sync.Mutex
	syncMu  sync.Mutex // one sync at a time, as on a device queue
	nodes   map[uint64]*node
	nextIno uint64
	seq     uint64
	last    *node // the node of the most recent write
	cut     bool
	rng     *rand.Rand
	lat     Latency
	faults  []*Fault
	stats   Stats
}

func newModel(seed uint64, lat Latency) *model {
	m := &model{nodes: map[uint64]*node{}, nextIno: 1, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), lat: lat}
	m.newNode(true, 0o755) // ino 1: the root
	return m
}

func (m *model) newNode(dir bool, perm uint32) *node {
	n := &node{ino: m.nextIno, dir: dir, perm: perm & 0o7777, mtime: time.Now()}
	m.nextIno++
	if dir {
		n.kids = map[string]*node{}
		n.diskKids = map[string]*node{}
	}
	m.nodes[n.ino] = n
	return n
}

func (m *model) root() *node { return m.nodes[1] }

// fault returns the errno an armed fault injects into this operation.
func (m *model) fault(op Op) syscall.Errno {
	for i, f := range m.faults {
		if f.Op != op {
			continue
		}
		if f.N > 1 {
			f.N--
			continue
		}
		if !f.Sticky {
			m.faults = slices.Delete(m.faults, i, i+1)
		}
		m.stats.Faults++
		return f.Errno
	}
	return 0
}

// write applies a write to what reads see and remembers it until a sync.
func (m *model) write(n *node, off int64, p []byte) {
	end := off + int64(len(p))
	if end > int64(len(n.data)) {
		n.data = grow(n.data, end)
	}
	copy(n.data[off:], p)
	m.seq++
	n.pending = append(n.pending, change{seq: m.seq, off: off, data: slices.Clone(p)})
	m.last = n
	n.mtime = time.Now()
	m.stats.Writes++
	m.stats.BytesWritten += int64(len(p))
}

func (m *model) truncate(n *node, size int64) {
	if size > int64(len(n.data)) {
		n.data = grow(n.data, size)
	} else {
		clear(n.data[size:])
		n.data = n.data[:size]
	}
	m.seq++
	n.pending = append(n.pending, change{seq: m.seq, trunc: true, size: size})
	n.mtime = time.Now()
}

// grow extends b with zeros to size, keeping spare capacity so that a
// file written at its end does not copy itself on every write.
func grow(b []byte, size int64) []byte {
	if int64(cap(b)) >= size {
		old := len(b)
		b = b[:size]
		clear(b[old:])
		return b
	}
	nb := make([]byte, size, size+size/4+4096)
	copy(nb, b)
	return nb
}

// persist makes a file's pending changes durable.
func (n *node) persist() {
	for _, c := range n.pending {
		n.disk = c.applyTo(n.disk)
	}
	n.pending = nil
}

func (c change) applyTo(b []byte) []byte {
	if c.trunc {
		if c.size > int64(len(b)) {
			return grow(b, c.size)
		}
		return b[:c.size]
	}
	end := c.off + int64(len(c.data))
	if end > int64(len(b)) {
		b = grow(b, end)
	}
	copy(b[c.off:], c.data)
	return b
}

// powerCut drops everything unsynced; with tear, a random 512-byte-aligned
// prefix of the last unsynced write reaches the card first.
func (m *model) powerCut(tear bool) (torn int) {
	m.cut = true
	torn = -1
	if tear && m.last != nil && len(m.last.pending) > 0 {
		c := m.last.pending[len(m.last.pending)-1]
		if !c.trunc && c.seq == m.seq {
			// Sector boundaries inside the write, plus both ends.
			bounds := []int64{c.off}
			for b := (c.off/512 + 1) * 512; b < c.off+int64(len(c.data)); b += 512 {
				bounds = append(bounds, b)
			}
			bounds = append(bounds, c.off+int64(len(c.data)))
			end := bounds[m.rng.IntN(len(bounds))]
			if end > c.off {
				m.last.disk = change{off: c.off, data: c.data[:end-c.off]}.applyTo(m.last.disk)
			}
			torn = int(end - c.off)
		}
	}
	for _, n := range m.nodes {
		n.pending = nil
		n.data = nil // nothing reads them any more
	}
	return torn
}

// saveImage writes the tree to dir, which it empties first: what is on
// the card (durable) or, after an orderly shutdown, everything.
func (m *model) saveImage(dir string, durable bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	var walk func(n *node, path string) error
	walk = func(n *node, path string) error {
		kids := n.kids
		if durable {
			kids = n.diskKids
		}
		for _, name := range sortedNames(kids) {
			k := kids[name]
			p := filepath.Join(path, name)
			if k.dir {
				if err := os.Mkdir(p, os.FileMode(k.perm)|0o700); err != nil {
					return err
				}
				if err := walk(k, p); err != nil {
					return err
				}
				continue
			}
			b := k.data
			if durable {
				b = k.disk
			}
			if err := os.WriteFile(p, b, os.FileMode(k.perm)|0o600); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(m.root(), dir)
}

// loadImage reads a tree written by saveImage (or any folder) as the
// starting state: all of it on the card.
func (m *model) loadImage(dir string) error {
	var walk func(n *node, path string) error
	walk = func(n *node, path string) error {
		ents, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := filepath.Join(path, e.Name())
			fi, err := e.Info()
			if err != nil {
				return err
			}
			k := m.newNode(e.IsDir(), uint32(fi.Mode().Perm()))
			n.kids[e.Name()] = k
			n.diskKids[e.Name()] = k
			if e.IsDir() {
				if err := walk(k, p); err != nil {
					return err
				}
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			k.data, k.disk = b, slices.Clone(b)
		}
		return nil
	}
	return walk(m.root(), dir)
}
