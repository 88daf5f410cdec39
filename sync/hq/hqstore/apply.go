package hqstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// Bounds on what an event may carry; beyond them it is rejected as
// malformed rather than risking overflow in sums.
const (
	maxIDLen    = 128 // as the register ledger (ledger.validID) and protocol member ids
	maxAbsPts   = ledger.Points(1) << 40
	maxAbsMoney = ledger.Money(1) << 50
)

// refundData is the part of a refund or void record head office needs.
// Refunds and voids name the sale; the amount may come as "amount",
// "total" or from the refunded lines; a void without any takes what is
// left of the sale.
type refundData struct {
	ID       string        `json:"id"`
	SaleID   string        `json:"sale_id"`
	Register string        `json:"register"`
	MemberID string        `json:"member_id"`
	Amount   *ledger.Money `json:"amount"`
	Total    *ledger.Money `json:"total"`
	Lines    []ledger.Line `json:"lines"`
}

// pointData is the part of a ledger.PointEvent head office needs; decoding
// only these fields (no time parsing) keeps the bulk of ingest cheap.
type pointData struct {
	Register string           `json:"register"`
	Kind     ledger.EventKind `json:"kind"`
	MemberID string           `json:"member_id"`
	Points   ledger.Points    `json:"points"`
	SaleID   string           `json:"sale_id"`
	Reverses string           `json:"reverses"` // read by the policy only
	// Reason and WallTime (RFC 3339, as the register sent it) are read
	// for the once-per-member bonuses (bonus.go).
	Reason   string    `json:"reason"`
	WallTime string    `json:"wall_time"`
	recAt    time.Time // the outbox record's time, when WallTime is absent
}

// consentData is a consent change: the member and the new consent. A full
// Member record is accepted as well.
type consentData struct {
	MemberID string          `json:"member_id"`
	Consent  *ledger.Consent `json:"consent"`
}

// op is a decoded, validated event, ready to apply without further checks.
type op struct {
	e       Event
	raw     []byte // stored form, compared for duplicates
	sale    *ledger.Sale
	refund  *refundData
	point   *pointData
	member  *ledger.Member
	consent *consentData
	clock   *ledger.TimeCorrection
	// erased names the member of a profile event redacted because the
	// member is erased (erase.go); confirm is a register's confirmation
	// of an erasure.
	erased  string
	confirm *ledger.Erased
}

func invalid(e Event, format string, args ...any) error {
	return fmt.Errorf("event %q (register %q seq %d): %s: %w", e.ID, e.Register, e.Seq, fmt.Sprintf(format, args...), ErrInvalid)
}

// prepared is decode's answer for an event, computed by Prepare before
// the transaction.
type prepared struct {
	o   op
	err error
}

// Prepare decodes and validates events for Apply (what ApplyIn would do
// first for each, inside the transaction), so a caller can do that work
// beside the commit of the batch before: head office's decoder prepares
// batch N+1 while the store commits batch N. An event given other
// fields or other data after Prepare is decoded again, so preparing never
// changes what is applied; its data bytes must not be changed in place.
func Prepare(events []Event) {
	ps := make([]prepared, len(events))
	for i := range events {
		events[i].prepared = nil
		ps[i].o, ps[i].err = decodeNew(events[i])
		events[i].prepared = &ps[i]
	}
}

// decode validates an event fully before anything is written, or returns
// what Prepare found for it.
func decode(e Event) (op, error) {
	if p := e.prepared; p != nil && sameEvent(p.o.e, e) {
		p.o.e = e
		return p.o, p.err
	}
	e.prepared = nil
	return decodeNew(e)
}

// sameEvent reports whether e is the event p was prepared from: the
// same fields, and the same data bytes (not a copy changed since).
func sameEvent(p, e Event) bool {
	return p.Register == e.Register && p.Store == e.Store && p.Incarnation == e.Incarnation &&
		p.PrevIncarnation == e.PrevIncarnation && p.Seq == e.Seq && p.ID == e.ID && p.Type == e.Type &&
		p.WallTime.Equal(e.WallTime) && p.ClockTrusted == e.ClockTrusted &&
		len(p.Data) == len(e.Data) && (len(e.Data) == 0 || &p.Data[0] == &e.Data[0])
}

// isEventID reports whether id is register + "-" + seq in canonical
// decimal, without building that string.
func isEventID(id, register string, seq uint64) bool {
	var n [20]byte
	d := strconv.AppendUint(n[:0], seq, 10)
	return len(id) == len(register)+1+len(d) && id[:len(register)] == register &&
		id[len(register)] == '-' && id[len(register)+1:] == string(d)
}

func decodeNew(e Event) (op, error) {
	o := op{e: e}
	switch {
	case e.Register == "" || len(e.Register) > maxIDLen || strings.ContainsAny(e.Register, "\x00/+#"):
		return o, invalid(e, "register id must be 1-%d characters without NUL, '/', '+' or '#'", maxIDLen)
	case e.Seq == 0:
		return o, invalid(e, "sequence must start at 1")
	case !isEventID(e.ID, e.Register, e.Seq):
		return o, invalid(e, "id must be %q", e.Register+"-"+strconv.FormatUint(e.Seq, 10))
	case e.Type == "":
		return o, invalid(e, "missing type")
	case len(e.Data) == 0:
		return o, invalid(e, "no data")
	case len(e.Type) > maxIDLen:
		return o, invalid(e, "type longer than %d", maxIDLen)
	}
	o.raw = encodeRecord(e.OutboxRecord)
	strict := func(v any) error { return json.Unmarshal(e.Data, v) }
	switch e.Type {
	case ledger.OutSale:
		var s ledger.Sale
		if err := strict(&s); err != nil {
			return o, invalid(e, "sale: %v", err)
		}
		if s.ID == "" || len(s.ID) > maxIDLen {
			return o, invalid(e, "sale without id")
		}
		if s.Register != "" && s.Register != e.Register {
			return o, invalid(e, "sale of register %q sent by %q", s.Register, e.Register)
		}
		if s.Total > maxAbsMoney || s.Total < -maxAbsMoney {
			return o, invalid(e, "sale total %d out of range", s.Total)
		}
		o.sale = &s
	case ledger.OutRefund, ledger.OutVoid:
		var r refundData
		if err := strict(&r); err != nil {
			return o, invalid(e, "%s: %v", e.Type, err)
		}
		if r.SaleID == "" {
			return o, invalid(e, "%s without sale_id", e.Type)
		}
		if r.Register != "" && r.Register != e.Register {
			return o, invalid(e, "%s of register %q sent by %q", e.Type, r.Register, e.Register)
		}
		for _, m := range []*ledger.Money{r.Amount, r.Total} {
			if m != nil && (*m > maxAbsMoney || *m < -maxAbsMoney) {
				return o, invalid(e, "%s amount %d out of range", e.Type, *m)
			}
		}
		for _, l := range r.Lines {
			if l.Quantity < 0 || l.Quantity > 1<<20 || l.UnitPrice > maxAbsMoney>>20 || l.UnitPrice < -maxAbsMoney>>20 || l.Discount > maxAbsMoney || l.Discount < -maxAbsMoney {
				return o, invalid(e, "%s line %d out of range", e.Type, l.No)
			}
		}
		o.refund = &r
	case ledger.OutPoints:
		p, ok := decodePointFast(e.Data)
		if !ok {
			p = pointData{}
			if err := strict(&p); err != nil {
				return o, invalid(e, "point event: %v", err)
			}
		}
		if p.MemberID == "" || len(p.MemberID) > maxIDLen || strings.ContainsRune(p.MemberID, 0) {
			return o, invalid(e, "point event without a valid member_id")
		}
		if p.Register != "" && p.Register != e.Register {
			return o, invalid(e, "point event of register %q sent by %q", p.Register, e.Register)
		}
		if p.Points > maxAbsPts || p.Points < -maxAbsPts {
			return o, invalid(e, "points %d out of range", p.Points)
		}
		p.recAt = e.WallTime
		o.point = &p
	case ledger.OutMember:
		if id, ok := ledger.RedactedMember(e.Data); ok {
			if len(id) > maxIDLen || strings.ContainsRune(id, 0) {
				return o, invalid(e, "redacted member event of an invalid member id")
			}
			o.erased = id
			return o, nil
		}
		var m ledger.Member
		if err := strict(&m); err != nil {
			return o, invalid(e, "member: %v", err)
		}
		if m.ID == "" || len(m.ID) > maxIDLen || strings.ContainsRune(m.ID, 0) {
			return o, invalid(e, "member without a valid id")
		}
		for _, a := range m.Aliases {
			if a == "" || len(a) > maxIDLen {
				return o, invalid(e, "member %q: empty or over-long alias", m.ID)
			}
		}
		o.member = &m
	case ledger.OutErased:
		var c ledger.Erased
		if err := strict(&c); err != nil || c.MemberID == "" || len(c.MemberID) > maxIDLen || strings.ContainsRune(c.MemberID, 0) || c.Erasure == 0 {
			return o, invalid(e, "erasure confirmation: need member_id and erasure")
		}
		o.confirm = &c
	case ledger.OutConsent:
		if id, ok := ledger.RedactedMember(e.Data); ok {
			if len(id) > maxIDLen || strings.ContainsRune(id, 0) {
				return o, invalid(e, "redacted consent event of an invalid member id")
			}
			o.erased = id
			return o, nil
		}
		var c consentData
		if err := strict(&c); err == nil && c.MemberID != "" && c.Consent != nil {
			if len(c.MemberID) > maxIDLen || strings.ContainsRune(c.MemberID, 0) {
				return o, invalid(e, "consent for an invalid member_id")
			}
			o.consent = &c
			break
		}
		var m ledger.Member
		if err := strict(&m); err != nil || m.ID == "" || len(m.ID) > maxIDLen || strings.ContainsRune(m.ID, 0) {
			return o, invalid(e, "consent: need member_id and consent, or a member record")
		}
		o.consent = &consentData{MemberID: m.ID, Consent: &m.Consent}
	case ledger.OutClock:
		var tc ledger.TimeCorrection
		if err := strict(&tc); err != nil {
			return o, invalid(e, "clock correction: %v", err)
		}
		if tc.Register != "" && tc.Register != e.Register {
			return o, invalid(e, "clock correction of register %q sent by %q", tc.Register, e.Register)
		}
		for _, c := range tc.Events {
			if c.Seq == 0 || c.Seq >= e.Seq || len(c.MemberID) > maxIDLen || strings.ContainsRune(c.MemberID, 0) {
				return o, invalid(e, "clock correction of event %d: sequence must be before %d and member_id valid", c.Seq, e.Seq)
			}
		}
		o.clock = &tc
	default:
		// An unknown type from a newer register: kept in the stream (so the
		// watermark moves and nothing is lost) but not in the view.
		if !json.Valid(e.Data) {
			return o, invalid(e, "data is not JSON")
		}
	}
	return o, nil
}

// encodeRecord writes the stored form of a record: the JSON of
// ledger.OutboxRecord, built by hand because json.Marshal (which compacts
// and re-validates Data) was the largest cost of ingest:
// BenchmarkEncodeRecordVsMarshal measures it at a third of json.Marshal's
// CPU time. Data has been validated by the caller. The capacity covers
// the fixed parts (at most 126 bytes with the longest sequence number and
// time), so the record is built in one allocation.
func encodeRecord(r ledger.OutboxRecord) []byte {
	b := make([]byte, 0, 128+len(r.ID)+len(r.Type)+len(r.Data))
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"id":`...)
	b = appendQuote(b, r.ID)
	b = append(b, `,"type":`...)
	b = appendQuote(b, string(r.Type))
	b = append(b, `,"wall_time":"`...)
	b = r.WallTime.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","clock_trusted":`...)
	b = strconv.AppendBool(b, r.ClockTrusted)
	b = append(b, `,"data":`...)
	b = append(b, r.Data...)
	return append(b, '}')
}

// appendQuote is strconv.AppendQuote, copying a string of printable ASCII
// without '"' or '\\' (an id, a type) as it is rather than rune by rune.
func appendQuote(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Apply applies a batch of events in one durable transaction and reports
// what happened; see the package documentation for the rules. Invalid
// events are listed in Result.Rejected and change nothing; the returned
// error is only for storage failures, in which case nothing was applied.
func (s *Store) Apply(events []Event) (Result, error) {
	var res Result
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		res, err = ApplyIn(newBoltTxn(tx), events, s.applyOpts())
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	return res, nil
}

type applier struct {
	tx      Txn
	opts    Options
	regs    map[string]*RegisterState
	members map[string]*memberRec
	touched map[string]bool
	res     Result
	// store is the store of the event being applied; each member touched
	// records the stores it was touched from (memberRec.shops, stream.go).
	store string
	// moveAliases: a person approved a held member record (ResolveIn),
	// so an alias it claims moves from its owner to the member instead of
	// staying with the owner as a conflict.
	moveAliases bool
}

func (a *applier) reg(id string) (*RegisterState, error) {
	if rs, ok := a.regs[id]; ok {
		return rs, nil
	}
	rs, _, err := a.tx.Register(id)
	rs.Register = id
	if err != nil {
		return nil, err
	}
	a.regs[id] = &rs
	return &rs, nil
}

func (a *applier) member(id string) (*memberRec, error) {
	if m, ok := a.members[id]; ok {
		a.shop(m)
		return m, nil
	}
	row, ok, err := a.tx.Member(id)
	if err != nil {
		return nil, err
	}
	m := &memberRec{ID: id, prof: &ledger.Member{ID: id}, profileDirty: true}
	if ok {
		m = recOf(row)
	}
	if m.Included == nil {
		m.Included = map[string]uint64{}
	}
	a.members[id] = m
	a.touched[id] = true
	a.shop(m)
	return m, nil
}

func (a *applier) reject(e Event, err error) {
	a.res.Rejected = append(a.res.Rejected, err)
	if rs, ok := a.regs[e.Register]; ok {
		rs.Rejected++
		rs.LastRejected = err.Error()
	}
}

func (a *applier) conflict(rs *RegisterState, c Conflict) error {
	rs.Conflicts++
	a.res.Conflicts = append(a.res.Conflicts, c)
	return a.tx.AddConflict(c)
}

func (a *applier) one(e Event) error {
	o, err := decode(e)
	if err != nil {
		if e.Register != "" && len(e.Register) <= maxIDLen {
			if _, lerr := a.reg(e.Register); lerr != nil {
				return lerr
			}
		}
		a.reject(e, err)
		return nil
	}
	rs, err := a.reg(e.Register)
	if err != nil {
		return err
	}
	// A profile event of an erased member is redacted before anything
	// stores it (erase.go).
	if o, err = a.erasedOp(o); err != nil {
		return err
	}
	// A register belongs to one store and one ledger incarnation; events
	// from another are held for review, never applied or dropped in
	// silence (the broker ACL lets a register write only under its own
	// id; this closes the store level and tells two ledgers apart).
	if reason, wm, err := a.place(rs, e, o); err != nil {
		return err
	} else if reason != "" {
		return a.hold(rs, e, o, reason, wm)
	}
	if err := a.retireHeld(rs); err != nil {
		return err
	}
	if bound := rs.Watermark + heldAhead(a.opts.MaxHeld); e.Seq > bound {
		// Far beyond the watermark (head office restored from an older
		// backup, or a bad number): dropped, like an event past
		// MaxHeld, and counted as seen only up to the bound, so no walk
		// over the numbers from the watermark to the highest seen spans
		// it (review6: one at 20,000,000 cost seconds per commit) while
		// the gap stays open and head office still asks the register to
		// resend from the watermark (review7: without the gap it never
		// asked, and a register far ahead was stuck for good).
		rs.Dropped++
		a.res.Dropped++
		rs.Seen = max(rs.Seen, bound)
		if rs.DroppedFrom == 0 || e.Seq < rs.DroppedFrom {
			// The gap ends below it (review10: the register names the gap
			// up to its first kept event, and an operator's gap ending at
			// the bound left the rest to record again).
			rs.DroppedFrom = e.Seq
		}
		return nil
	}
	rs.Seen = max(rs.Seen, e.Seq)
	switch {
	case e.Seq <= rs.Watermark:
		prev, err := a.tx.Event(e.Register, e.Seq)
		if err != nil {
			return err
		}
		if !bytes.Equal(prev, o.raw) {
			// The same incarnation sent other content under a number
			// already applied: a ledger restored from an older backup.
			// Hold it, and acknowledge only below it. One an operator
			// dismissed (ResolveIn) is settled: a resend of it counts as
			// a duplicate and the register may forget it.
			return a.holdReused(rs, e, o, prev, "applied", e.Seq-1)
		}
		return a.dupOrConflict(rs, o, prev, "applied")
	case e.Seq == rs.Watermark+1:
		if err := a.applyOp(rs, o); err != nil {
			return err
		}
		return a.drain(rs)
	default:
		prev, err := a.tx.Held(e.Register, e.Seq)
		if err != nil {
			return err
		}
		if prev != nil {
			if !bytes.Equal(prev, o.raw) {
				// Other content under a number already held beyond the
				// gap: a ledger restored from an older copy numbering
				// past head office's watermark. Hold it for review, like
				// a reused applied number, and acknowledge only below it
				// (and never beyond the watermark: what lies between
				// is still missing).
				return a.holdReused(rs, e, o, prev, "held", min(e.Seq-1, rs.Watermark))
			}
			return a.dupOrConflict(rs, o, prev, "held")
		}
		if rs.Held >= a.opts.MaxHeld {
			rs.Dropped++
			a.res.Dropped++
			return nil
		}
		if rs.Held == 0 || e.Seq < rs.HeldFrom {
			rs.HeldFrom = e.Seq
		}
		if rs.Held == 0 {
			rs.HeldIncarnation = e.Incarnation
		}
		rs.Held++
		a.res.Held++
		return a.tx.PutHeld(e.Register, e.Seq, o.raw)
	}
}

// holdReused holds e, other content under a number the bound incarnation
// already used (where: "applied", or "held" beyond the gap), as
// ReviewReused, acknowledging at most wm: a conflict is recorded the
// first time (a resend of the same held event records none), and one an
// operator dismissed counts as a duplicate.
func (a *applier) holdReused(rs *RegisterState, e Event, o op, prev []byte, where string, wm uint64) error {
	same, settled, err := a.reviewedAs(e, o)
	switch {
	case err != nil:
		return err
	case same && settled:
		// Settled by an operator: a resend of it counts as a duplicate
		// and the register may forget it.
		rs.Duplicates++
		a.res.Duplicates++
		return nil
	case !same:
		// A resend of the same held event records no second conflict
		// (review7: every resend added one).
		if err := a.dupOrConflict(rs, o, prev, where); err != nil {
			return err
		}
	}
	return a.hold(rs, e, o, ReviewReused, wm)
}

func (a *applier) dupOrConflict(rs *RegisterState, o op, prev []byte, where string) error {
	if bytes.Equal(prev, o.raw) {
		rs.Duplicates++
		a.res.Duplicates++
		return nil
	}
	return a.conflict(rs, Conflict{
		Kind: ConflictEvent, Register: o.e.Register, Seq: o.e.Seq, ID: o.e.ID,
		Detail: fmt.Sprintf("%s event has different content; the first is kept", where),
	})
}

// drain applies held events that the watermark has reached.
func (a *applier) drain(rs *RegisterState) error {
	if rs.Held == 0 {
		return nil
	}
	if err := a.drainHeld(rs); err != nil {
		return err
	}
	return a.nextHeld(rs)
}

// nextHeld keeps rs.HeldFrom, the lowest event held beyond the gap, true
// after a drain: when the drain took it, the next one is looked up (it
// lies beyond a second gap, which is rare). 0 means none or not known (a
// store written before HeldFrom was kept).
func (a *applier) nextHeld(rs *RegisterState) error {
	if rs.Held == 0 {
		rs.HeldFrom, rs.HeldIncarnation = 0, ""
		return nil
	}
	if rs.HeldFrom == 0 || rs.HeldFrom > rs.Watermark {
		return nil
	}
	rs.HeldFrom = 0
	// The drain stopped at a number not held: the next lies beyond it.
	seq, _, ok, err := a.tx.NextHeld(rs.Register, rs.Watermark+1)
	if err != nil {
		return err
	}
	if ok && seq <= rs.Seen {
		rs.HeldFrom = seq
	}
	return nil
}

// heldAhead is how far beyond the watermark an event may be held:
// four times MaxHeld, at least 65,536 (a register sends at most its
// MaxUnacked, 16,384 by default, beyond head office's watermark).
func heldAhead(maxHeld int) uint64 { return uint64(max(4*maxHeld, 1<<16)) }

// HeldBeyondGapSuffix marks, in the review list, an event an incarnation
// no longer followed had sent beyond a gap when its number is also held
// for review with other content (the incarnation's number reused by a
// restored copy): it is listed under the incarnation id plus this suffix.
const HeldBeyondGapSuffix = "+beyond-gap"

// retireHeld moves the events held beyond the gap to review when they
// belong to an incarnation head office no longer follows (a succession
// or an adoption since they were held): drained into the new stream, an
// old ledger's event would take a number the new one uses, and the new
// one's event under it would be dropped and then acknowledged (review5).
// They are held as that incarnation's (ReviewIncarnation), and the gap
// they waited beyond is closed: the new stream starts at the watermark.
func (a *applier) retireHeld(rs *RegisterState) error {
	if rs.Held == 0 || rs.HeldIncarnation == "" || rs.HeldIncarnation == rs.Incarnation {
		return nil
	}
	old := rs.HeldIncarnation
	for after := rs.Watermark; rs.Held > 0; {
		seq, v, ok, err := a.tx.NextHeld(rs.Register, after)
		if err != nil {
			return err
		}
		if !ok || seq > rs.Seen {
			break
		}
		after = seq
		if err := a.tx.DeleteHeld(rs.Register, seq); err != nil {
			return err
		}
		rs.Held--
		var rec ledger.OutboxRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			e := Event{Register: rs.Register, Store: rs.Store, Incarnation: old}
			e.Seq = seq
			a.reject(e, invalid(e, "held record: %v", err))
			continue
		}
		inc := old
		prev, err := a.tx.Review(rs.Register, inc, seq)
		if err != nil {
			return err
		}
		if prev != nil {
			var p heldRec
			if json.Unmarshal(prev, &p) == nil && sameRecord(p.Record, rec) {
				continue // the same event is held for review already
			}
			// Its number is held for review with other content (the
			// same incarnation reused it: a restored copy): keep both,
			// this one under a name of its own (review6).
			inc = old + HeldBeyondGapSuffix
		}
		hv, err := json.Marshal(heldRec{Reason: ReviewIncarnation, Store: rs.Store, Record: rec})
		if err != nil {
			return err
		}
		if err := a.tx.PutReview(rs.Register, inc, seq, hv); err != nil {
			return err
		}
		rs.Review++
		a.res.Reviewed++
	}
	rs.Held, rs.HeldFrom, rs.HeldIncarnation = 0, 0, ""
	rs.Seen = rs.Watermark
	return nil
}

func (a *applier) drainHeld(rs *RegisterState) error {
	for rs.Held > 0 {
		seq := rs.Watermark + 1
		next, v, ok, err := a.tx.NextHeld(rs.Register, rs.Watermark)
		if err != nil {
			return err
		}
		if !ok || next != seq {
			return nil
		}
		var rec ledger.OutboxRecord
		uerr := json.Unmarshal(v, &rec)
		if err := a.tx.DeleteHeld(rs.Register, seq); err != nil {
			return err
		}
		rs.Held--
		e := Event{Register: rs.Register, Store: rs.Store, OutboxRecord: rec}
		if uerr != nil {
			a.reject(e, invalid(e, "held record: %v", uerr))
			return nil
		}
		o, err := decode(e)
		if err != nil {
			a.reject(e, err)
			return nil
		}
		// A profile event of a member erased since it was held is
		// redacted and held by policy, as one arriving now would be.
		if o, err = a.erasedHeldOp(o); err != nil {
			return err
		}
		if err := a.applyOp(rs, o); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) applyOp(rs *RegisterState, o op) error {
	e := o.e
	if err := a.tx.PutEvent(e.Register, e.Seq, o.raw); err != nil {
		return err
	}
	rs.Watermark = e.Seq
	rs.Applied++
	a.res.Applied++
	if o.erased != "" {
		return a.erasedHold(rs, o)
	}
	// Head office's policy (sync/hq/policy): an event it holds stays in
	// the stream (the watermark moves on) without its effect.
	if v, err := a.check(rs, o); err != nil {
		return err
	} else if v.Hold() {
		return a.policyHold(rs, o, v)
	}
	return a.effect(rs, o)
}

// effect applies what an event means beyond its stream: the sale,
// refund, points, member, correction or consent.
func (a *applier) effect(rs *RegisterState, o op) error {
	e := o.e
	a.store = e.Store
	if a.store == "" {
		a.store = rs.Store
	}
	switch {
	case o.sale != nil:
		return a.applySale(rs, e, o.sale)
	case o.refund != nil:
		return a.applyRefund(e, o.refund)
	case o.point != nil:
		return a.applyPoints(e, o.point)
	case o.member != nil:
		return a.applyMember(rs, e, o.member)
	case o.clock != nil:
		return a.applyCorrection(e, o.clock)
	case o.confirm != nil:
		return a.confirmErasure(e, o.confirm)
	case o.consent != nil:
		m, err := a.member(o.consent.MemberID)
		if err != nil {
			return err
		}
		p, err := m.profile()
		if err != nil {
			return err
		}
		p.ConsentHistory = append(p.ConsentHistory, *o.consent.Consent)
		a.weighConsent(p, *o.consent.Consent)
		m.profileDirty = true
		m.Included[e.Register] = max(m.Included[e.Register], e.Seq)
	}
	return nil
}

// putPurchase stores a purchase entry of member (old: the entry it
// corrects) and brings the running figures up to date.
func (a *applier) putPurchase(member string, e Event, p ledger.Purchase, old *ledger.Purchase) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	a.touched[member] = true
	if err := a.tx.PutPurchase(member, e.Register, e.Seq, v); err != nil {
		return err
	}
	return a.figure(member, old, &p)
}

func (a *applier) applySale(rs *RegisterState, e Event, s *ledger.Sale) error {
	prev, err := a.tx.Sale(s.ID)
	if err != nil {
		return err
	}
	if prev != nil {
		var p saleRec
		_ = json.Unmarshal(prev, &p)
		return a.conflict(rs, Conflict{
			Kind: ConflictSale, Register: e.Register, Seq: e.Seq, ID: e.ID,
			Detail: fmt.Sprintf("sale id %q already recorded by %s-%d; this one is kept in the stream but not counted", s.ID, p.Register, p.Seq),
		})
	}
	v, err := json.Marshal(saleRec{Register: e.Register, Seq: e.Seq, MemberID: s.MemberID, Total: s.Total, Allow: a.allowance(s)})
	if err != nil {
		return err
	}
	if err := a.tx.PutSale(s.ID, v); err != nil {
		return err
	}
	if s.MemberID == "" {
		return nil
	}
	var cats []string
	seen := map[string]bool{}
	for _, l := range s.Lines {
		if l.Category != "" && !seen[l.Category] {
			seen[l.Category] = true
			cats = append(cats, l.Category)
		}
	}
	wt, trusted := s.WallTime, s.ClockTrusted
	if wt.IsZero() {
		wt, trusted = e.WallTime, e.ClockTrusted
	}
	return a.putPurchase(s.MemberID, e, ledger.Purchase{
		SaleID: s.ID, Seq: e.Seq, WallTime: wt, ClockTrusted: trusted, Amount: s.Total, Categories: cats,
	}, nil)
}

func absMoney(m ledger.Money) ledger.Money {
	if m < 0 {
		return -m
	}
	return m
}

func (a *applier) applyRefund(e Event, r *refundData) error {
	var sr *saleRec
	v, err := a.tx.Sale(r.SaleID)
	if err != nil {
		return err
	}
	if v != nil {
		sr = &saleRec{}
		if err := json.Unmarshal(v, sr); err != nil {
			return fmt.Errorf("sale %q: %w", r.SaleID, err)
		}
	}
	var amount ledger.Money
	switch {
	case r.Amount != nil:
		amount = absMoney(*r.Amount)
	case r.Total != nil:
		amount = absMoney(*r.Total)
	case len(r.Lines) > 0:
		for _, l := range r.Lines {
			amount += l.Amount()
		}
		amount = absMoney(amount)
	case e.Type == ledger.OutVoid && sr != nil:
		amount = max(sr.Total-sr.Refunded, 0)
	}
	member := r.MemberID
	if sr != nil {
		if member == "" {
			member = sr.MemberID
		}
		sr.Refunded += amount
		if e.Type == ledger.OutVoid {
			sr.Voided = true
		}
		v, err := json.Marshal(sr)
		if err != nil {
			return err
		}
		if err := a.tx.PutSale(r.SaleID, v); err != nil {
			return err
		}
	}
	if member == "" || amount == 0 {
		return nil
	}
	return a.putPurchase(member, e, ledger.Purchase{
		SaleID: r.SaleID, Seq: e.Seq, WallTime: e.WallTime, ClockTrusted: e.ClockTrusted, Amount: -amount,
	}, nil)
}

func (a *applier) applyPoints(e Event, p *pointData) error {
	m, err := a.member(p.MemberID)
	if err != nil {
		return err
	}
	m.Balance += p.Points
	if m.added == nil {
		m.added = map[string]ledger.Points{}
	}
	m.added[e.Register] += p.Points
	m.Included[e.Register] = max(m.Included[e.Register], e.Seq)
	if err := a.creditedBonus(p); err != nil {
		return err
	}
	if p.Points >= 0 || m.Balance >= 0 {
		return nil
	}
	d := DoubleSpend{
		MemberID: p.MemberID, Register: e.Register, Seq: e.Seq, EventID: e.ID, Kind: p.Kind,
		Points: p.Points, BalanceAfter: m.Balance, Overdraft: -m.Balance,
		ExceedsLimit: -m.Balance > a.opts.OfflineRedeemLimit,
	}
	return a.tx.AddDoubleSpend(d)
}

// applyCorrection dates this register's earlier events stamped by an
// untrusted clock by their corrected time: purchases get CorrectedTime
// (so rhythm, cohorts and BG/NBD use it), a member enrolled on an
// untrusted clock gets the corrected enrolment time. The events stay as
// they were sent.
func (a *applier) applyCorrection(e Event, tc *ledger.TimeCorrection) error {
	for _, c := range tc.Events {
		if c.MemberID == "" {
			continue
		}
		v, err := a.tx.Purchase(c.MemberID, e.Register, c.Seq)
		if err != nil {
			return err
		}
		if v != nil {
			var p ledger.Purchase
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("purchase %s/%s/%d: %w", c.MemberID, e.Register, c.Seq, err)
			}
			if !p.ClockTrusted {
				old := p
				p.CorrectedTime = c.WallTime
				if err := a.putPurchase(c.MemberID, Event{OutboxRecord: ledger.OutboxRecord{Seq: c.Seq}, Register: e.Register}, p, &old); err != nil {
					return err
				}
			}
		}
		if c.Type == ledger.OutMember {
			if _, ok := a.members[c.MemberID]; !ok {
				if _, ok, err := a.tx.Member(c.MemberID); err != nil {
					return err
				} else if !ok {
					continue // not a member head office knows
				}
			}
			mr, err := a.member(c.MemberID)
			if err != nil {
				return err
			}
			p, err := mr.profile()
			if err != nil {
				return err
			}
			if !p.EnrolledTrusted {
				p.EnrolledAt, p.EnrolledTrusted = c.WallTime, true
				mr.profileDirty = true
			}
		}
	}
	return nil
}

func (a *applier) applyMember(rs *RegisterState, e Event, in *ledger.Member) error {
	m, err := a.member(in.ID)
	if err != nil {
		return err
	}
	cur, err := m.profile()
	if err != nil {
		return err
	}
	m.profileDirty = true
	for _, al := range in.Aliases {
		owner, err := a.tx.Alias(al)
		if err != nil {
			return err
		}
		switch {
		case owner == "":
			if err := a.tx.PutAlias(al, in.ID); err != nil {
				return err
			}
		case owner != in.ID && a.moveAliases:
			if err := a.moveAlias(al, owner, in.ID); err != nil {
				return err
			}
		case owner != in.ID:
			if err := a.conflict(rs, Conflict{
				Kind: ConflictAlias, Register: e.Register, Seq: e.Seq, ID: e.ID,
				Alias: al, Member: in.ID, Owner: owner,
				Detail: "alias already belongs to another member; it stays with its owner",
			}); err != nil {
				return err
			}
			continue
		}
		if !contains(cur.Aliases, al) {
			cur.Aliases = append(cur.Aliases, al)
		}
	}
	// The register that sent the latest change knows best: non-empty
	// fields replace, identity and enrolment stay with the first record.
	if in.Name != "" {
		cur.Name = in.Name
	}
	if in.Birthday != "" {
		cur.Birthday = in.Birthday
	}
	if in.Contact != (ledger.Contact{}) {
		cur.Contact = in.Contact
	}
	// Consent is the member's latest choice, not this record's: the
	// changes the record carries join the history (once each), and the
	// record's consent (its register's latest, in the register's own
	// order) is weighed against the consent held, once: a record
	// repeating a change head office has already weighed (in its
	// history) does not weigh it again (review10: an untrusted withdrawal
	// repeated by a later member record undid the member's later grant).
	known := slices.Contains(cur.ConsentHistory, in.Consent)
	for _, c := range in.ConsentHistory {
		if !slices.Contains(cur.ConsentHistory, c) {
			cur.ConsentHistory = append(cur.ConsentHistory, c)
		}
	}
	if in.Consent != (ledger.Consent{}) {
		if !slices.Contains(cur.ConsentHistory, in.Consent) {
			cur.ConsentHistory = append(cur.ConsentHistory, in.Consent)
		}
		if !known {
			a.weighConsent(cur, in.Consent)
		}
	}
	if in.Tier != "" {
		cur.Tier = in.Tier
	}
	if cur.EnrolledAt.IsZero() {
		cur.EnrolledAt, cur.EnrolledTrusted = in.EnrolledAt, in.EnrolledTrusted
	}
	if cur.HomeRegister == "" {
		cur.HomeRegister = in.HomeRegister
		if cur.HomeRegister == "" {
			cur.HomeRegister = e.Register
		}
	}
	if in.Language != "" {
		cur.Language = in.Language
	}
	m.Included[e.Register] = max(m.Included[e.Register], e.Seq)
	return nil
}

// weighConsent makes the consent change c p's consent if it is the
// member's later choice (ledger.Consent.Supersedes), whatever order the
// changes arrived in; the caller keeps c in p's history. A withdrawal
// stamped by an untrusted clock counts from now, head office's time of
// applying it: it cannot have been made later, so a grant on a trusted
// clock after now is shown to follow it and undoes it.
func (a *applier) weighConsent(p *ledger.Member, c ledger.Consent) {
	if !c.Supersedes(p.Consent) {
		return
	}
	if !c.Given && !c.ClockTrusted {
		now, _ := a.opts.Clock.Now()
		c.At, c.ClockTrusted = now.UTC(), true
	}
	p.Consent = c
}

// moveAlias gives alias to member: its owner's profile loses it, so the
// summaries of both (each is touched) carry the move to the registers.
func (a *applier) moveAlias(alias, owner, member string) error {
	om, err := a.member(owner)
	if err != nil {
		return err
	}
	op, err := om.profile()
	if err != nil {
		return err
	}
	op.Aliases = slices.DeleteFunc(op.Aliases, func(x string) bool { return x == alias })
	om.profileDirty = true
	return a.tx.PutAlias(alias, member)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (a *applier) flush() error {
	for _, id := range sortedKeys(a.regs) {
		rs := a.regs[id]
		if rs.DroppedFrom != 0 && rs.DroppedFrom <= rs.Watermark+1 {
			rs.DroppedFrom = 0 // next in line: applied or held when it comes
		}
		rs.Gap = rs.Seen > rs.Watermark
		rs.WaitFrom, rs.WaitTo = 0, 0
		if rs.Gap {
			rs.WaitFrom, rs.WaitTo = rs.Watermark+1, rs.gapEnd()
		}
		if err := a.tx.PutRegister(*rs); err != nil {
			return err
		}
		a.res.Registers[id] = *rs
	}
	// Members in id order: backends with row locks update them in one
	// fixed order.
	for _, id := range sortedKeys(a.members) {
		row, err := a.members[id].row()
		if err != nil {
			return err
		}
		if err := a.tx.PutMember(row); err != nil {
			return err
		}
	}
	for id := range a.touched {
		a.res.Members = append(a.res.Members, id)
	}
	sort.Strings(a.res.Members)
	return a.flushStreams(a.res.Members)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
