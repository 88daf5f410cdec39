package powerfs

import (
	"maps"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// rawFS serves the model over FUSE. Every operation takes the model's
// lock; a sync sleeps its latency before it does.
type rawFS struct {
	fuse.RawFileSystem // ENOSYS for what is not implemented here
	m                  *model
}

const (
	ttl         = time.Second
	maxFileSize = 1 << 32 // files live in memory; a bigger one is EFBIG
)

func (fs *rawFS) String() string { return "powerfs" }

func (fs *rawFS) attr(n *node, a *fuse.Attr) {
	*a = fuse.Attr{Ino: n.ino, Nlink: 1, Blksize: 4096}
	if n.dir {
		a.Mode = syscall.S_IFDIR | n.perm
		a.Nlink = 2
	} else {
		a.Mode = syscall.S_IFREG | n.perm
		a.Size = uint64(len(n.data))
		a.Blocks = (a.Size + 511) / 512
	}
	t := n.mtime
	a.SetTimes(&t, &t, &t)
}

func (fs *rawFS) entry(n *node, out *fuse.EntryOut) {
	out.NodeId = n.ino
	out.Generation = 1
	out.SetEntryTimeout(ttl)
	out.SetAttrTimeout(ttl)
	fs.attr(n, &out.Attr)
}

// get looks a node up under the lock; the status is EIO after a cut.
func (fs *rawFS) get(ino uint64) (*node, fuse.Status) {
	if fs.m.cut {
		return nil, fuse.EIO
	}
	n := fs.m.nodes[ino]
	if n == nil {
		return nil, fuse.ENOENT
	}
	return n, fuse.OK
}

func (fs *rawFS) dir(ino uint64) (*node, fuse.Status) {
	n, st := fs.get(ino)
	if st != fuse.OK {
		return nil, st
	}
	if !n.dir {
		return nil, fuse.ENOTDIR
	}
	return n, fuse.OK
}

func (fs *rawFS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	d, st := fs.dir(h.NodeId)
	if st != fuse.OK {
		return st
	}
	n := d.kids[name]
	if n == nil {
		return fuse.ENOENT
	}
	fs.entry(n, out)
	return fuse.OK
}

func (fs *rawFS) Forget(uint64, uint64) {}

func (fs *rawFS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	n, st := fs.get(in.NodeId)
	if st != fuse.OK {
		return st
	}
	out.SetTimeout(ttl)
	fs.attr(n, &out.Attr)
	return fuse.OK
}

func (fs *rawFS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	n, st := fs.get(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if sz, ok := in.GetSize(); ok {
		if n.dir {
			return fuse.EISDIR
		}
		if sz > maxFileSize {
			return fuse.Status(syscall.EFBIG)
		}
		fs.m.truncate(n, int64(sz))
	}
	if mode, ok := in.GetMode(); ok {
		n.perm = mode & 0o7777
	}
	if t, ok := in.GetMTime(); ok {
		n.mtime = t
	}
	out.SetTimeout(ttl)
	fs.attr(n, &out.Attr)
	return fuse.OK
}

// link adds a new node under parent: a directory change, unsynced.
func (fs *rawFS) link(parent uint64, name string, dir bool, perm uint32) (*node, fuse.Status) {
	d, st := fs.dir(parent)
	if st != fuse.OK {
		return nil, st
	}
	if d.kids[name] != nil {
		return nil, fuse.Status(syscall.EEXIST)
	}
	n := fs.m.newNode(dir, perm)
	d.kids[name] = n
	d.dirDirty = true
	d.mtime = time.Now()
	return n, fuse.OK
}

func (fs *rawFS) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	n, st := fs.link(in.NodeId, name, true, in.Mode)
	if st != fuse.OK {
		return st
	}
	fs.entry(n, out)
	return fuse.OK
}

func (fs *rawFS) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	n, st := fs.link(in.NodeId, name, false, in.Mode)
	if st != fuse.OK {
		return st
	}
	fs.entry(n, &out.EntryOut)
	return fuse.OK
}

func (fs *rawFS) unlink(parent uint64, name string, wantDir bool) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	d, st := fs.dir(parent)
	if st != fuse.OK {
		return st
	}
	n := d.kids[name]
	switch {
	case n == nil:
		return fuse.ENOENT
	case wantDir && !n.dir:
		return fuse.ENOTDIR
	case !wantDir && n.dir:
		return fuse.Status(syscall.EISDIR)
	case n.dir && len(n.kids) > 0:
		return fuse.Status(syscall.ENOTEMPTY)
	}
	delete(d.kids, name)
	d.dirDirty = true
	d.mtime = time.Now()
	return fuse.OK
}

func (fs *rawFS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return fs.unlink(h.NodeId, name, false)
}

func (fs *rawFS) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return fs.unlink(h.NodeId, name, true)
}

const renameNoReplace = 1 // RENAME_NOREPLACE

func (fs *rawFS) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	if in.Flags&^renameNoReplace != 0 {
		return fuse.EINVAL
	}
	src, st := fs.dir(in.NodeId)
	if st != fuse.OK {
		return st
	}
	dst, st := fs.dir(in.Newdir)
	if st != fuse.OK {
		return st
	}
	n := src.kids[oldName]
	if n == nil {
		return fuse.ENOENT
	}
	if old := dst.kids[newName]; old != nil && old != n {
		switch {
		case in.Flags&renameNoReplace != 0:
			return fuse.Status(syscall.EEXIST)
		case old.dir && !n.dir:
			return fuse.Status(syscall.EISDIR)
		case !old.dir && n.dir:
			return fuse.ENOTDIR
		case old.dir && len(old.kids) > 0:
			return fuse.Status(syscall.ENOTEMPTY)
		}
	}
	delete(src.kids, oldName)
	dst.kids[newName] = n
	src.dirDirty, dst.dirDirty = true, true
	now := time.Now()
	src.mtime, dst.mtime = now, now
	return fuse.OK
}

func (fs *rawFS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	n, st := fs.get(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if n.dir {
		return fuse.Status(syscall.EISDIR)
	}
	return fuse.OK
}

func (fs *rawFS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	n, st := fs.get(in.NodeId)
	if st != fuse.OK {
		return nil, st
	}
	off := int64(in.Offset)
	if off >= int64(len(n.data)) {
		return fuse.ReadResultData(nil), fuse.OK
	}
	k := copy(buf[:min(int64(in.Size), int64(len(buf)))], n.data[off:])
	return fuse.ReadResultData(buf[:k]), fuse.OK
}

func (fs *rawFS) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	n, st := fs.get(in.NodeId)
	if st != fuse.OK {
		return 0, st
	}
	if in.Offset+uint64(len(data)) > maxFileSize {
		return 0, fuse.Status(syscall.EFBIG)
	}
	if e := fs.m.fault(OpWrite); e != 0 {
		return 0, fuse.Status(e)
	}
	fs.m.write(n, int64(in.Offset), data)
	return uint32(len(data)), fuse.OK
}

func (fs *rawFS) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	n, st := fs.get(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if in.Mode != 0 {
		return fuse.Status(syscall.EOPNOTSUPP)
	}
	if in.Offset+in.Length > maxFileSize {
		return fuse.Status(syscall.EFBIG)
	}
	if e := fs.m.fault(OpWrite); e != 0 {
		return fuse.Status(e)
	}
	if end := int64(in.Offset + in.Length); end > int64(len(n.data)) {
		fs.m.truncate(n, end)
	}
	return fuse.OK
}

func (fs *rawFS) Flush(<-chan struct{}, *fuse.FlushIn) fuse.Status { return fuse.OK }
func (fs *rawFS) Release(<-chan struct{}, *fuse.ReleaseIn)         {}

// Fsync makes the file's pending writes durable, after the latency of the
// card when there is anything to write. A failed sync drops them.
func (fs *rawFS) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return fs.sync(in.NodeId, false)
}

func (fs *rawFS) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return fs.sync(in.NodeId, true)
}

func (fs *rawFS) sync(ino uint64, dir bool) fuse.Status {
	m := fs.m
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	n, st := fs.get(ino)
	if st != fuse.OK {
		m.mu.Unlock()
		return st
	}
	m.stats.Syncs++
	work := len(n.pending) > 0 || n.dirDirty
	var d time.Duration
	if work {
		d = m.lat.draw(m.rng)
	}
	m.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.SyncTime += d
	if m.cut {
		return fuse.EIO
	}
	if e := m.fault(OpSync); e != 0 {
		n.pending = nil // lost, while reads still see the data
		return fuse.Status(e)
	}
	if dir && n.dir {
		n.diskKids = maps.Clone(n.kids)
		n.dirDirty = false
	}
	n.persist()
	return fuse.OK
}

func (fs *rawFS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, _ *fuse.OpenOut) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	_, st := fs.dir(in.NodeId)
	return st
}

func (fs *rawFS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	fs.m.mu.Lock()
	defer fs.m.mu.Unlock()
	d, st := fs.dir(in.NodeId)
	if st != fuse.OK {
		return st
	}
	names := sortedNames(d.kids)
	for i := int(in.Offset); i < len(names); i++ {
		k := d.kids[names[i]]
		mode := uint32(syscall.S_IFREG)
		if k.dir {
			mode = syscall.S_IFDIR
		}
		if !out.AddDirEntry(fuse.DirEntry{Name: names[i], Ino: k.ino, Mode: mode, Off: uint64(i + 1)}) {
			break
		}
	}
	return fuse.OK
}

func (fs *rawFS) ReleaseDir(*fuse.ReleaseIn) {}

func (fs *rawFS) Access(<-chan struct{}, *fuse.AccessIn) fuse.Status { return fuse.OK }

func (fs *rawFS) StatFs(_ <-chan struct{}, _ *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	*out = fuse.StatfsOut{Blocks: 1 << 20, Bfree: 1 << 19, Bavail: 1 << 19, Files: 1 << 16, Ffree: 1 << 15, Bsize: 4096, NameLen: 255, Frsize: 4096}
	return fuse.OK
}
