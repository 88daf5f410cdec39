package replica

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/durable"
)

// sameDevice says, in words, when dir is on the device of the file path
// (a copy there dies with the card); empty otherwise.
func sameDevice(dir, path string) string {
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(filepath.Dir(path), &b) != nil {
		return ""
	}
	if a.Dev == b.Dev {
		return fmt.Sprintf("%s is on the same device as the ledger: a card death would take the copy too", dir)
	}
	return ""
}

// Restored says what Restore built.
type Restored struct {
	Incarnation string
	// SnapshotSeq is the last event of the snapshot; Recovered the events
	// after it taken from the log; LastSeq the restored ledger's last.
	SnapshotSeq uint64
	Recovered   int
	LastSeq     uint64
	// Torn is true when the log ended in a line cut short (the power went
	// while it was written; that event was not yet copied).
	Torn bool
}

// Restore builds the ledger file at path from the copy in dir: the
// snapshot, then the logged events after it (ledger.Recover). path must
// not exist (ErrExists): move a damaged ledger away first. opts opens the
// ledger (Register is required). The result passes ledger.Check.
//
// The ledger is built beside path under a temporary name (path +
// RestoringSuffix) and takes path only once it passed every check, so a
// refused restore (another ledger's log, a snapshot that does not open, a
// ledger of another register) leaves nothing at path and can simply be
// run again; a temporary file left by a restore that died is replaced.
func Restore(dir, path string, opts *ledger.Options) (Restored, error) {
	var res Restored
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return res, fmt.Errorf("%w: %s (move it away first; it is never overwritten)", ErrExists, path)
	}
	h, recs, torn, err := readLog(filepath.Join(dir, LogName))
	if err != nil {
		return res, err
	}
	res.Torn = torn
	tmp := path + RestoringSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, err
	}
	res, err = build(dir, tmp, opts, h, recs, res)
	if err != nil {
		os.Remove(tmp)
		return res, err
	}
	// An empty file at path (a ledger.Open that failed early) is in the
	// way of the link; anything else there was refused above, and Link
	// never replaces a file that appeared since.
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		os.Remove(path)
	}
	if err := os.Link(tmp, path); err != nil {
		os.Remove(tmp)
		if errors.Is(err, os.ErrExist) {
			return res, fmt.Errorf("%w: %s (move it away first; it is never overwritten)", ErrExists, path)
		}
		return res, err
	}
	if err := os.Remove(tmp); err != nil {
		return res, err
	}
	return res, durable.SyncDir(filepath.Dir(path))
}

// RestoringSuffix names the file Restore builds a ledger in before it
// takes the ledger's path.
const RestoringSuffix = ".restoring"

// build writes the snapshot to tmp, applies the logged events after it
// and checks the result.
func build(dir, tmp string, opts *ledger.Options, h header, recs []ledger.OutboxRecord, res Restored) (Restored, error) {
	snap, err := os.Open(filepath.Join(dir, SnapshotName))
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrCopy, err)
	}
	err = durable.WriteFile(tmp, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, snap)
		return err
	})
	snap.Close()
	if err != nil {
		return res, err
	}
	// Built without a sale log: the ledger is closed (committed) before
	// it takes the path, and no <tmp>.salelog is left behind.
	o := ledger.Options{}
	if opts != nil {
		o = *opts
	}
	o.NoSaleLog = true
	l, err := ledger.Open(tmp, &o)
	if err != nil {
		return res, fmt.Errorf("%w: the snapshot does not open: %w", ErrCopy, err)
	}
	defer l.Close()
	inc, err := l.Incarnation()
	if err != nil {
		return res, err
	}
	st, err := l.Stats()
	if err != nil {
		return res, err
	}
	res.Incarnation, res.SnapshotSeq = inc, st.LastSeq
	if h.Incarnation != inc {
		return res, fmt.Errorf("%w: the log is of ledger %.8s, the snapshot of %.8s", ErrCopy, h.Incarnation, inc)
	}
	var after []ledger.OutboxRecord
	for _, r := range recs {
		if r.Seq <= st.LastSeq {
			continue
		}
		if r.Seq != st.LastSeq+uint64(len(after))+1 {
			break // a hole: what follows cannot be placed
		}
		after = append(after, r)
	}
	if res.Recovered, err = l.Recover(after); err != nil {
		return res, err
	}
	res.LastSeq = st.LastSeq + uint64(res.Recovered)
	if err := l.Check(); err != nil {
		return res, err
	}
	return res, l.Close()
}

// readLog reads the log: its header and records; a last line cut short is
// left out (torn).
func readLog(path string) (header, []ledger.OutboxRecord, bool, error) {
	var h header
	f, err := os.Open(path)
	if err != nil {
		return h, nil, false, fmt.Errorf("%w: %w", ErrCopy, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &h) != nil || h.Incarnation == "" {
		return h, nil, false, fmt.Errorf("%w: %s has no header", ErrCopy, path)
	}
	var recs []ledger.OutboxRecord
	for sc.Scan() {
		var r ledger.OutboxRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			if sc.Scan() {
				return h, nil, false, fmt.Errorf("%w: %s: a damaged line before the end", ErrCopy, path)
			}
			return h, recs, true, nil
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return h, nil, false, fmt.Errorf("%w: %s: %w", ErrCopy, path, err)
	}
	return h, recs, false, nil
}
