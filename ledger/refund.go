package ledger

import (
	"context"
	"fmt"
	"time"
)

// Refund is a refund or void as recorded (the payload of sale.refunded and
// sale.voided outbox records).
type Refund struct {
	ID           string         `json:"id"`
	SaleID       string         `json:"sale_id"`
	Register     string         `json:"register"`
	Seq          uint64         `json:"seq"`
	MemberID     string         `json:"member_id,omitempty"`
	Void         bool           `json:"void,omitempty"`
	Reason       string         `json:"reason,omitempty"`
	Lines        []RefundedLine `json:"lines"`
	Amount       Money          `json:"amount"` // money to give back: the refunded units' share of what was paid
	WallTime     time.Time      `json:"wall_time"`
	ClockTrusted bool           `json:"clock_trusted"`
	TimeRef
}

// RefundedLine is one line of a refund: units, money and the points
// reversed for them.
type RefundedLine struct {
	No       int    `json:"no"`
	Quantity int64  `json:"quantity"`
	Amount   Money  `json:"amount"`
	Points   Points `json:"points"`
}

// Refund refunds a sale fully (empty Lines: every unit not yet refunded)
// or by line. The refund id is the idempotency key: a retry returns the
// first result (Replayed set); the same id with other content is
// ErrConflict. Asking for more units than are left is ErrRefundExceeds.
//
// Points: refunding units of a line reverses floor(earned*r/q) minus what
// earlier refunds of that line already reversed, where q is the line's
// quantity and r the units refunded so far including these; the last unit
// reverses exactly the rest, so several partial refunds never reverse more
// than the line earned. Bonuses not tied to a line are reversed, and points
// spent on rewards given back exactly once, when the sale's last unit is
// refunded (or on Void). The returned SaleResult carries the original sale,
// the events written, the balance after, Earned = -points reversed and
// Redeemed = -points given back.
func (l *Ledger) Refund(ctx context.Context, req RefundRequest) (SaleResult, error) {
	if err := validID("refund id", req.ID); err != nil {
		return SaleResult{}, fmt.Errorf("ledger refund: %w", err)
	}
	if err := validID("sale id", req.SaleID); err != nil {
		return SaleResult{}, fmt.Errorf("ledger refund %q: %w", req.ID, err)
	}
	seen := map[int]bool{}
	for _, rl := range req.Lines {
		if rl.Quantity <= 0 {
			return SaleResult{}, fmt.Errorf("ledger refund %q: line %d quantity %d must be positive: %w", req.ID, rl.No, rl.Quantity, ErrInvalid)
		}
		if seen[rl.No] {
			return SaleResult{}, fmt.Errorf("ledger refund %q: line %d listed twice: %w", req.ID, rl.No, ErrInvalid)
		}
		seen[rl.No] = true
	}
	fp := fingerprint([]any{req.SaleID, req.Lines})
	return l.undo(ctx, "refund", req.ID, fp, func(w *wtx) (SaleResult, error) {
		return w.refund(req.ID, req.SaleID, req.Lines, false, "")
	})
}

// Void voids what is left of a sale (every unit not yet refunded), with
// the same point rules as a full refund. id is the idempotency key of the
// void. Voiding a sale with nothing left is ErrRefundExceeds.
func (l *Ledger) Void(ctx context.Context, id, saleID, reason string) (SaleResult, error) {
	if err := validID("void id", id); err != nil {
		return SaleResult{}, fmt.Errorf("ledger void: %w", err)
	}
	if err := noCard("void reason", reason); err != nil {
		return SaleResult{}, err
	}
	if err := validID("sale id", saleID); err != nil {
		return SaleResult{}, fmt.Errorf("ledger void %q: %w", id, err)
	}
	fp := fingerprint([]any{saleID, reason})
	return l.undo(ctx, "void", id, fp, func(w *wtx) (SaleResult, error) {
		return w.refund(id, saleID, nil, true, reason)
	})
}

func (l *Ledger) undo(ctx context.Context, kind, id, fp string, fn func(w *wtx) (SaleResult, error)) (SaleResult, error) {
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		r, replayed, err := once(w, kind, id, fp, func() (SaleResult, error) { return fn(w) })
		r.Replayed = replayed
		return r, err
	})
	if err != nil {
		return SaleResult{}, err
	}
	return res.(SaleResult), nil
}

func (w *wtx) refund(id, saleID string, lines []RefundLine, void bool, reason string) (SaleResult, error) {
	kind := "refund"
	if void {
		kind = "void"
	}
	srp, ok, err := readSaleRow(w.tx.Bucket(bSales), saleID)
	if err != nil {
		return SaleResult{}, err
	} else if !ok {
		return SaleResult{}, fmt.Errorf("ledger %s %q: sale %q: %w", kind, id, saleID, ErrUnknownSale)
	}
	sr := *srp
	if sr.Voided {
		return SaleResult{}, fmt.Errorf("ledger %s %q: sale %q: %w", kind, id, saleID, ErrSaleVoided)
	}
	// Units to refund per line index.
	units := make([]int64, len(sr.Lines))
	if len(lines) == 0 {
		any := false
		for i, ls := range sr.Lines {
			units[i] = ls.Units - ls.Refunded
			any = any || units[i] > 0
		}
		if !any {
			return SaleResult{}, fmt.Errorf("ledger %s %q: sale %q: %w", kind, id, saleID, ErrFullyRefunded)
		}
	} else {
		for _, rl := range lines {
			i := -1
			for j, ls := range sr.Lines {
				if ls.No == rl.No {
					i = j
				}
			}
			if i < 0 {
				return SaleResult{}, fmt.Errorf("ledger refund %q: sale %q has no line %d: %w", id, saleID, rl.No, ErrInvalid)
			}
			if rl.Quantity > sr.Lines[i].Units-sr.Lines[i].Refunded {
				return SaleResult{}, fmt.Errorf("ledger refund %q: line %d: %d units left, asked %d: %w", id, rl.No, sr.Lines[i].Units-sr.Lines[i].Refunded, rl.Quantity, ErrRefundExceeds)
			}
			units[i] = rl.Quantity
		}
	}
	memberID := sr.MemberID
	sale, err := sr.sale()
	if err != nil {
		return SaleResult{}, err
	}
	var rec *memberRec
	if memberID != "" {
		if rec, err = w.member(memberID); err != nil {
			return SaleResult{}, fmt.Errorf("ledger %s %q: %w", kind, id, err)
		}
	}
	// Write.
	rf := Refund{ID: id, SaleID: saleID, Register: w.l.register, MemberID: memberID, Void: void, Reason: reason, WallTime: w.now, ClockTrusted: w.trusted, TimeRef: w.timeRef()}
	type rev struct {
		i   int
		pts Points
	}
	var revs []rev
	for i := range sr.Lines {
		if units[i] == 0 {
			continue
		}
		ls := &sr.Lines[i]
		ls.Refunded += units[i]
		pts := Points(prorate(int64(ls.Earned), ls.Refunded, ls.Units)) - ls.Reversed
		amt := Money(prorate(int64(ls.Amount), ls.Refunded, ls.Units)) - ls.Paid
		ls.Reversed += pts
		ls.Paid += amt
		rf.Lines = append(rf.Lines, RefundedLine{No: ls.No, Quantity: units[i], Amount: amt, Points: pts})
		rf.Amount += amt
		if pts != 0 {
			revs = append(revs, rev{i, pts})
		}
	}
	// Points of the sale that already expired are gone: a reversal takes
	// only what is left of them, never the same points twice.
	gone := Points(0)
	if memberID != "" {
		gone = w.expiredOf(memberID, sr.Events) - sr.ExpiredReversed
	}
	take := func(p Points) Points {
		n := min(max(gone, 0), p)
		gone -= n
		sr.ExpiredReversed += n
		return p - n
	}
	for j := range revs {
		revs[j].pts = take(revs[j].pts)
		for k := range rf.Lines {
			if rf.Lines[k].No == sr.Lines[revs[j].i].No {
				rf.Lines[k].Points = revs[j].pts
			}
		}
	}
	closing := true
	for _, ls := range sr.Lines {
		closing = closing && ls.Refunded == ls.Units
	}
	typ := OutRefund
	if void {
		typ = OutVoid
		sr.Voided = true
	}
	w.emit(typ, func(seq uint64, _ string) any {
		rf.Seq = seq
		return rf
	})
	result := SaleResult{Sale: sale}
	if rec != nil {
		for _, r := range revs {
			ls := sr.Lines[r.i]
			if r.pts == 0 {
				continue
			}
			ev, _ := w.pointEvent(rec, PointEvent{Kind: KindReverse, Points: -r.pts, SaleID: saleID, Line: ls.No, Reverses: ls.EarnID, Reason: kind + " " + id}, nil)
			result.Events = append(result.Events, ev)
			result.Earned -= r.pts
		}
		if closing && !sr.Closed {
			for _, b := range sr.Bonuses {
				pts := take(b.Points)
				if pts == 0 {
					continue
				}
				ev, _ := w.pointEvent(rec, PointEvent{Kind: KindReverse, Points: -pts, SaleID: saleID, Reverses: b.ID, Reason: kind + " " + id}, nil)
				result.Events = append(result.Events, ev)
				result.Earned -= pts
			}
			for _, rd := range sr.Redeems {
				ev, _ := w.pointEvent(rec, PointEvent{Kind: KindReverse, Points: rd.Points, SaleID: saleID, Reverses: rd.ID, Reason: kind + " " + id}, rd.Parts)
				result.Events = append(result.Events, ev)
				result.Redeemed -= rd.Points
			}
		}
		w.addPurchase(rec, Purchase{
			SaleID: saleID, Seq: rf.Seq, WallTime: w.now, ClockTrusted: w.trusted, Amount: -rf.Amount,
		})
		eff, err := effective(w.tx, rec) // before saveMember: it may set the summary's base
		if err != nil {
			return SaleResult{}, err // rows written: the transaction is rolled back (dirty)
		}
		w.saveMember(rec)
		result.Balance = eff
	}
	if closing {
		sr.Closed = true
	}
	w.put(bSales, []byte(saleID), sr.encode())
	result.Refund = &rf
	return result, nil
}
