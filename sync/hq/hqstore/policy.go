package hqstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// Head office's policy (sync/hq/policy) as the applier uses it, for every
// backend: the facts for one event come from the applying transaction
// (Txn), the verdict is taken at the moment the event would be applied
// (in sequence order, so an event that arrived ahead of a gap is checked
// when it is applied, not when it arrived), and what a verdict counts is
// written in the same transaction. An event held by the policy is
// applied to its stream (the watermark moves on: the register's stream
// never waits for a review) but not to balances, aliases or profiles; it
// is kept (Txn.PutPolicyHeld) for review.
var (
	// bPolicyHeld: "<register>\x00<seq>" -> policyHeldRec.
	bPolicyHeld = []byte("policy-held")
	// bPolicyAdjust: "<register>\x00<day>" -> the sum of the sizes of the
	// adjustments applied that day (8 bytes).
	bPolicyAdjust = []byte("policy-adjust")
)

// ReviewPolicy is the Held.Reason of an event held by head office's
// policy; Held.Code says which check.
const ReviewPolicy = "policy"

// ErrNotHeld reports a review decision about an event the policy does not
// hold (never held, or already decided).
var ErrNotHeld = fmt.Errorf("hqstore: event not held for review by policy: %w", ErrInvalid)

// SetPolicy makes Apply check every event against p (nil: no checks).
// Head office's ingest sets it before it starts.
func (s *Store) SetPolicy(p *policy.Policy) { s.policy.Store(p) }

// applyOpts are the options Apply passes to ApplyIn: the store's, with
// the policy in force.
func (s *Store) applyOpts() Options {
	o := s.opts
	o.Policy = s.policy.Load()
	return o
}

// saleAllow is what the policy allowed a sale to earn when it was applied.
type saleAllow struct {
	Known       bool  `json:"known"`
	RuleVersion int   `json:"rule_version"`
	Allowed     int64 `json:"allowed"`
	Earned      int64 `json:"earned"`
}

// PolicyHold is one event the policy held, as Apply reports it.
type PolicyHold struct {
	Stream
	Seq uint64 `json:"seq"`
	ID  string `json:"id"`
	policy.Verdict
}

type policyHeldRec struct {
	// Dismissed: reviewed and left unapplied for good; no longer listed.
	Dismissed   bool                `json:"dismissed,omitempty"`
	Store       string              `json:"store,omitempty"`
	Incarnation string              `json:"incarnation,omitempty"`
	Verdict     policy.Verdict      `json:"verdict"`
	Record      ledger.OutboxRecord `json:"record"`
}

// ParsePolicyHeld decodes a record stored by Txn.PutPolicyHeld: the event
// held, and whether a person dismissed it (then it is no longer listed).
func ParsePolicyHeld(register string, seq uint64, rec []byte) (h Held, dismissed bool, err error) {
	var r policyHeldRec
	if err := json.Unmarshal(rec, &r); err != nil {
		return Held{}, false, fmt.Errorf("policy hold %s/%d: %w", register, seq, err)
	}
	r.Record.Seq = seq
	return Held{Stream: Stream{Store: r.Store, Register: register, Incarnation: r.Incarnation},
		Reason: ReviewPolicy, Code: r.Verdict.Code, Text: r.Verdict.Text, OutboxRecord: r.Record}, r.Dismissed, nil
}

// PointsHeld reports whether a stored policy record (Txn.PutPolicyHeld)
// holds a point event: its points are in no balance (Check).
func PointsHeld(rec []byte) bool {
	var r policyHeldRec
	return json.Unmarshal(rec, &r) == nil && r.Record.Type == ledger.OutPoints
}

func (a *applier) allowance(s *ledger.Sale) *saleAllow {
	p := a.opts.Policy
	if p == nil {
		return nil
	}
	allowed, known := p.Allowance(*s)
	return &saleAllow{Known: known, RuleVersion: s.RuleVersion, Allowed: allowed}
}

// check asks the policy about o and, when it is to be applied, records
// what the policy counts (a sale's earned points, the day's adjustments).
func (a *applier) check(rs *RegisterState, o op) (policy.Verdict, error) {
	p := a.opts.Policy
	if p == nil {
		return policy.Verdict{}, nil
	}
	ev := policy.Event{Register: rs.Register}
	switch {
	case o.point != nil:
		pt := o.point
		ev.Point = &ledger.PointEvent{Kind: pt.Kind, MemberID: pt.MemberID, Points: pt.Points, SaleID: pt.SaleID, Reason: pt.Reason}
		var err error
		if ev.Bonus, err = a.bonusFacts(pt); err != nil {
			return policy.Verdict{}, err
		}
		var sr saleRec
		if (pt.Kind == ledger.KindEarn || pt.Kind == ledger.KindBonus) && pt.SaleID != "" {
			v, err := a.tx.Sale(pt.SaleID)
			if err != nil {
				return policy.Verdict{}, err
			}
			if v != nil {
				if err := json.Unmarshal(v, &sr); err != nil {
					return policy.Verdict{}, fmt.Errorf("sale %q: %w", pt.SaleID, err)
				}
				if sr.Allow != nil {
					ev.Sale = policy.Sale{Seen: true, Known: sr.Allow.Known, RuleVersion: sr.Allow.RuleVersion, Allowed: sr.Allow.Allowed, Earned: sr.Allow.Earned}
				}
			}
		}
		revKey := ""
		if pt.Kind == ledger.KindReverse && pt.Points > 0 {
			var err error
			if ev.Reversed, revKey, err = a.reversed(rs.Register, pt.Reverses); err != nil {
				return policy.Verdict{}, err
			}
			ev.Point.Reverses = pt.Reverses
		}
		day := ""
		if pt.Kind == ledger.KindAdjust {
			day = p.Day()
			n, err := a.tx.PolicyAdjusted(rs.Register, day)
			if err != nil {
				return policy.Verdict{}, err
			}
			ev.AdjustedToday = n
		}
		v := p.Check(ev)
		if v.Hold() {
			return v, nil
		}
		switch {
		case ev.Sale.Seen:
			sr.Allow.Earned += int64(pt.Points)
			b, err := json.Marshal(sr)
			if err != nil {
				return v, err
			}
			return v, a.tx.PutSale(pt.SaleID, b)
		case day != "":
			return v, a.tx.PutPolicyAdjusted(rs.Register, day, ev.AdjustedToday+abs(int64(pt.Points)))
		case revKey != "":
			return v, a.tx.PutPolicyAdjusted(rs.Register, revKey, ev.Reversed.GivenBack+int64(pt.Points))
		}
		return v, nil
	case o.consent != nil:
		if !o.consent.Consent.Given {
			return policy.Verdict{}, nil // a withdrawal is always honoured
		}
		var err error
		if ev.ForeignStore, err = a.foreignStore(rs, o.e, o.consent.MemberID); err != nil {
			return policy.Verdict{}, err
		}
		ev.Member = &ledger.Member{ID: o.consent.MemberID, Consent: *o.consent.Consent}
		return p.Check(ev), nil
	case o.member != nil:
		ev.Member = o.member
		var err error
		if ev.ForeignStore, err = a.foreignStore(rs, o.e, o.member.ID); err != nil {
			return policy.Verdict{}, err
		}
		for _, al := range o.member.Aliases {
			owner, err := a.tx.Alias(al)
			if err != nil {
				return policy.Verdict{}, err
			}
			if owner != "" {
				if ev.AliasOwners == nil {
					ev.AliasOwners = map[string]string{}
				}
				ev.AliasOwners[al] = owner
			}
		}
		return p.Check(ev), nil
	}
	return policy.Verdict{}, nil
}

// reversed gathers what the policy needs about the event a reversal that
// gives points back names: it must be an applied event of the same
// register (ids are "<register>-<seq>"). key is where the points given
// back so far are counted (a PolicyAdjusted entry of the register).
func (a *applier) reversed(register, id string) (r policy.Reversed, key string, err error) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 || id[:i] != register {
		return r, "", nil
	}
	seq, perr := strconv.ParseUint(id[i+1:], 10, 64)
	if perr != nil || seq == 0 {
		return r, "", nil
	}
	raw, err := a.tx.Event(register, seq)
	if err != nil || raw == nil {
		return r, "", err
	}
	var rec ledger.OutboxRecord
	var pe ledger.PointEvent
	if json.Unmarshal(raw, &rec) != nil || rec.Type != ledger.OutPoints || json.Unmarshal(rec.Data, &pe) != nil {
		// Found, but not a point event: Kind stays empty and the
		// policy holds the reversal.
		return policy.Reversed{Found: true}, "", nil
	}
	held, err := a.tx.PolicyHeld(register, seq)
	if err != nil {
		return r, "", err
	}
	key = "reversed/" + strconv.FormatUint(seq, 10)
	given, err := a.tx.PolicyAdjusted(register, key)
	if err != nil {
		return r, "", err
	}
	return policy.Reversed{Found: true, Held: held != nil, Kind: pe.Kind, MemberID: pe.MemberID, Points: int64(pe.Points), GivenBack: given}, key, nil
}

// foreignStore returns the event's store when head office knows member
// from other stores and never saw it at this one (in this batch
// included); empty otherwise. A member with no store recorded (written
// before head office recorded where members shop) is never foreign.
func (a *applier) foreignStore(rs *RegisterState, e Event, member string) (string, error) {
	st := e.Store
	if st == "" {
		st = rs.Store
	}
	if st == "" || slices.Contains(a.shopsOf(member), st) {
		return "", nil
	}
	shops, err := a.tx.Shops(member)
	if err != nil {
		return "", err
	}
	shops = append(shops, a.shopsOf(member)...)
	if len(shops) == 0 || slices.Contains(shops, st) {
		return "", nil
	}
	return st, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// policyHold keeps o, already in its stream, for review instead of
// applying it. A held point event still moves the member's Included mark
// for its register, so the register's overlay (summary balance plus its
// own later events) drops the points head office did not count.
func (a *applier) policyHold(rs *RegisterState, o op, v policy.Verdict) error {
	e := o.e
	val, err := json.Marshal(policyHeldRec{Store: e.Store, Incarnation: e.Incarnation, Verdict: v, Record: e.OutboxRecord})
	if err != nil {
		return err
	}
	if err := a.tx.PutPolicyHeld(e.Register, e.Seq, val); err != nil {
		return err
	}
	rs.PolicyHeld++
	rs.PolicyNote = v.Text
	a.res.PolicyHolds = append(a.res.PolicyHolds, PolicyHold{Stream: Stream{Store: e.Store, Register: e.Register, Incarnation: e.Incarnation},
		Seq: e.Seq, ID: e.ID, Verdict: v})
	if o.point != nil {
		known := a.members[o.point.MemberID] != nil
		if !known {
			_, ok, err := a.tx.Member(o.point.MemberID)
			if err != nil {
				return err
			}
			known = ok
		}
		if known {
			mr, err := a.member(o.point.MemberID)
			if err != nil {
				return err
			}
			mr.Included[e.Register] = max(mr.Included[e.Register], e.Seq)
		}
	}
	return nil
}

// ResolveIn ends, inside tx, the review of one event head office's
// policy held (see Backend.ResolvePolicy) and returns the members whose
// chain-wide view changed.
//
// An event of the bound incarnation held as ReviewReused (other content
// under a number its stream already has) is decided here too, when the
// policy holds nothing at that number: dismiss leaves it unapplied for
// good and lets the register's acks go past it (RegisterState.ReusedFrom);
// approve is refused with ErrInvalid.
func ResolveIn(tx Txn, register string, seq uint64, approve bool, opts Options) ([]string, error) {
	rec, err := tx.PolicyHeld(register, seq)
	if err != nil {
		return nil, err
	}
	var r policyHeldRec
	if rec != nil {
		if err := json.Unmarshal(rec, &r); err != nil {
			return nil, fmt.Errorf("policy hold %s/%d: %w", register, seq, err)
		}
	}
	opts.Policy = nil // a person decided
	a := newApplier(tx, opts.withDefaults())
	a.moveAliases = true
	rs, err := a.reg(register)
	if err != nil {
		return nil, err
	}
	if rec == nil || r.Dismissed {
		err := a.resolveReused(rs, seq, approve)
		switch {
		case errors.Is(err, ErrNotHeld) && rec != nil:
			return nil, fmt.Errorf("%s seq %d: dismissed already: %w", register, seq, ErrNotHeld)
		case err != nil:
			return nil, err
		}
		if err := a.flush(); err != nil {
			return nil, err
		}
		return a.res.Members, nil
	}
	rs.PolicyHeld -= min(rs.PolicyHeld, 1)
	if rs.PolicyHeld == 0 {
		rs.PolicyNote = ""
	}
	if approve {
		if err := tx.DeletePolicyHeld(register, seq); err != nil {
			return nil, err
		}
		r.Record.Seq = seq
		o, err := decode(Event{Register: register, Store: r.Store, Incarnation: r.Incarnation, OutboxRecord: r.Record})
		if err != nil {
			return nil, err
		}
		if err := a.effect(rs, o); err != nil {
			return nil, err
		}
	} else {
		r.Dismissed = true
		nv, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		if err := tx.PutPolicyHeld(register, seq, nv); err != nil {
			return nil, err
		}
	}
	if err := a.flush(); err != nil {
		return nil, err
	}
	return a.res.Members, nil
}

// ResolvePolicy ends the review of one event head office's policy held.
// approve applies its effect now, as if the policy had let it pass (the
// sale's earned points and the day's adjustments do not count it: a
// person decided); otherwise it is dismissed: it stays in the register's
// stream, never applied, and leaves the review list. It returns the
// members whose chain-wide view changed (head office sends their
// summaries at its next start).
func (s *Store) ResolvePolicy(register string, seq uint64, approve bool) ([]string, error) {
	var members []string
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		members, err = ResolveIn(newBoltTxn(tx), register, seq, approve, s.opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("review %s seq %d: %w", register, seq, err)
	}
	return members, nil
}

// bbolt's side of the policy's Txn methods.

func policyKey(register string, seq uint64) []byte {
	return append([]byte(register+"\x00"), u64(seq)...)
}

func (b *boltTxn) PolicyAdjusted(register, day string) (int64, error) {
	v := b.tx.Bucket(bPolicyAdjust).Get([]byte(register + "\x00" + day))
	if len(v) != 8 {
		return 0, nil
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func (b *boltTxn) PutPolicyAdjusted(register, day string, n int64) error {
	return b.tx.Bucket(bPolicyAdjust).Put([]byte(register+"\x00"+day), u64(uint64(n)))
}

func (b *boltTxn) PolicyHeld(register string, seq uint64) ([]byte, error) {
	return b.tx.Bucket(bPolicyHeld).Get(policyKey(register, seq)), nil
}

func (b *boltTxn) PutPolicyHeld(register string, seq uint64, rec []byte) error {
	return b.tx.Bucket(bPolicyHeld).Put(policyKey(register, seq), rec)
}

func (b *boltTxn) DeletePolicyHeld(register string, seq uint64) error {
	return b.tx.Bucket(bPolicyHeld).Delete(policyKey(register, seq))
}

// policyHeld lists the events the policy holds, by register and sequence.
func policyHeld(tx *bolt.Tx) ([]Held, error) {
	b := tx.Bucket(bPolicyHeld)
	if b == nil {
		return nil, nil
	}
	var out []Held
	err := b.ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) != i+9 {
			return fmt.Errorf("policy key %q: %w", k, ErrInvalid)
		}
		h, dismissed, err := ParsePolicyHeld(string(k[:i]), binary.BigEndian.Uint64(k[i+1:]), v)
		if err == nil && !dismissed {
			out = append(out, h)
		}
		return err
	})
	return out, err
}

// policyHeldSeqs is the set of "<register>\x00<seq>" keys of point events
// held by the policy, for Check.
func policyHeldSeqs(tx *bolt.Tx) map[string]bool {
	out := map[string]bool{}
	if b := tx.Bucket(bPolicyHeld); b != nil {
		_ = b.ForEach(func(k, v []byte) error {
			if PointsHeld(v) {
				out[string(k)] = true
			}
			return nil
		})
	}
	return out
}
