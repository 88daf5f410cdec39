package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Renumbering: a ledger whose sequence numbers collide with a stream head
// office already holds for its register id (a ledger restored from an
// older backup; a replacement that recorded sales before it first reached
// head office) sends its events from some point on under a new
// incarnation, numbered after head office's watermark. The ledger's own
// numbers never change (rows, lots and purchases are keyed by them); the
// numbers on the wire are the ledger's plus a delta per epoch, and Wire
// translates both ways (docs/protocol.md "Incarnations").

// Epoch is a run of this ledger's events sent under one incarnation: the
// events from local sequence number From on (up to the next epoch) go to
// head office as sequence number local + Delta. The first epoch is the
// ledger's own incarnation from 1 with delta 0.
type Epoch struct {
	Incarnation string `json:"incarnation"`
	From        uint64 `json:"from"`
	Delta       uint64 `json:"delta"`
	// Known: Delta is known. A new epoch waits for head office's
	// watermark (its first event goes after it); until then its events
	// are not sent.
	Known bool `json:"known"`
	// Prev is the incarnation this epoch declares it continues (sent with
	// its events, extension previncarnation): head office follows the new
	// incarnation at once when it is the one it follows and the first
	// event continues its stream. Empty: head office holds the events
	// until an operator adopts the incarnation.
	Prev string `json:"prev,omitempty"`
	// Claim: take as Prev the incarnation head office's acknowledgement
	// names when the delta is learnt (loyaltyctl register restore).
	Claim bool `json:"claim,omitempty"`
}

// kEpochs holds the epochs (JSON), absent when the ledger was never
// renumbered.
var kEpochs = []byte("epochs")

// ErrRenumbered: a renumbering that does not apply (a new epoch is
// already waiting, or the ledger is not in the state the call needs).
var ErrRenumbered = fmt.Errorf("ledger renumbering: %w", ErrInvalid)

func readEpochs(tx *bolt.Tx) ([]Epoch, error) {
	meta := tx.Bucket(bMeta)
	first := Epoch{Incarnation: string(meta.Get(kIncarnation)), From: 1, Known: true}
	out := []Epoch{first}
	if v := meta.Get(kEpochs); v != nil {
		var more []Epoch
		if err := json.Unmarshal(v, &more); err != nil {
			return nil, fmt.Errorf("ledger epochs: %w", err)
		}
		for _, e := range more {
			// An epoch from the same first event replaces the one before
			// (it never sent anything of its own).
			for len(out) > 0 && out[len(out)-1].From >= e.From {
				out = out[:len(out)-1]
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// writeEpochs stores every epoch (the first too: it may be a new
// incarnation from 1 that replaced the ledger's own).
func (w *wtx) writeEpochs(eps []Epoch) {
	w.putJSON(bMeta, kEpochs, eps)
}

// Epochs returns this ledger's epochs, the first (its own incarnation
// from 1) included.
func (l *Ledger) Epochs() ([]Epoch, error) {
	var eps []Epoch
	err := l.view(func(tx *bolt.Tx) error {
		var err error
		eps, err = readEpochs(tx)
		return err
	})
	return eps, err
}

// Reincarnate starts a new epoch with the next event this ledger records:
// a new incarnation, whose numbers on the wire follow head office's
// watermark once it is known (Learn). A ledger restored from an older
// backup calls it (loyaltyctl register restore, or the uplink when head
// office acknowledges more than the ledger has), so what it records from
// now on never collides with what head office holds. With claim, the
// epoch declares as its predecessor the incarnation head office follows
// (named by its acknowledgement), so head office follows it at once; the
// old incarnation's events up to here are sent as before. A new epoch
// already waiting with no event of its own is returned as it is.
func (l *Ledger) Reincarnate(claim bool) (Epoch, error) {
	v, err := l.submit(context.Background(), func(w *wtx) (any, error) {
		eps, err := readEpochs(w.tx)
		if err != nil {
			return nil, err
		}
		last := eps[len(eps)-1]
		if !last.Known {
			if last.From == w.seq+1 {
				last.Claim = last.Claim || claim
				eps[len(eps)-1] = last
				w.writeEpochs(eps)
				return last, nil
			}
			return nil, fmt.Errorf("epoch %.8s from %d still waits for head office's watermark: %w", last.Incarnation, last.From, ErrRenumbered)
		}
		e := Epoch{Incarnation: NewIncarnation(), From: w.seq + 1, Claim: claim}
		eps = append(eps, e)
		w.writeEpochs(eps)
		return e, nil
	})
	if err != nil {
		return Epoch{}, fmt.Errorf("ledger reincarnate: %w", err)
	}
	return v.(Epoch), nil
}

// Learn gives a waiting epoch its numbers: head office's acknowledgement
// for incarnation inc (one of this ledger's, or any for a claiming epoch)
// says it holds the register's stream up to w, so the epoch's first event
// goes to w+1 (or right after the previous epoch's last number on the
// wire, when that is higher). A claiming epoch takes inc as its
// predecessor. It returns the epoch and whether one learnt.
func (l *Ledger) Learn(inc string, w uint64) (Epoch, bool, error) {
	if inc == "" || !l.epochWaits() {
		return Epoch{}, false, nil
	}
	var out Epoch
	var ok bool
	_, err := l.submit(context.Background(), func(x *wtx) (any, error) {
		eps, err := readEpochs(x.tx)
		if err != nil {
			return nil, err
		}
		i := len(eps) - 1
		last := eps[i]
		if last.Known || inc == "" || !last.Claim && !owns(eps, inc) {
			return nil, nil
		}
		var prevDelta uint64
		if i > 0 {
			prevDelta = eps[i-1].Delta
		}
		first := max(w+1, last.From+prevDelta) // never below the previous epoch's numbers
		last.Delta, last.Known = first-last.From, true
		if last.Claim && inc != last.Incarnation {
			last.Prev = inc
		}
		eps[i] = last
		x.writeEpochs(eps)
		out, ok = last, true
		return nil, nil
	})
	if err != nil {
		return Epoch{}, false, fmt.Errorf("ledger learn: %w", err)
	}
	return out, ok, nil
}

// LearnNothing gives a waiting epoch the numbers right after the previous
// epoch's, for a register head office has no acknowledgement of (none
// retained at the broker, nothing of this ledger's to acknowledge): its
// events then go on the wire as the next numbers, without a predecessor.
func (l *Ledger) LearnNothing() (Epoch, bool, error) {
	if !l.epochWaits() {
		return Epoch{}, false, nil
	}
	var out Epoch
	var ok bool
	_, err := l.submit(context.Background(), func(x *wtx) (any, error) {
		eps, err := readEpochs(x.tx)
		if err != nil {
			return nil, err
		}
		i := len(eps) - 1
		if eps[i].Known {
			return nil, nil
		}
		if i > 0 {
			eps[i].Delta = eps[i-1].Delta
		}
		eps[i].Known = true
		x.writeEpochs(eps)
		out, ok = eps[i], true
		return nil, nil
	})
	if err != nil {
		return Epoch{}, false, fmt.Errorf("ledger learn: %w", err)
	}
	return out, ok, nil
}

// epochWaits reports, in a read transaction, whether the last epoch
// waits for its numbers. Learn and LearnNothing look first: the uplink
// calls Learn for every acknowledgement, and a write transaction that
// finds nothing to do still commits (and syncs) the file. Only a waiting
// epoch gets numbers, and only Learn and LearnNothing (in their write
// transactions, which look again) end the wait. A read error answers
// true, so the write transaction reports it.
func (l *Ledger) epochWaits() bool {
	var waits bool
	err := l.view(func(tx *bolt.Tx) error {
		eps, err := readEpochs(tx)
		if err == nil {
			waits = !eps[len(eps)-1].Known
		}
		return err
	})
	return err != nil || waits
}

// renumberUnsent makes a ledger nothing of which head office ever
// confirmed send all its events under a new incarnation after w (Rebase
// for a ledger with events).
func (w *wtx) renumberUnsent(wm uint64) error {
	eps, err := readEpochs(w.tx)
	if err != nil {
		return err
	}
	if len(eps) != 1 || w.get(bMeta, kEpochs) != nil || getU64(w.tx.Bucket(bState), kConfirmed) != 0 {
		return fmt.Errorf("ledger rebase to %d: last seq %d: %w", wm, w.seq, ErrNotFresh)
	}
	w.writeEpochs(append(eps, Epoch{Incarnation: NewIncarnation(), From: 1, Delta: wm, Known: true}))
	return nil
}

// epochOf returns the index of the epoch local seq s belongs to.
func epochOf(eps []Epoch, s uint64) int {
	i := 0
	for j := 1; j < len(eps); j++ {
		if eps[j].From <= s {
			i = j
		}
	}
	return i
}

// toWire returns the wire number of local seq s, and false when its epoch
// waits for its numbers.
func toWire(eps []Epoch, s uint64) (uint64, bool) {
	e := eps[epochOf(eps, s)]
	return s + e.Delta, e.Known
}

// fromWire returns the highest local seq whose wire number is at most w
// (0: none).
func fromWire(eps []Epoch, w uint64) uint64 {
	var l uint64
	for i, e := range eps {
		if !e.Known {
			return l
		}
		if w < e.From+e.Delta {
			return l
		}
		l = w - e.Delta
		if i+1 < len(eps) && l >= eps[i+1].From {
			l = eps[i+1].From - 1
		}
	}
	return l
}

// wireCeil is the wire watermark that local watermark c amounts to: the
// numbers an epoch skipped count as held when c reaches the event before
// it.
func wireCeil(eps []Epoch, c uint64) uint64 {
	i := epochOf(eps, c+1)
	if e := eps[i]; e.From == c+1 && e.Known {
		return c + e.Delta
	}
	w, _ := toWire(eps, c)
	return w
}

// Wire is the ledger as head office numbers its events: the outbox,
// confirmations and summaries' coverage in the numbers on the wire. For a
// ledger never renumbered they are the ledger's own. The uplink takes a
// Wire (cmd/loyaltyd); everything else keeps the ledger's numbers.
type Wire struct{ *Ledger }

// Stamp is what every event of one outbox batch is sent under.
type Stamp struct {
	Incarnation, Prev string
}

// OutboxStamped returns up to max records after wire number after,
// renumbered for the wire, all of one epoch (a batch carries one
// incarnation), and that epoch's stamp. Records of an epoch waiting for
// its numbers are not returned.
func (x Wire) OutboxStamped(after uint64, max int) ([]OutboxRecord, Stamp, error) {
	var eps []Epoch
	if err := x.view(func(tx *bolt.Tx) error {
		var err error
		eps, err = readEpochs(tx)
		return err
	}); err != nil {
		return nil, Stamp{}, err
	}
	recs, err := x.Ledger.Outbox(fromWire(eps, after), max)
	if err != nil || len(recs) == 0 {
		return nil, Stamp{}, err
	}
	i := epochOf(eps, recs[0].Seq)
	e := eps[i]
	if !e.Known {
		return nil, Stamp{}, nil
	}
	out := recs[:0]
	for _, r := range recs {
		if epochOf(eps, r.Seq) != i {
			break
		}
		if e.Delta != 0 {
			r.Seq += e.Delta
			r.ID = x.register + "-" + strconv.FormatUint(r.Seq, 10)
			if r.Type == OutClock {
				r.Data = renumberCorrection(eps, r.Data, x.register)
			}
		}
		out = append(out, r)
	}
	return out, Stamp{Incarnation: e.Incarnation, Prev: e.Prev}, nil
}

// renumberCorrection rewrites the sequence numbers a clock correction
// names to the wire's.
func renumberCorrection(eps []Epoch, data []byte, register string) []byte {
	var tc TimeCorrection
	if json.Unmarshal(data, &tc) != nil {
		return data
	}
	tc.Seq, _ = toWire(eps, tc.Seq)
	for i := range tc.Events {
		tc.Events[i].Seq, _ = toWire(eps, tc.Events[i].Seq)
		tc.Events[i].ID = register + "-" + strconv.FormatUint(tc.Events[i].Seq, 10)
	}
	b, err := json.Marshal(tc)
	if err != nil {
		return data
	}
	return b
}

// Outbox is OutboxStamped without the stamp.
func (x Wire) Outbox(after uint64, max int) ([]OutboxRecord, error) {
	recs, _, err := x.OutboxStamped(after, max)
	return recs, err
}

// Confirm confirms wire watermark w: the ledger's events up to the last
// one numbered at most w. A w beyond the last event on the wire is
// ErrPruneNotAllowed, as for Ledger.Confirm.
func (x Wire) Confirm(w uint64) error {
	eps, err := x.Epochs()
	if err != nil {
		return err
	}
	if len(eps) == 1 && eps[0].Delta == 0 {
		return x.Ledger.Confirm(w)
	}
	l := fromWire(eps, w)
	last, err := x.lastSeq()
	if err != nil {
		return err
	}
	if l >= last {
		if top := wireCeil(eps, last); w > top {
			return fmt.Errorf("ledger confirm %d: last seq on the wire is %d: %w", w, top, ErrPruneNotAllowed)
		}
	}
	return x.Ledger.Confirm(l)
}

// Confirmed returns the confirmed watermark in wire numbers.
func (x Wire) Confirmed() (uint64, error) {
	var w uint64
	err := x.view(func(tx *bolt.Tx) error {
		eps, err := readEpochs(tx)
		if err != nil {
			return err
		}
		w = wireCeil(eps, getU64(tx.Bucket(bState), kConfirmed))
		return nil
	})
	return w, err
}

// Incarnation returns the incarnation the ledger's next events are sent
// under (the last epoch's).
func (x Wire) Incarnation() (string, error) {
	eps, err := x.Epochs()
	if err != nil {
		return "", err
	}
	return eps[len(eps)-1].Incarnation, nil
}

// Owns reports whether inc is one of this ledger's incarnations.
func (x Wire) Owns(inc string) bool {
	eps, err := x.Epochs()
	return err == nil && owns(eps, inc)
}

func owns(eps []Epoch, inc string) bool {
	for _, e := range eps {
		if e.Incarnation == inc {
			return true
		}
	}
	return false
}

// Ahead reports whether wire watermark w is beyond the ledger's last
// event on the wire: head office holds more of this ledger's stream than
// the ledger has, so the ledger is an older copy (restored from a backup).
func (x Wire) Ahead(w uint64) (bool, error) {
	var ahead bool
	err := x.view(func(tx *bolt.Tx) error {
		eps, err := readEpochs(tx)
		if err != nil {
			return err
		}
		if !eps[len(eps)-1].Known {
			return nil
		}
		ahead = w > wireCeil(eps, getU64(tx.Bucket(bState), kSeq))
		return nil
	})
	return ahead, err
}

// Waiting returns the epoch waiting for its numbers, if any.
func (x Wire) Waiting() (Epoch, bool, error) {
	eps, err := x.Epochs()
	if err != nil {
		return Epoch{}, false, err
	}
	last := eps[len(eps)-1]
	return last, !last.Known, nil
}

func (l *Ledger) lastSeq() (uint64, error) {
	var s uint64
	err := l.view(func(tx *bolt.Tx) error {
		s = getU64(tx.Bucket(bState), kSeq)
		return nil
	})
	return s, err
}

// localCovered maps a summary's Covered (wire numbers) to the ledger's.
func (w *wtx) localCovered(c uint64) (uint64, error) {
	if w.get(bMeta, kEpochs) == nil {
		return c, nil
	}
	eps, err := readEpochs(w.tx)
	if err != nil {
		return 0, err
	}
	return fromWire(eps, c), nil
}
