package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// saleRec is what the sales bucket stores: the first result (returned
// again on a retry) and the per-line state refunds work from.
type saleRec struct {
	Fingerprint string          `json:"fingerprint"`
	Sale        json.RawMessage `json:"sale"` // as written to the outbox
	MemberID    string          `json:"member_id,omitempty"`
	Events      []uint64        `json:"events,omitempty"` // sequence numbers of the sale's point events
	Balance     Points          `json:"balance"`          // first result's balance
	Earned      Points          `json:"earned"`
	Redeemed    Points          `json:"redeemed"`
	Lines       []lineState     `json:"lines"`
	Bonuses     []evRef         `json:"bonuses,omitempty"`
	Redeems     []redeemRef     `json:"redeems,omitempty"`
	Closed      bool            `json:"closed,omitempty"` // every unit refunded or voided: bonuses reversed, redemptions given back
	Voided      bool            `json:"voided,omitempty"`
	// ExpiredReversed is how much of the sale's expired points refunds
	// have already counted as reversed (they were not taken again).
	ExpiredReversed Points `json:"expired_reversed,omitempty"`
	// bin is the sale of a binary row (salerow.go, schema 8), which
	// holds no JSON of it; nil for a JSON row (Sale holds it).
	bin *Sale
}

type lineState struct {
	No       int    `json:"no"`
	Units    int64  `json:"units"`
	Amount   Money  `json:"amount"`
	Earned   Points `json:"earned"`
	EarnID   string `json:"earn_id,omitempty"`
	Refunded int64  `json:"refunded"`
	Reversed Points `json:"reversed"`
	Paid     Money  `json:"paid"` // money refunded so far
}

type evRef struct {
	ID     string `json:"id"`
	Points Points `json:"points"`
}

type redeemRef struct {
	ID     string    `json:"id"`
	Points Points    `json:"points"`
	Parts  []lotPart `json:"parts,omitempty"`
}

// saleShape is the content a sale id is bound to (the idempotency
// fingerprint): a retry must carry exactly this.
type saleShape struct {
	MemberID    string
	Lines       []Line
	Tenders     []Tender
	Redemptions []RedeemRequest
}

// checkSale validates what needs no ledger state and returns the line
// amounts and the gross total.
func checkSale(req *SaleRequest) ([]Money, Money, error) {
	if err := validID("sale id", req.ID); err != nil {
		return nil, 0, err
	}
	if req.MemberID != "" {
		if err := validID("member id", req.MemberID); err != nil {
			return nil, 0, err
		}
	}
	if len(req.Lines) == 0 {
		return nil, 0, fmt.Errorf("sale has no lines: %w", ErrInvalid)
	}
	if len(req.Lines) > 1000 {
		return nil, 0, fmt.Errorf("sale has %d lines, at most 1000: %w", len(req.Lines), ErrInvalid)
	}
	// A basket has a few lines: comparing with the lines before costs
	// less than a map; a long one gets the map.
	var seen map[int]bool
	if len(req.Lines) > 16 {
		seen = make(map[int]bool, len(req.Lines))
	}
	amounts := make([]Money, len(req.Lines))
	var gross Money
	for i, ln := range req.Lines {
		dup := seen[ln.No]
		if seen == nil {
			dup = slices.ContainsFunc(req.Lines[:i], func(p Line) bool { return p.No == ln.No })
		} else {
			seen[ln.No] = true
		}
		if ln.No < 1 || dup {
			return nil, 0, fmt.Errorf("line %d: number must be positive and unique: %w", ln.No, ErrInvalid)
		}
		if ln.SKU == "" {
			return nil, 0, fmt.Errorf("line %d: empty sku: %w", ln.No, ErrInvalid)
		}
		// (the labels are formatted only for the error)
		if cardsafe.Carries(ln.SKU) || cardsafe.Carries(ln.Category) {
			return nil, 0, noCards(fmt.Sprintf("line %d sku", ln.No), ln.SKU, fmt.Sprintf("line %d category", ln.No), ln.Category)
		}
		if ln.Quantity <= 0 {
			return nil, 0, fmt.Errorf("line %d: quantity %d must be positive: %w", ln.No, ln.Quantity, ErrInvalid)
		}
		if ln.UnitPrice <= 0 {
			return nil, 0, fmt.Errorf("line %d: unit price %d must be positive: %w", ln.No, ln.UnitPrice, ErrInvalid)
		}
		amt, ok := mulMoney(ln.Quantity, ln.UnitPrice)
		if !ok {
			return nil, 0, fmt.Errorf("line %d: quantity*price overflows: %w", ln.No, ErrInvalid)
		}
		if ln.Discount < 0 || ln.Discount > amt {
			return nil, 0, fmt.Errorf("line %d: discount %d outside 0..%d: %w", ln.No, ln.Discount, amt, ErrInvalid)
		}
		amounts[i] = amt - ln.Discount
		if gross, ok = addMoney(gross, amounts[i]); !ok {
			return nil, 0, fmt.Errorf("sale total overflows: %w", ErrInvalid)
		}
	}
	for i, t := range req.Tenders {
		if t.Kind == "" {
			return nil, 0, fmt.Errorf("tender %d: empty kind: %w", i+1, ErrInvalid)
		}
		if t.Amount <= 0 {
			return nil, 0, fmt.Errorf("tender %d: amount %d must be positive: %w", i+1, t.Amount, ErrInvalid)
		}
	}
	if len(req.Redemptions) > 0 && req.MemberID == "" {
		return nil, 0, fmt.Errorf("redemption without a member: %w", ErrInvalid)
	}
	for i, r := range req.Redemptions {
		if r.RewardID == "" {
			return nil, 0, fmt.Errorf("redemption %d: empty reward id: %w", i+1, ErrInvalid)
		}
	}
	return amounts, gross, nil
}

// RecordSale records a sale durably and returns its result. The sale id is
// the idempotency key: the same id with the same content returns the first
// result with Replayed set (also after a restart); with different content
// it is ErrConflict. Everything is validated before anything is written:
// lines need a positive quantity and unit price, amounts must not overflow
// int64, tenders (when given) must add up to the total, redemptions need a
// member, a known reward, enough points (ErrInsufficient) and, while
// req.HQReachable is false, room under Options.OfflineRedeemLimit
// (ErrOfflineLimit). An unknown member is ErrUnknownMember.
func (l *Ledger) RecordSale(ctx context.Context, req SaleRequest) (SaleResult, error) {
	amounts, gross, err := checkSale(&req)
	if err != nil {
		return SaleResult{}, fmt.Errorf("ledger sale %q: %w", req.ID, err)
	}
	shape := saleShape{MemberID: req.MemberID, Lines: req.Lines, Tenders: req.Tenders, Redemptions: req.Redemptions}
	fp := saleFingerprint(&shape)
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		return w.recordSale(&req, fp, amounts, gross)
	})
	if err != nil {
		return SaleResult{}, err
	}
	return res.(SaleResult), nil
}

func (w *wtx) recordSale(req *SaleRequest, fp string, amounts []Money, gross Money) (SaleResult, error) {
	if prev, found, err := readSaleRow(w.tx.Bucket(bSales), req.ID); err != nil {
		return SaleResult{}, err
	} else if found {
		if prev.Fingerprint != fp {
			return SaleResult{}, fmt.Errorf("ledger sale %q: %w", req.ID, ErrConflict)
		}
		r, err := prev.result(w.tx)
		if err != nil {
			return SaleResult{}, err
		}
		r.Replayed = true
		return r, nil
	}
	var rec *memberRec
	if req.MemberID != "" {
		var err error
		if rec, err = w.member(req.MemberID); err != nil {
			return SaleResult{}, fmt.Errorf("ledger sale %q: %w", req.ID, err)
		}
	}
	// Redemptions.
	var reds []Redemption
	var redeemPts Points
	var discount Money
	for _, r := range req.Redemptions {
		rw, ok := w.eng.Reward(r.RewardID)
		if !ok {
			return SaleResult{}, fmt.Errorf("ledger sale %q: unknown reward %q: %w", req.ID, r.RewardID, ErrUnknownReward)
		}
		if rw.Points <= 0 || rw.Discount < 0 {
			return SaleResult{}, fmt.Errorf("ledger sale %q: reward %q has points %d, discount %d: %w", req.ID, r.RewardID, rw.Points, rw.Discount, ErrInvalid)
		}
		var ok1, ok2 bool
		redeemPts, ok1 = addPoints(redeemPts, Points(rw.Points))
		discount, ok2 = addMoney(discount, Money(rw.Discount))
		if !ok1 || !ok2 {
			return SaleResult{}, fmt.Errorf("ledger sale %q: redemptions overflow: %w", req.ID, ErrInvalid)
		}
		reds = append(reds, Redemption{RewardID: rw.ID, Points: Points(rw.Points), Discount: Money(rw.Discount)})
	}
	if discount > gross {
		return SaleResult{}, fmt.Errorf("ledger sale %q: reward discount %d exceeds the sale amount %d: %w", req.ID, discount, gross, ErrRewardExceedsSale)
	}
	total := gross - discount
	if len(req.Tenders) > 0 {
		var paid Money
		for _, t := range req.Tenders {
			var ok bool
			if paid, ok = addMoney(paid, t.Amount); !ok {
				return SaleResult{}, fmt.Errorf("ledger sale %q: tenders overflow: %w", req.ID, ErrInvalid)
			}
		}
		if paid != total {
			return SaleResult{}, fmt.Errorf("ledger sale %q: tenders add up to %d, total is %d: %w", req.ID, paid, total, ErrInvalid)
		}
	}
	if redeemPts > 0 {
		eff, err := effective(w.tx, rec)
		if err != nil {
			return SaleResult{}, err
		}
		if eff < redeemPts {
			return SaleResult{}, fmt.Errorf("ledger sale %q: balance %d, redeeming %d: %w", req.ID, eff, redeemPts, ErrInsufficient)
		}
		if !req.HQReachable {
			var used Points
			for _, o := range rec.Offline {
				used += o.Points
			}
			if used+redeemPts > w.l.limit {
				return SaleResult{}, fmt.Errorf("ledger sale %q: offline redemptions %d + %d exceed the limit %d: %w", req.ID, used, redeemPts, w.l.limit, ErrOfflineLimit)
			}
		}
	}
	// Score.
	var out rules.Outcome
	if rec != nil {
		in := rules.SaleInput{At: w.now, ClockTrusted: w.trusted, Member: w.memberState(rec), Lines: make([]rules.LineInput, 0, len(req.Lines))}
		if !w.trusted && !w.st.decide.IsZero() {
			// campaigns and birthdays wait for the corrected time; the
			// engine needs some time to score the lines
			in.At = w.st.decide
		}
		for i, ln := range req.Lines {
			in.Lines = append(in.Lines, rules.LineInput{No: ln.No, SKU: ln.SKU, Category: ln.Category, Amount: int64(amounts[i])})
		}
		var err error
		if out, err = w.eng.Evaluate(in); err != nil {
			return SaleResult{}, fmt.Errorf("ledger sale %q: rules: %w", req.ID, err)
		}
		var sum Points
		for _, lp := range out.Lines {
			if lp.Points < 0 || !slices.ContainsFunc(req.Lines, func(ln Line) bool { return ln.No == lp.No }) {
				return SaleResult{}, fmt.Errorf("ledger sale %q: rules gave %d points to line %d: %w", req.ID, lp.Points, lp.No, ErrInvalid)
			}
			var ok bool
			if sum, ok = addPoints(sum, Points(lp.Points)); !ok {
				return SaleResult{}, fmt.Errorf("ledger sale %q: points overflow: %w", req.ID, ErrInvalid)
			}
		}
		for _, b := range out.Bonuses {
			var ok bool
			if b.Points < 0 {
				return SaleResult{}, fmt.Errorf("ledger sale %q: rules gave bonus %q %d points: %w", req.ID, b.Kind, b.Points, ErrInvalid)
			}
			if sum, ok = addPoints(sum, Points(b.Points)); !ok {
				return SaleResult{}, fmt.Errorf("ledger sale %q: points overflow: %w", req.ID, ErrInvalid)
			}
		}
		if _, ok := addPoints(rec.Balance, sum); !ok {
			return SaleResult{}, fmt.Errorf("ledger sale %q: balance overflow: %w", req.ID, ErrInvalid)
		}
	}

	// Everything is valid: write.
	sale := Sale{
		ID: req.ID, Register: w.l.register, MemberID: req.MemberID,
		Lines: req.Lines, Tenders: req.Tenders, Redemptions: reds, Total: total,
		WallTime: w.now, ClockTrusted: w.trusted, RuleVersion: w.eng.RuleVersion(), TimeRef: w.timeRef(),
	}
	if !w.trusted {
		// no expiry date from a time nobody trusts: the lots wait for the
		// corrected time (CorrectTimes)
		out.ExpiresAt = time.Time{}
	}
	// The sale row holds the sale in binary and the outbox record names
	// it: no JSON of the sale is built in the committer (salerow.go).
	w.emitRow(OutSale, sale.MemberID, sale.ID, func(seq uint64, _ string) {
		sale.Seq = seq
	}, func(uint64) outboxPlace { return outboxPlace{placeSale, []byte(sale.ID)} })
	sr := saleRec{Fingerprint: fp, MemberID: req.MemberID, bin: &sale, Lines: make([]lineState, 0, len(req.Lines))}
	w.delta.Sales++
	paid := allocate(amounts, gross, discount)
	for i, ln := range req.Lines {
		sr.Lines = append(sr.Lines, lineState{No: ln.No, Units: ln.Quantity, Amount: paid[i]})
	}
	result := SaleResult{Sale: sale}
	if rec != nil {
		result.Events = withCap[PointEvent](len(reds) + len(out.Lines) + len(out.Bonuses))
		for _, rd := range reds {
			ev, parts := w.pointEvent(rec, PointEvent{Kind: KindRedeem, Points: -rd.Points, SaleID: sale.ID, Reason: rd.RewardID}, nil)
			sr.Redeems = append(sr.Redeems, redeemRef{ID: ev.ID, Points: rd.Points, Parts: parts})
			result.Events = append(result.Events, ev)
			result.Redeemed += rd.Points
			if !req.HQReachable {
				rec.Offline = append(rec.Offline, offlineRedeem{Seq: ev.Seq, Points: rd.Points})
			}
		}
		// The credits below share one lot, written once after them.
		w.holdCredits()
		for _, lp := range out.Lines {
			if lp.Points == 0 {
				continue
			}
			ev, _ := w.pointEvent(rec, PointEvent{Kind: KindEarn, Points: Points(lp.Points), SaleID: sale.ID, Line: lp.No, ExpiresAt: out.ExpiresAt}, nil)
			for i := range sr.Lines {
				if sr.Lines[i].No == lp.No {
					sr.Lines[i].Earned += ev.Points
					sr.Lines[i].EarnID = ev.ID
				}
			}
			result.Events = append(result.Events, ev)
			result.Earned += ev.Points
		}
		for _, b := range out.Bonuses {
			if b.Points == 0 {
				continue
			}
			ev, _ := w.pointEvent(rec, PointEvent{Kind: KindBonus, Points: Points(b.Points), SaleID: sale.ID, Reason: b.Kind, ExpiresAt: out.ExpiresAt}, nil)
			sr.Bonuses = append(sr.Bonuses, evRef{ID: ev.ID, Points: ev.Points})
			result.Events = append(result.Events, ev)
			result.Earned += ev.Points
		}
		w.writeHeldLot()
		if len(result.Events) == 0 {
			result.Events = nil // no point event, as its replay (saleRec.result) gives
		}
		if out.BirthdayBonus {
			rec.BirthdayBonusGivenAt = w.now
			if !slices.Contains(rec.BirthdayYears, out.BirthdayYear) {
				rec.BirthdayYears = append(rec.BirthdayYears, out.BirthdayYear)
			}
		}
		if out.Tier != "" {
			rec.Member.Tier = out.Tier
		}
		rec.FirstBonusPending = out.FirstBonusPending
		rec.Purchases++
		w.addPurchase(rec, Purchase{
			SaleID: sale.ID, Seq: sale.Seq, WallTime: w.now, ClockTrusted: w.trusted,
			Amount: total, Categories: categories(req.Lines),
		})
		eff, err := effective(w.tx, rec) // before saveMember: it may set the summary's base
		if err != nil {
			return SaleResult{}, err // rows written: the transaction is rolled back (dirty)
		}
		w.saveMember(rec)
		result.Balance = eff
	}
	sr.Events = withCap[uint64](len(result.Events))
	for _, ev := range result.Events {
		sr.Events = append(sr.Events, ev.Seq)
	}
	sr.Balance, sr.Earned, sr.Redeemed = result.Balance, result.Earned, result.Redeemed
	w.put(bSales, []byte(sale.ID), sr.encodeBinary(&sale, &w.mem)) // (sr.bin is &sale)
	return result, nil
}

// encode is json.Marshal(sr) without re-validating sr.Sale byte by byte
// (encoding/json checks every RawMessage; this one came from json.Marshal
// in emit, so it is valid): the sale row is the largest value a sale
// writes and that check was a visible share of the committer's CPU.
func (sr *saleRec) encode() []byte {
	if sr.bin != nil {
		return sr.encodeBinary(sr.bin, nil)
	}
	raw := sr.Sale
	c := *sr
	c.Sale = nil
	head, err := json.Marshal(&c)
	if err != nil {
		panic(fmt.Sprintf("encode sale row: %v", err))
	}
	if len(raw) == 0 {
		return head
	}
	// The fingerprint is hex, so the first `"sale":null` is the field.
	const null = `"sale":null`
	i := bytes.Index(head, []byte(null))
	if i < 0 {
		panic("encode sale row: sale field missing")
	}
	i += len(null) - len("null")
	v := make([]byte, 0, len(head)+len(raw))
	v = append(v, head[:i]...)
	v = append(v, raw...)
	return append(v, head[i+len("null"):]...)
}

func (sr *saleRec) sale() (Sale, error) {
	if sr.bin != nil {
		return *sr.bin, nil
	}
	var s Sale
	if err := json.Unmarshal(sr.Sale, &s); err != nil {
		return s, fmt.Errorf("decode sale: %w", err)
	}
	return s, nil
}

// result rebuilds the sale's first result from its row and event rows.
func (sr *saleRec) result(tx *bolt.Tx) (SaleResult, error) {
	s, err := sr.sale()
	if err != nil {
		return SaleResult{}, err
	}
	r := SaleResult{Sale: s, Balance: sr.Balance, Earned: sr.Earned, Redeemed: sr.Redeemed}
	for _, seq := range sr.Events {
		k := rowKey(rowEvent, sr.MemberID, seq)
		v := tx.Bucket(bRows).Get(k)
		if v == nil {
			return SaleResult{}, fmt.Errorf("sale %q: event %d missing: %w", s.ID, seq, ErrInconsistent)
		}
		var ev PointEvent
		if err := decodeEventRow(k, v, &ev); err != nil {
			return SaleResult{}, fmt.Errorf("decode event %d: %w", seq, err)
		}
		r.Events = append(r.Events, ev)
	}
	return r, nil
}

// withCap is an empty slice with room for n, nil when n is 0 (a result
// without events keeps its nil slice, as append left it).
func withCap[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n)
}

// allocate spreads a sale-level discount (rewards) over the lines in
// proportion to their amounts, rounding down, the remainder going to the
// first lines, and returns what was paid for each line. The result sums to
// gross-discount exactly, so refunds (prorated per line) never return more
// money than the customer paid. Without a discount it is amounts itself
// (the caller only reads it).
func allocate(amounts []Money, gross, discount Money) []Money {
	if discount == 0 || gross == 0 {
		return amounts
	}
	paid := slices.Clone(amounts)
	var given Money
	for i, a := range amounts {
		share := Money(prorate(int64(discount), int64(a), int64(gross)))
		paid[i] -= share
		given += share
	}
	for i := 0; given < discount; i = (i + 1) % len(paid) {
		if paid[i] > 0 {
			paid[i]--
			given++
		}
	}
	return paid
}

func categories(lines []Line) []string {
	var cs []string
	for _, ln := range lines {
		if ln.Category != "" && !slices.Contains(cs, ln.Category) {
			if cs == nil {
				cs = make([]string, 0, len(lines))
			}
			cs = append(cs, ln.Category)
		}
	}
	sort.Strings(cs)
	return cs
}

// memberState is what the rules see about the member for the current op:
// the window ends at the op's decision time (the wall time when the clock
// is trusted, the high-water mark's estimate in a clock fault). With an
// untrusted clock the stored tier is kept (TierFixed).
func (w *wtx) memberState(rec *memberRec) rules.MemberState {
	ms := w.memberStateAt(rec, w.st.decide, w.seq)
	ms.TierFixed = !w.trusted && w.st.fault == ""
	if w.st.decide.IsZero() {
		ms.TierFixed = true
	}
	return ms
}

// tierScanOld is how many purchases older than the window the scan reads
// before it stops: one entry stamped a year early by a wrong clock does not
// end the window.
const tierScanOld = 3

// memberStateAt is the member's state with the rolling 12-month window
// ending at t, counting the purchase index entries up to sequence upto
// (refunds included). Every entry counts at its corrected time, or its
// wall time when that was trusted (Purchase.When). Over every entry so far
// (upto is the last sequence number: a sale, a tier decision) the window
// comes from the day rows (window.go), whatever the member's history; an
// uncorrected entry of an untrusted clock counts there. Up to an earlier
// entry (re-scoring a corrected sale) the index is read newest first, an
// uncorrected entry counted by position, as it was made after the trusted
// entries before it, and the scan stops after a few entries older than
// the window.
func (w *wtx) memberStateAt(rec *memberRec, t time.Time, upto uint64) rules.MemberState {
	var ms rules.MemberState
	var err error
	if upto >= w.seq {
		ms, err = w.windowNow(rec, t)
	} else {
		ms, err = memberWindow(w.tx.Bucket(bRows), rec, t, upto)
	}
	if err != nil && w.rowErr == nil {
		w.rowErr = err // fails the op: see (*wtx).run
	}
	return ms
}

// memberWindow is the one rolling 12-month window (see memberStateAt),
// read from the rows bucket of any transaction. A purchase row that does
// not decode is ErrInconsistent, never skipped: a silently skipped row
// would give the member a lower tier than their purchases earn.
func memberWindow(rows *bolt.Bucket, rec *memberRec, t time.Time, upto uint64) (rules.MemberState, error) {
	ms := baseState(rec)
	if t.IsZero() {
		return ms, nil
	}
	from := t.AddDate(-1, 0, 0)
	prefix := rowPrefix(rowPurchase, rec.Member.ID)
	c := rows.Cursor()
	// The last row before upto+1: Seek lands on the first at or after
	// it, which is not in the window even when it is the member's (a
	// sale rescored on its corrected time is not its own visit before
	// it: outside15 found the 11th such sale scored as the 12th).
	k, v := c.Seek(rowKey(rowPurchase, rec.Member.ID, upto+1))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	old := 0
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		var p Purchase
		if err := decodePurchase(v, &p); err != nil {
			return ms, fmt.Errorf("member %q: purchase row %d does not decode: %v: %w", rec.Member.ID, keySeq(k), err, ErrInconsistent)
		}
		at, dated := p.When()
		if dated && !at.After(from) {
			if old++; old >= tierScanOld {
				break
			}
			continue
		}
		if !dated || !at.After(t) {
			ms.Spend12m += int64(p.Amount)
			if p.Amount > 0 {
				ms.Visits12m++
			}
		}
	}
	return ms, nil
}

// TierWindow is a member's rolling 12-month spend and visits as the rules
// see them at the next sale: the same window earning uses, ending at the
// ledger's decision time (the wall time when the clock is trusted, the
// high-water mark's estimate in a clock fault). ok is false while the clock
// is untrusted and not faulted (no window can be placed: the tier stays).
func (l *Ledger) TierWindow(memberID string) (spend Money, visits int, ok bool, err error) {
	cs, err := l.ClockStatus()
	if err != nil {
		return 0, 0, false, err
	}
	if cs.Estimate.IsZero() || (!cs.Trusted && cs.Fault == "") {
		return 0, 0, false, nil
	}
	err = l.view(func(tx *bolt.Tx) error {
		rec, err := readMember(tx, memberID)
		if err != nil {
			return err
		}
		ms, err := memberWindowNow(tx.Bucket(bRows), rec, cs.Estimate)
		spend, visits = Money(ms.Spend12m), ms.Visits12m
		return err
	})
	return spend, visits, err == nil, err
}

// Rules is the rule set in force (head office's latest, or the local
// config's), nil when the ledger runs on another engine or none.
func (l *Ledger) Rules() *rules.RuleSet {
	if e, ok := l.eng().(ruleSetEngine); ok {
		return e.rs
	}
	return nil
}

// Sale returns a recorded sale.
func (l *Ledger) Sale(id string) (Sale, error) {
	if err := noCard("look-up", id); err != nil {
		return Sale{}, err
	}
	var s Sale
	err := l.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bSales).Get([]byte(id))
		if b == nil {
			return fmt.Errorf("ledger sale %q: %w", id, ErrUnknownSale)
		}
		var sr saleRec
		if err := decodeSaleRow(b, &sr); err != nil {
			return fmt.Errorf("decode sale %q: %w", id, err)
		}
		var err error
		s, err = sr.sale()
		return err
	})
	return s, err
}

// ForEachSale calls fn for every sale in id order (for export); an error
// from fn stops the walk and is returned.
func (l *Ledger) ForEachSale(fn func(Sale) error) error {
	return l.viewCommitted(func(tx *bolt.Tx) error {
		return tx.Bucket(bSales).ForEach(func(k, v []byte) error {
			var sr saleRec
			if err := decodeSaleRow(v, &sr); err != nil {
				return fmt.Errorf("decode sale %q: %w", k, err)
			}
			s, err := sr.sale()
			if err != nil {
				return fmt.Errorf("sale %q: %w", k, err)
			}
			return fn(s)
		})
	})
}

// ForEachMember calls fn for every member in id order (for export).
func (l *Ledger) ForEachMember(fn func(Member) error) error {
	return l.viewCommitted(func(tx *bolt.Tx) error {
		return forEachMemberRow(tx, func(id string, v []byte) error {
			var rec memberRec
			if err := decodeMemberRow(v, &rec); err != nil {
				return fmt.Errorf("decode member %q: %w", id, err)
			}
			return fn(rec.Member)
		})
	})
}
