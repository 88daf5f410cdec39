package hqstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
)

// Running figures (issue 11): a member summary's twelve-month figures and
// retention view come from figures kept up to date at ingest, so its cost
// does not grow with the member's history. They hold what
// retention.Clean makes of the member's purchases, which memberFigures
// recomputes from them (Check compares the two):
//   - per sale of the member, its net amount and, from its sale entry, its
//     day and whether an uncorrected untrusted clock stamped it
//     (Txn.SaleFigure);
//   - per day, the net spend and number of the member's counted sales
//     (a sale counts when its entry came with a trusted or corrected
//     time and its net is above zero), and the sums up to that day:
//     Txn.FigureDay, Txn.FigureDays.
// A summary reads four days whatever the history: the last before the
// enrolment, the first from it, the last up to today and the last before
// the twelve months. A change to a past day adds to the sums of the days
// after it (a refund or a corrected time; normally few).

// DayFigure is one purchase day of a member in the running figures, with
// the sums over the member's purchase days up to it (so any range of days
// is two look-ups).
type DayFigure struct {
	Day   int // retention.Day
	Spend ledger.Money
	Sales int // counted sales that day; a day with none is not stored
	// CumSpend and CumDays are the spend and number of purchase days up
	// to and including this one.
	CumSpend ledger.Money
	CumDays  int
}

// Bounds of the days FigureDays is asked for.
const (
	MinFigureDay = math.MinInt32
	MaxFigureDay = math.MaxInt32
)

// saleFig is a sale's part in its member's running figures.
type saleFig struct {
	Net       ledger.Money `json:"n"`
	Has       bool         `json:"s,omitempty"` // its sale entry arrived
	Day       int          `json:"d,omitempty"`
	Untrusted bool         `json:"u,omitempty"`
}

func (f saleFig) counted() bool { return f.Has && !f.Untrusted && f.Net > 0 }

// figure brings member's running figures up to date for purchase entry p
// (old: the entry as stored before, when p corrects it).
func (a *applier) figure(member string, old, p *ledger.Purchase) error {
	if p.SaleID == "" {
		return nil
	}
	raw, err := a.tx.SaleFigure(member, p.SaleID)
	if err != nil {
		return err
	}
	var f saleFig
	if raw != nil {
		if err := json.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("member %q sale %q figure: %w", member, p.SaleID, err)
		}
	}
	before := f
	rp := source.Purchase(*p)
	switch {
	case old != nil && p.Amount > 0 && f.Has:
		// A corrected time for the sale entry.
		f.Day, f.Untrusted = int(retention.DayOf(rp.At, time.UTC)), rp.Untrusted
	case old != nil:
	default:
		f.Net += p.Amount
		if p.Amount > 0 && !f.Has {
			f.Has, f.Day, f.Untrusted = true, int(retention.DayOf(rp.At, time.UTC)), rp.Untrusted
		}
	}
	if f == before {
		return nil
	}
	if before.counted() {
		if err := a.addDay(member, before.Day, -before.Net, -1); err != nil {
			return err
		}
	}
	if f.counted() {
		if err := a.addDay(member, f.Day, f.Net, 1); err != nil {
			return err
		}
	}
	v, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return a.tx.PutSaleFigure(member, p.SaleID, v)
}

func (a *applier) addDay(member string, day int, spend ledger.Money, sales int) error {
	d, ok, err := a.tx.FigureDay(member, day)
	if err != nil {
		return err
	}
	if !ok {
		prev, err := a.tx.FigureDays(member, MinFigureDay, day-1, 1, true)
		if err != nil {
			return err
		}
		d = DayFigure{Day: day}
		if len(prev) == 1 {
			d.CumSpend, d.CumDays = prev[0].CumSpend, prev[0].CumDays
		}
	}
	d.Spend, d.Sales, d.CumSpend = d.Spend+spend, d.Sales+sales, d.CumSpend+spend
	if d.Sales < 0 {
		return fmt.Errorf("member %q day %d: running figures below zero sales: %w", member, day, ErrInvalid)
	}
	days := 0
	switch {
	case !ok && d.Sales > 0:
		days = 1
	case ok && d.Sales == 0:
		days = -1
	}
	d.CumDays += days
	if err := a.tx.PutFigureDay(member, d); err != nil {
		return err
	}
	later, err := a.tx.FigureDays(member, day+1, MaxFigureDay, 0, false)
	if err != nil {
		return err
	}
	for _, l := range later {
		l.CumSpend += spend
		l.CumDays += days
		if err := a.tx.PutFigureDay(member, l); err != nil {
			return err
		}
	}
	return nil
}

// cumUpTo is the sums over member's purchase days up to day x.
func cumUpTo(tx Txn, member string, x int) (DayFigure, error) {
	if x < MinFigureDay {
		return DayFigure{}, nil
	}
	d, err := tx.FigureDays(member, MinFigureDay, x, 1, true)
	if err != nil || len(d) == 0 {
		return DayFigure{}, err
	}
	return d[0], nil
}

// runningFigures is memberFigures from the running figures.
func runningFigures(tx Txn, id string, enrolled time.Time, now time.Time) (ledger.Money, int, *retention.MemberSummary, error) {
	today := int(retention.DayOf(now, time.UTC))
	lo := MinFigureDay
	if !enrolled.IsZero() {
		lo = int(retention.DayOf(enrolled, time.UTC))
	}
	last, err := cumUpTo(tx, id, today)
	if err != nil || last.CumDays == 0 || lo > today {
		return 0, 0, nil, err
	}
	before, err := cumUpTo(tx, id, lo-1)
	if err != nil {
		return 0, 0, nil, err
	}
	n := last.CumDays - before.CumDays
	if n <= 0 {
		return 0, 0, nil, nil
	}
	first, err := tx.FigureDays(id, lo, today, 1, false)
	if err != nil {
		return 0, 0, nil, err
	}
	if len(first) == 0 {
		return 0, 0, nil, fmt.Errorf("member %q: running figures count %d days but none is stored: %w", id, n, ErrInvalid)
	}
	yearAgo, err := cumUpTo(tx, id, max(lo-1, today-yearDays))
	if err != nil {
		return 0, 0, nil, err
	}
	lastDay := retention.Day(last.Day)
	sum := &retention.MemberSummary{Status: retention.StatusActive, PurchaseDays: n, LastPurchase: lastDay.String()}
	switch n {
	case 1:
		sum.Segment = retention.SegNew
	case 2:
		sum.Segment = retention.SegSecond
	default:
		sum.Segment = retention.SegRegular
	}
	if n >= 2 {
		sum.MeanInterval = float64(last.Day-first[0].Day) / float64(n-1)
		sum.Status = retention.RhythmStatus(today-last.Day, sum.MeanInterval)
	}
	return last.CumSpend - yearAgo.CumSpend, last.CumDays - yearAgo.CumDays, sum, nil
}

// RebuildFiguresIn recomputes member's running figures from its
// purchases (the records of Txn.MemberPurchases, in order), for a store
// written before they were kept; the member must have none yet.
func RebuildFiguresIn(tx Txn, member string, purchases [][]byte) error {
	var o Options
	a := newApplier(tx, o.withDefaults())
	for _, v := range purchases {
		var p ledger.Purchase
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("member %q purchase: %w", member, err)
		}
		if err := a.figure(member, nil, &p); err != nil {
			return err
		}
	}
	return nil
}

// The running figures in bbolt.
var (
	bFigSales = []byte("figure_sales") // member \x00 sale -> saleFig
	bFigDays  = []byte("figure_days")  // member \x00 day (4 bytes, big-endian, offset 2^31) -> spend, sales, cum spend, cum days (8 each)
)

func figKey(member string, day int) []byte {
	k := make([]byte, 0, len(member)+5)
	k = append(k, member...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(int64(day)+1<<31))
}

func (b *boltTxn) SaleFigure(member, sale string) ([]byte, error) {
	bk := b.tx.Bucket(bFigSales)
	if bk == nil {
		return nil, nil
	}
	return bk.Get([]byte(member + "\x00" + sale)), nil
}

func (b *boltTxn) PutSaleFigure(member, sale string, rec []byte) error {
	return b.tx.Bucket(bFigSales).Put([]byte(member+"\x00"+sale), rec)
}

func decodeDay(member string, k, v []byte) (DayFigure, error) {
	if len(v) != 32 || len(k) != len(member)+5 {
		return DayFigure{}, fmt.Errorf("member %q: day figure truncated: %w", member, ErrInvalid)
	}
	return DayFigure{Day: int(int64(binary.BigEndian.Uint32(k[len(k)-4:])) - 1<<31),
		Spend: ledger.Money(binary.BigEndian.Uint64(v)), Sales: int(binary.BigEndian.Uint64(v[8:])),
		CumSpend: ledger.Money(binary.BigEndian.Uint64(v[16:])), CumDays: int(binary.BigEndian.Uint64(v[24:]))}, nil
}

func (b *boltTxn) FigureDay(member string, day int) (DayFigure, bool, error) {
	bk := b.tx.Bucket(bFigDays)
	if bk == nil {
		return DayFigure{}, false, nil
	}
	k := figKey(member, day)
	v := bk.Get(k)
	if v == nil {
		return DayFigure{}, false, nil
	}
	d, err := decodeDay(member, k, v)
	return d, err == nil, err
}

func (b *boltTxn) PutFigureDay(member string, d DayFigure) error {
	bk := b.tx.Bucket(bFigDays)
	if d.Sales == 0 {
		return bk.Delete(figKey(member, d.Day))
	}
	v := make([]byte, 0, 32)
	for _, x := range []uint64{uint64(d.Spend), uint64(d.Sales), uint64(d.CumSpend), uint64(d.CumDays)} {
		v = binary.BigEndian.AppendUint64(v, x)
	}
	return bk.Put(figKey(member, d.Day), v)
}

func (b *boltTxn) FigureDays(member string, from, to, limit int, desc bool) ([]DayFigure, error) {
	bk := b.tx.Bucket(bFigDays)
	if bk == nil || from > to {
		return nil, nil
	}
	lo, hi := figKey(member, from), figKey(member, to)
	c := bk.Cursor()
	var out []DayFigure
	k, v := c.Seek(lo)
	if desc {
		if k, v = c.Seek(hi); k == nil || bytes.Compare(k, hi) > 0 {
			k, v = c.Prev()
		}
	}
	for k != nil && bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) <= 0 {
		d, err := decodeDay(member, k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
		if limit > 0 && len(out) == limit {
			break
		}
		if desc {
			k, v = c.Prev()
		} else {
			k, v = c.Next()
		}
	}
	return out, nil
}

// CheckFiguresIn verifies member's running figures against a
// recomputation from its purchases as of now (Check, both backends).
func CheckFiguresIn(tx Txn, member string, now time.Time) error {
	spend, visits, ret, err := memberFigures(tx, member, now)
	if err != nil {
		return err
	}
	var enrolled time.Time
	if row, ok, err := tx.Member(member); err != nil {
		return err
	} else if ok {
		p, err := recOf(row).profile()
		if err != nil {
			return err
		}
		enrolled = source.Enrolled(*p)
	}
	rs, rv, rr, err := runningFigures(tx, member, enrolled, now)
	if err != nil {
		return err
	}
	if rs != spend || rv != visits || (rr == nil) != (ret == nil) || rr != nil && *rr != *ret {
		return fmt.Errorf("check: member %s: running figures spend %d visits %d %+v, the purchases give %d %d %+v", member, rs, rv, rr, spend, visits, ret)
	}
	days, err := tx.FigureDays(member, MinFigureDay, MaxFigureDay, 0, false)
	if err != nil {
		return err
	}
	var cum DayFigure
	for _, d := range days {
		cum.CumSpend += d.Spend
		cum.CumDays++
		if d.Sales <= 0 || d.CumSpend != cum.CumSpend || d.CumDays != cum.CumDays {
			return fmt.Errorf("check: member %s: day %d's running figures %+v, the days before give sums %d and %d", member, d.Day, d, cum.CumSpend, cum.CumDays)
		}
	}
	return nil
}
