package hqstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bGaps records the gaps an operator acknowledged, keyed register, 0,
// first sequence number: sequence numbers no register still has (head
// office confirmed them, was then restored from an older backup, and the
// register had already forgotten them). Check accepts a register's events
// missing exactly there.
var bGaps = []byte("gaps")

// Gap is a register's acknowledged gap: events From..To that head office
// confirmed once and lost, and that the register no longer keeps. They are
// not in head office's books; the record says who decided so and when.
type Gap struct {
	Register    string    `json:"register"`
	Incarnation string    `json:"incarnation,omitempty"`
	From        uint64    `json:"from"`
	To          uint64    `json:"to"`
	At          time.Time `json:"at"`
	Note        string    `json:"note,omitempty"`
	// Released is how many events held beyond the gap were applied when it
	// was acknowledged.
	Released int `json:"released"`
}

func gapKey(register string, from uint64) []byte {
	k := append([]byte(register), 0)
	return binary.BigEndian.AppendUint64(k, from)
}

// AcknowledgeGap records, on an operator's word, that register's events
// from..to are lost for good (docs/operations.md "Restoring head office
// from a backup"): from must be the next event head office waits for
// (watermark+1) and to must lie below the first event it holds beyond the
// gap. The watermark moves to to, the held events that follow are
// applied, and the next ack lets the register go on. Anything else is
// ErrInvalid and changes nothing.
func (s *Store) AcknowledgeGap(register string, from, to uint64, note string) (Gap, error) {
	var g Gap
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		if g, err = AcknowledgeGapIn(newBoltTxn(tx), register, from, to, s.opts); err != nil {
			return err
		}
		g.At, _ = s.opts.Clock.Now()
		g.Note = note
		gaps, err := tx.CreateBucketIfNotExists(bGaps)
		if err != nil {
			return err
		}
		v, err := json.Marshal(g)
		if err != nil {
			return err
		}
		return gaps.Put(gapKey(register, from), v)
	})
	return g, err
}

// AcknowledgeGapIn checks and applies an operator's gap acknowledgement
// inside tx, for every backend (see Store.AcknowledgeGap); the caller
// records the returned Gap (with its time and note) beside it. An error
// means tx must be rolled back.
func AcknowledgeGapIn(tx Txn, register string, from, to uint64, opts Options) (Gap, error) {
	rs, _, err := tx.Register(register)
	if err != nil {
		return Gap{}, err
	}
	rs.Register = register
	if rs.Store == "" {
		return Gap{}, fmt.Errorf("gap %s: head office has never heard from this register: %w", register, ErrInvalid)
	}
	if from != rs.Watermark+1 || to < from {
		return Gap{}, fmt.Errorf("gap %s %d..%d: head office waits for this register's events from %d: %w", register, from, to, rs.Watermark+1, ErrInvalid)
	}
	a := &applier{tx: tx, opts: opts.withDefaults(), regs: map[string]*RegisterState{register: &rs}, members: map[string]*memberRec{},
		touched: map[string]bool{}, res: Result{Registers: map[string]RegisterState{}}}
	// Events held beyond the gap by an incarnation head office no longer
	// follows (a succession or adoption since) go to review first: drained
	// here they would take numbers of the new stream, whose own events
	// under them would then be held as reused for good (review9).
	if err := a.retireHeld(&rs); err != nil {
		return Gap{}, err
	}
	// Only the gap head office waits for, whole: from the watermark + 1 to
	// the number below the first event it holds (or, holding none, below
	// the first it dropped for lying far beyond, else the highest it has
	// seen). A range beyond what it has seen would make it
	// skip numbers the register has not sent yet (its next events would
	// then be held as reused), and a part of the gap would leave the rest
	// waiting under a record of its own.
	end := rs.gapEnd()
	if rs.Held > 0 && rs.HeldFrom == 0 { // not kept by an older version: look
		seq, _, ok, err := tx.NextHeld(register, from-1)
		if err != nil {
			return Gap{}, err
		}
		if ok {
			end = seq - 1
		}
	}
	switch {
	case end < from:
		return Gap{}, fmt.Errorf("gap %s %d..%d: head office waits for no event of this register (it holds every one up to %d and has seen none beyond); "+
			"a gap is recorded once it has received an event after the missing ones: %w", register, from, to, rs.Watermark, ErrInvalid)
	case to != end:
		return Gap{}, fmt.Errorf("gap %s %d..%d: head office waits for this register's events %d..%d: record that gap whole: %w", register, from, to, from, end, ErrInvalid)
	}
	rs.Watermark, rs.Seen = to, max(rs.Seen, to)
	before := rs.Held
	if err := a.drain(&rs); err != nil {
		return Gap{}, err
	}
	if err := a.flush(); err != nil {
		return Gap{}, err
	}
	return Gap{Register: register, Incarnation: rs.Incarnation, From: from, To: to, Released: before - rs.Held}, nil
}

// Gaps lists the acknowledged gaps, by register and sequence.
func (s *Store) Gaps() ([]Gap, error) {
	var out []Gap
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bGaps)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var g Gap
			if err := json.Unmarshal(v, &g); err != nil {
				return err
			}
			out = append(out, g)
			return nil
		})
	})
	return out, err
}

// gapsOf returns register's acknowledged gaps as first -> last sequence,
// for Check.
func gapsOf(tx *bolt.Tx, register []byte) map[uint64]uint64 {
	b := tx.Bucket(bGaps)
	if b == nil {
		return nil
	}
	out := map[uint64]uint64{}
	p := append(append([]byte(nil), register...), 0)
	c := b.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		var g Gap
		if json.Unmarshal(v, &g) == nil {
			out[g.From] = g.To
		}
	}
	return out
}
