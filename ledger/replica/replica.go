package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/durable"
)

// File names in Options.Dir.
const (
	SnapshotName = "ledger.snapshot"
	LogName      = "ledger.log"
)

// Sentinel errors.
var (
	// ErrOptions: New was given no ledger or no folder.
	ErrOptions = errors.New("replica: invalid options")
	// ErrExists: Restore would overwrite a ledger file.
	ErrExists = errors.New("replica: the ledger file exists")
	// ErrCopy: the copy on the second device is missing, damaged or of
	// another ledger.
	ErrCopy = errors.New("replica: no usable copy")
)

// Options configures a Replica. Zero fields take the defaults.
type Options struct {
	// Dir is the folder on the second device. Required. It is never
	// created: a folder that is missing means the device is not mounted.
	Dir string
	// Interval is how often new events are copied; default 1s. A card
	// death loses at most the events of about one Interval (Status.Behind).
	Interval time.Duration
	// SnapshotEvery is how often a fresh snapshot replaces the log;
	// default 6h. MaxLog also starts one when the log grows past it;
	// default 16 MiB.
	SnapshotEvery time.Duration
	MaxLog        int64
	// RetryEvery is the wait after a failure; default 10s.
	RetryEvery time.Duration
	// Logger; default discard.
	Logger *slog.Logger
}

// Status is the copy's state, for loyaltyctl status and the display.
type Status struct {
	Dir string `json:"dir"`
	// OK is false while the second device fails; Error says how
	// (full, missing, I/O error) since FailingSince.
	OK           bool      `json:"ok"`
	Error        string    `json:"error,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Copied is the last event on the second device; Behind how many of
	// the ledger's events are not there yet: what a card death would
	// lose now.
	Copied uint64 `json:"copied"`
	Behind uint64 `json:"behind"`
	// SnapshotSeq and SnapshotAt describe the snapshot on the device.
	SnapshotSeq uint64    `json:"snapshot_seq"`
	SnapshotAt  time.Time `json:"snapshot_at,omitzero"`
	LogBytes    int64     `json:"log_bytes"`
	// Warning, when not empty, says the folder is on the ledger's own
	// device (a card death would take both).
	Warning string `json:"warning,omitempty"`
}

// Replica copies a ledger to a second device. Create with New, run with
// Run; Status is safe from any goroutine.
type Replica struct {
	l   *ledger.Ledger
	o   Options
	log *slog.Logger

	// Owned by Run.
	f        *os.File
	needSnap bool
	lastTry  time.Time

	mu sync.Mutex
	st Status
}

// New checks the options.
func New(l *ledger.Ledger, o Options) (*Replica, error) {
	if l == nil || o.Dir == "" {
		return nil, fmt.Errorf("%w: need a ledger and a folder", ErrOptions)
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.SnapshotEvery <= 0 {
		o.SnapshotEvery = 6 * time.Hour
	}
	if o.MaxLog <= 0 {
		o.MaxLog = 16 << 20
	}
	if o.RetryEvery <= 0 {
		o.RetryEvery = 10 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Replica{l: l, o: o, log: log.With("subsystem", "replica"), needSnap: true}
	r.st.Dir = o.Dir
	return r, nil
}

// Run copies until ctx ends. It never fails: a failing device is a status.
func (r *Replica) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	defer r.closeLog()
	for {
		r.Step()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step does one round: a snapshot when one is due, else the new events.
// Run calls it every Interval; tests call it directly.
func (r *Replica) Step() {
	r.mu.Lock()
	failing := !r.st.OK && !r.st.FailingSince.IsZero()
	snapAt, logBytes := r.st.SnapshotAt, r.st.LogBytes
	r.mu.Unlock()
	if failing && time.Since(r.lastTry) < r.o.RetryEvery {
		r.behind()
		return
	}
	r.lastTry = time.Now()
	var err error
	if r.needSnap || logBytes > r.o.MaxLog || time.Since(snapAt) > r.o.SnapshotEvery {
		err = r.snapshot()
	}
	if err == nil {
		err = r.appendNew()
	}
	r.mu.Lock()
	if err != nil {
		if r.st.OK || r.st.FailingSince.IsZero() {
			r.st.FailingSince = time.Now()
			r.log.Warn("second copy of the ledger failing; sales go on", "dir", r.o.Dir, "err", err)
		}
		r.st.OK, r.st.Error = false, describe(err)
	} else {
		if !r.st.OK && !r.st.FailingSince.IsZero() {
			r.log.Info("second copy of the ledger back", "dir", r.o.Dir, "copied", r.st.Copied)
		}
		r.st.OK, r.st.Error, r.st.FailingSince = true, "", time.Time{}
	}
	r.mu.Unlock()
	if err != nil {
		r.needSnap = true
		r.closeLog()
	}
	r.behind()
}

// describe says in words what a failing device does.
func describe(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "second device full: " + err.Error()
	case errors.Is(err, os.ErrNotExist):
		return "second device missing (not mounted?): " + err.Error()
	case errors.Is(err, syscall.EIO):
		return "second device I/O error: " + err.Error()
	}
	return err.Error()
}

func (r *Replica) behind() {
	st, err := r.l.Stats()
	if err != nil {
		return
	}
	r.mu.Lock()
	r.st.Behind = st.LastSeq - min(r.st.Copied, st.LastSeq)
	r.mu.Unlock()
}

// Status returns the copy's state. Behind is counted now, against the
// ledger's last event at this moment: a figure kept from the last round
// would say 0 for sales recorded since (up to one Interval of them), and a
// technician reading "0 behind" pulls the card.
func (r *Replica) Status() Status {
	r.mu.Lock()
	st := r.st
	r.mu.Unlock()
	if ls, err := r.l.Stats(); err == nil {
		st.Behind = ls.LastSeq - min(st.Copied, ls.LastSeq)
	}
	return st
}

func (r *Replica) closeLog() {
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
}

// header is the log's first line.
type header struct {
	Incarnation string `json:"incarnation"`
	After       uint64 `json:"after"`
}

// snapshot writes a fresh snapshot and starts an empty log after it.
func (r *Replica) snapshot() error {
	r.closeLog()
	fi, err := os.Stat(r.o.Dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder: %w", r.o.Dir, os.ErrNotExist)
	}
	var si ledger.SnapshotInfo
	if err := durable.WriteFile(filepath.Join(r.o.Dir, SnapshotName), 0o600, func(w io.Writer) error {
		var err error
		si, err = r.l.Snapshot(w)
		return err
	}); err != nil {
		return err
	}
	h, _ := json.Marshal(header{Incarnation: si.Incarnation, After: si.Seq})
	h = append(h, '\n')
	logPath := filepath.Join(r.o.Dir, LogName)
	if err := durable.WriteBytes(logPath, 0o600, h); err != nil {
		return err
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	r.f, r.needSnap = f, false
	r.mu.Lock()
	r.st.Copied, r.st.SnapshotSeq, r.st.SnapshotAt, r.st.LogBytes = si.Seq, si.Seq, time.Now(), int64(len(h))
	r.st.Warning = sameDevice(r.o.Dir, r.l.Path())
	r.mu.Unlock()
	return nil
}

// appendNew appends the events after the last copied one and syncs.
func (r *Replica) appendNew() error {
	r.mu.Lock()
	copied := r.st.Copied
	r.mu.Unlock()
	var buf []byte
	last := copied
	for {
		recs, err := r.l.Outbox(last, 1024)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		if recs[0].Seq != last+1 {
			// Forgotten by the ledger before they were copied (confirmed
			// by head office, so not lost): start again from a snapshot.
			r.needSnap = true
			return nil
		}
		for _, rec := range recs {
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			buf = append(append(buf, b...), '\n')
		}
		last = recs[len(recs)-1].Seq
	}
	// The folder must still be the device's: a stick pulled out (or a
	// folder moved) leaves the open file writing nowhere useful.
	fi, err := os.Stat(filepath.Join(r.o.Dir, LogName))
	if err != nil {
		return err
	}
	if own, err := r.f.Stat(); err != nil || !os.SameFile(fi, own) {
		return fmt.Errorf("%s was replaced: %w", filepath.Join(r.o.Dir, LogName), os.ErrNotExist)
	}
	if len(buf) == 0 {
		return nil
	}
	if _, err := r.f.Write(buf); err != nil {
		return err
	}
	if err := r.f.Sync(); err != nil {
		return err
	}
	r.mu.Lock()
	r.st.Copied = last
	r.st.LogBytes += int64(len(buf))
	r.mu.Unlock()
	return nil
}
