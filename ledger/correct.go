package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// untimedRec is an entry of the untimed bucket: an event stamped by an
// untrusted clock, with what its correction needs.
type untimedRec struct {
	Type   OutboxType    `json:"type"`
	Member string        `json:"member,omitempty"`
	Sale   string        `json:"sale,omitempty"`
	Boot   string        `json:"boot,omitempty"`
	Mono   time.Duration `json:"mono"`
}

// TimeCorrection is the payload of a clock.corrected outbox record: the
// wall times reconstructed for earlier events stamped by an untrusted
// clock, once the clock was trusted. An event of the boot in which the
// clock became trusted gets At minus the monotonic time elapsed since it;
// an event of an earlier boot gets At (the first trusted time).
type TimeCorrection struct {
	Register string          `json:"register"`
	Seq      uint64          `json:"seq"`
	At       time.Time       `json:"at"` // the trusted time the corrections count from
	BootID   string          `json:"boot_id,omitempty"`
	Events   []CorrectedTime `json:"events"`
}

// CorrectedTime is one event's reconstructed wall time.
type CorrectedTime struct {
	Seq      uint64     `json:"seq"`
	ID       string     `json:"id"`
	Type     OutboxType `json:"type"`
	MemberID string     `json:"member_id,omitempty"` // the member the event is about, if any
	WallTime time.Time  `json:"wall_time"`
	SameBoot bool       `json:"same_boot,omitempty"` // reconstructed from the monotonic clock
}

// correctBatch bounds the events one correction record carries.
const correctBatch = 500

// timeRef is the current op's boot, monotonic time and fault.
func (w *wtx) timeRef() TimeRef {
	return TimeRef{BootID: w.st.boot, SinceBoot: int64(w.st.mono), ClockFault: w.st.fault}
}

// pend records an event stamped by an untrusted clock for correction.
func (w *wtx) pend(seq uint64, typ OutboxType, v any) {
	var member, sale string
	switch x := v.(type) {
	case Sale:
		member, sale = x.MemberID, x.ID
	case Refund:
		member, sale = x.MemberID, x.SaleID
	case PointEvent:
		member, sale = x.MemberID, x.SaleID
	case Member:
		member = x.ID
	}
	w.pendIDs(seq, typ, member, sale)
}

// pendIDs is pend for an event about member and sale (either may be
// empty).
func (w *wtx) pendIDs(seq uint64, typ OutboxType, member, sale string) {
	r := untimedRec{Type: typ, Boot: w.st.boot, Mono: w.st.mono, Member: member, Sale: sale}
	w.putJSON(bPending, u64(seq), r)
	w.untimed++
}

// CorrectTimes corrects the wall times of events stamped by an untrusted
// clock, once the clock is trusted, and returns how many it corrected. It
// writes a clock.corrected record (history is never rewritten) and then
// makes, on the corrected times and once, the decisions that waited: the
// expiry date of their lots, the purchase index times tier windows read,
// the campaign, tier and birthday points their sales would have earned
// (credited as a "clock-correction" bonus, never taken away), and the
// member's tier. With an untrusted or faulty clock it writes nothing and
// returns ErrClockUntrusted or ErrClockFault.
func (l *Ledger) CorrectTimes(ctx context.Context) (int, error) {
	total := 0
	for {
		res, err := l.submit(ctx, func(w *wtx) (any, error) { return w.correct() })
		if err != nil {
			return total, err
		}
		n := res.(int)
		total += n
		if n < correctBatch {
			return total, nil
		}
	}
}

func (w *wtx) clockRefusal(what string) error {
	if w.st.fault != "" {
		return fmt.Errorf("ledger %s: clock %s the trusted time seen: %w", what, w.st.fault, ErrClockFault)
	}
	return fmt.Errorf("ledger %s: %w", what, ErrClockUntrusted)
}

func (w *wtx) correct() (int, error) {
	if !w.trusted {
		return 0, w.clockRefusal("correct times")
	}
	c := w.tx.Bucket(bPending).Cursor()
	type ent struct {
		seq uint64
		r   untimedRec
	}
	var ents []ent
	for k, v := c.First(); k != nil && len(ents) < correctBatch; k, v = c.Next() {
		var r untimedRec
		if err := json.Unmarshal(v, &r); err != nil {
			return 0, fmt.Errorf("decode untimed %x: %w", k, err)
		}
		ents = append(ents, ent{binary.BigEndian.Uint64(k), r})
	}
	if len(ents) == 0 {
		return 0, nil
	}
	tc := TimeCorrection{Register: w.l.register, At: w.now, BootID: w.st.boot}
	when := map[uint64]time.Time{}
	for _, e := range ents {
		ct := CorrectedTime{Seq: e.seq, ID: w.l.eventID(e.seq), Type: e.r.Type, MemberID: e.r.Member, WallTime: w.now}
		if e.r.Boot != "" && e.r.Boot == w.st.boot && e.r.Mono <= w.st.mono {
			ct.WallTime, ct.SameBoot = w.now.Add(-(w.st.mono - e.r.Mono)), true
		}
		when[e.seq] = ct.WallTime
		tc.Events = append(tc.Events, ct)
		w.del(bPending, u64(e.seq))
		w.untimed--
	}
	w.emit(OutClock, func(seq uint64, _ string) any {
		tc.Seq = seq
		return tc
	})
	recs := map[string]*memberRec{}
	member := func(id string) (*memberRec, error) {
		if rec := recs[id]; rec != nil {
			return rec, nil
		}
		rec, err := w.member(id)
		if err != nil {
			return nil, err
		}
		recs[id] = rec
		return rec, nil
	}
	for _, e := range ents {
		if e.r.Member == "" {
			continue
		}
		at := when[e.seq]
		rec, err := member(e.r.Member)
		if err != nil {
			return 0, err
		}
		// A lot opened by this event waits for its expiry date.
		lk := rowKey(rowLot, e.r.Member, e.seq)
		var lot lotRec
		if v := w.get(bRows, lk); v == nil {
		} else if err := decodeLot(v, &lot); err != nil {
			return 0, fmt.Errorf("decode lot %q: %w", lk, err)
		} else if lot.ExpiresAt.IsZero() {
			if exp := w.eng.ExpiryFor(at); !exp.IsZero() {
				lot.ExpiresAt = exp
				w.indexExpiry(e.r.Member, exp)
				w.put(bRows, lk, encodeLot(lot, &w.mem))
			}
		}
		// Purchase index: the time tier windows and rhythm read.
		pk := rowKey(rowPurchase, e.r.Member, e.seq)
		var p Purchase
		if v := w.get(bRows, pk); v == nil {
		} else if err := decodePurchase(v, &p); err != nil {
			return 0, fmt.Errorf("decode purchase %q: %w", pk, err)
		} else {
			if _, dated := p.When(); !dated {
				w.datePurchase(rec, e.seq, at, p.Amount)
			}
			p.CorrectedTime = at
			w.put(bRows, pk, encodePurchase(&p, &w.mem))
		}
		if e.r.Type == OutSale {
			if err := w.rescore(rec, e.r.Sale, e.seq, at); err != nil {
				return 0, err
			}
		}
	}
	for _, rec := range recs {
		if t, ok := w.tierAt(rec, w.now); ok {
			rec.Member.Tier = t
		}
		w.saveMember(rec)
	}
	return len(ents), nil
}

// BonusClockCorrection is the Reason of the bonus event crediting what a
// sale made while the clock was untrusted would have earned on its
// corrected time (campaigns, tier multiplier, birthday).
const BonusClockCorrection = "clock-correction"

// rescore evaluates a sale stamped by an untrusted clock again on its
// corrected time and credits what it earns more (never less) as one
// bonus event, which a refund of the sale reverses like its other bonuses.
func (w *wtx) rescore(rec *memberRec, saleID string, seq uint64, at time.Time) error {
	srp, ok, err := readSaleRow(w.tx.Bucket(bSales), saleID)
	if err != nil || !ok {
		return err
	}
	sr := *srp
	if sr.Closed || sr.Voided || sr.MemberID != rec.Member.ID {
		return nil
	}
	sale, err := sr.sale()
	if err != nil {
		return err
	}
	ms := w.memberStateAt(rec, at, seq-1)
	ms.FirstBonusPending = false
	ms.Purchases = max(ms.Purchases, 1) // no first-purchase decision here
	in := rules.SaleInput{At: at, ClockTrusted: true, Member: ms}
	amounts, _, err := checkSale(&SaleRequest{ID: sale.ID, MemberID: sale.MemberID, Lines: sale.Lines})
	if err != nil {
		return err
	}
	for i, ln := range sale.Lines {
		in.Lines = append(in.Lines, rules.LineInput{No: ln.No, SKU: ln.SKU, Category: ln.Category, Amount: int64(amounts[i])})
	}
	out, err := w.eng.Evaluate(in)
	if err != nil {
		return nil // the rules in force cannot score it: keep what it earned
	}
	var had Points
	for _, ls := range sr.Lines {
		had += ls.Earned
	}
	for _, b := range sr.Bonuses {
		had += b.Points
	}
	var first Points
	for _, b := range out.Bonuses {
		if b.Kind == rules.BonusFirstPurchase {
			first += Points(b.Points)
		}
	}
	extra := Points(out.Total()) - first - had
	if extra > 0 {
		ev, _ := w.pointEvent(rec, PointEvent{Kind: KindBonus, Points: extra, SaleID: saleID, Reason: BonusClockCorrection, ExpiresAt: w.eng.ExpiryFor(at)}, nil)
		sr.Bonuses = append(sr.Bonuses, evRef{ID: ev.ID, Points: ev.Points})
		sr.Events = append(sr.Events, ev.Seq)
		w.put(bSales, []byte(saleID), sr.encode())
	}
	if out.BirthdayBonus && !slices.Contains(rec.BirthdayYears, out.BirthdayYear) {
		rec.BirthdayYears = append(rec.BirthdayYears, out.BirthdayYear)
		rec.BirthdayBonusGivenAt = at
	}
	return nil
}

// tierAt is the member's tier from the 12-month window ending at t; ok is
// false when the engine has no tiers.
func (w *wtx) tierAt(rec *memberRec, t time.Time) (string, bool) {
	te, ok := w.eng.(interface {
		TierFor(spend12m int64, visits12m int) rules.Tier
	})
	if !ok {
		return "", false
	}
	ms := w.memberStateAt(rec, t, w.seq)
	tier := te.TierFor(max(ms.Spend12m, 0), ms.Visits12m)
	return tier.Name, tier.Name != ""
}

// expiredOf is what expired of the lots opened by the given events.
func (w *wtx) expiredOf(member string, seqs []uint64) Points {
	var p Points
	for _, s := range seqs {
		if v := w.get(bRows, rowKey(rowExpired, member, s)); len(v) == 8 {
			p += Points(binary.BigEndian.Uint64(v))
		}
	}
	return p
}

// addExpired records points expired from a lot.
func (w *wtx) addExpired(lotKey []byte, p Points) {
	k := bytes.Clone(lotKey)
	k[len(k)-9] = rowExpired
	var old Points
	if v := w.get(bRows, k); len(v) == 8 {
		old = Points(binary.BigEndian.Uint64(v))
	}
	w.put(bRows, k, u64(uint64(old+p)))
}
