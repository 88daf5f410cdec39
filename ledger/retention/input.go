package retention

import (
	"errors"
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"time"
)

// Sentinel errors. Callers test with errors.Is.
var (
	// ErrInvalid reports malformed input: a bad file line, a bad option.
	ErrInvalid = errors.New("retention: invalid input")
	// ErrNoData reports a data set with no usable purchase at all.
	ErrNoData = errors.New("retention: no usable purchases")
)

// Money is an amount in integer minor units, as ledger.Money. Package
// retention does not import the ledger so the analytics build and test on
// their own; package source converts.
type Money int64

// Purchase is one purchase entry as retention sees it. It mirrors
// ledger.Purchase: a refund is an entry with a negative Amount and the same
// SaleID as the sale it refunds.
type Purchase struct {
	SaleID       string    `json:"sale_id,omitempty"`
	Seq          uint64    `json:"seq,omitempty"`
	At           time.Time `json:"at"`
	ClockTrusted bool      `json:"clock_trusted"`
	Amount       Money     `json:"amount"`
	Categories   []string  `json:"categories,omitempty"`
	// Untrusted marks an entry stamped by an untrusted register clock and
	// not corrected since: At means nothing, Clean leaves the sale out.
	Untrusted bool `json:"untrusted,omitempty"`
}

// Member is a member with their purchase history: what the register has
// from ledger.Member and ledger.Purchases, and head office from its store.
type Member struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	// Consents are the consent events per channel, in any order: the
	// latest event per channel on or before the analysis date counts.
	Consents   []Consent  `json:"consents,omitempty"`
	Consent    bool       `json:"consent"`            // agreed to be contacted on some channel (set by Analyze from Consents when there are any)
	Birthday   string     `json:"birthday,omitempty"` // "YYYY-MM-DD" or "--MM-DD"
	EnrolledAt time.Time  `json:"enrolled_at,omitzero"`
	Purchases  []Purchase `json:"purchases"`
}

// Channels a member can consent to be contacted on.
const (
	ChannelSMS     = "sms"
	ChannelEmail   = "email"
	ChannelPhone   = "phone"
	ChannelInStore = "in-store"
)

// Channels lists the channels in the default order of preference for a
// contact.
var Channels = []string{ChannelSMS, ChannelEmail, ChannelPhone, ChannelInStore}

// ValidChannel reports whether c names a channel.
func ValidChannel(c string) bool {
	for _, x := range Channels {
		if x == c {
			return true
		}
	}
	return false
}

// Consent is one consent event: given (or withdrawn) on a channel, when
// and how (e.g. "in-store form", "web", "members file").
type Consent struct {
	Channel string    `json:"channel"`
	Given   bool      `json:"given"`
	At      time.Time `json:"at"`
	How     string    `json:"how,omitempty"`
}

// ConsentAt returns, per channel, the latest consent event on or before
// asOf, for channels where consent is given at that time.
func (m *Member) ConsentAt(asOf time.Time) map[string]Consent {
	latest := map[string]Consent{}
	for _, c := range m.Consents {
		if c.At.After(asOf) {
			continue
		}
		if l, ok := latest[c.Channel]; !ok || !c.At.Before(l.At) {
			latest[c.Channel] = c
		}
	}
	out := map[string]Consent{}
	for ch, c := range latest {
		if c.Given {
			out[ch] = c
		}
	}
	return out
}

// ChannelConsent is a channel a member can be contacted on as of an
// analysis: the address and the consent event in force.
type ChannelConsent struct {
	Channel string    `json:"channel"`
	Address string    `json:"address,omitempty"` // phone or email; empty in store
	Since   time.Time `json:"since,omitzero"`
	How     string    `json:"how,omitempty"`
}

// address is m's address for channel c.
func (m *Member) address(c string) string {
	switch c {
	case ChannelSMS, ChannelPhone:
		return m.Phone
	case ChannelEmail:
		return m.Email
	}
	return ""
}

// legacyChannels is what a plain yes means: every channel the member has
// an address for, or in store when there is none.
func (m *Member) legacyChannels() []string { return m.appendLegacyChannels(nil) }

// appendLegacyChannels appends legacyChannels() to chans.
func (m *Member) appendLegacyChannels(chans []string) []string {
	start := len(chans)
	if m.Phone != "" {
		chans = append(chans, ChannelSMS, ChannelPhone)
	}
	if m.Email != "" {
		chans = append(chans, ChannelEmail)
	}
	if len(chans) == start {
		chans = append(chans, ChannelInStore)
	}
	return chans
}

// ChannelsAt returns the channels m may be contacted on as of asOf, in the
// order of Channels: from the consent events when there are any, else from
// the plain Consent flag (legacyChannels).
func (m *Member) ChannelsAt(asOf time.Time) []ChannelConsent { return m.appendChannelsAt(nil, asOf) }

// appendChannelsAt appends ChannelsAt(asOf) to out.
func (m *Member) appendChannelsAt(out []ChannelConsent, asOf time.Time) []ChannelConsent {
	if len(m.Consents) == 0 {
		if m.Consent {
			var buf [3]string
			for _, c := range m.appendLegacyChannels(buf[:0]) {
				out = append(out, ChannelConsent{Channel: c, Address: m.address(c), Since: m.EnrolledAt, How: "consent flag"})
			}
		}
		return out
	}
	given := m.ConsentAt(asOf)
	for _, ch := range Channels {
		if c, ok := given[ch]; ok {
			out = append(out, ChannelConsent{Channel: ch, Address: m.address(ch), Since: c.At, How: c.How})
		}
	}
	return out
}

// Exclusions counts purchase entries left out of the analysis, by reason.
// Nothing is dropped silently: reports print these counts.
type Exclusions struct {
	Future          int `json:"future"`           // dated after asOf: an untrusted register clock
	BeforeEnrolment int `json:"before_enrolment"` // dated before the member enrolled
	ZeroAmount      int `json:"zero_amount"`      // amount 0: not a purchase
	OrphanRefund    int `json:"orphan_refund"`    // negative amount with no matching sale
	Refunded        int `json:"refunded"`         // sales refunded in full
	NoPurchases     int `json:"members_without_purchases"`
	// Untrusted counts entries of sales stamped by an untrusted register
	// clock and not corrected yet: their date means nothing (a Pi boots in
	// 1970), so they are left out of rhythm, cohorts and BG/NBD.
	Untrusted int `json:"untrusted"`
}

// Total is the number of excluded purchase entries (members without
// purchases are not entries and are not counted).
func (e Exclusions) Total() int {
	return e.Future + e.BeforeEnrolment + e.ZeroAmount + e.OrphanRefund + e.Refunded + e.Untrusted
}

func (e *Exclusions) add(o Exclusions) {
	e.Future += o.Future
	e.BeforeEnrolment += o.BeforeEnrolment
	e.Untrusted += o.Untrusted
	e.ZeroAmount += o.ZeroAmount
	e.OrphanRefund += o.OrphanRefund
	e.Refunded += o.Refunded
	e.NoPurchases += o.NoPurchases
}

// Day is a calendar day: days since 1970-01-01 in the store's time zone.
type Day int

// DayOf returns the calendar day of t in loc.
func DayOf(t time.Time, loc *time.Location) Day {
	// The calendar date in loc is the day of the Unix time shifted by the
	// zone's offset at t (what t.In(loc).Date() computes), without the
	// round trip through a date.
	_, off := t.In(loc).Zone()
	s := t.Unix() + int64(off)
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return Day(d)
}

// zoneCache is DayOf for many instants in one location: it keeps the
// offset of the zone in force over the span of Unix seconds [lo, hi) it
// last looked up, so instants in that span (with UTC, all of them) take
// no lookup in the location's tables (DayOf's cost was a tenth of
// cleaning's).
type zoneCache struct {
	loc    *time.Location
	lo, hi int64 // empty until the first lookup
	off    int64
}

// day is DayOf(t, z.loc).
func (z *zoneCache) day(t time.Time) Day {
	s := t.Unix()
	if s < z.lo || s >= z.hi {
		z.lookup(t)
	}
	s += z.off
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return Day(d)
}

// lookup takes the zone in force at t and its bounds; a zone without a
// start or an end goes on for ever that way.
func (z *zoneCache) lookup(t time.Time) {
	in := t.In(z.loc)
	_, off := in.Zone()
	start, end := in.ZoneBounds()
	z.off, z.lo, z.hi = int64(off), math.MinInt64, math.MaxInt64
	if !start.IsZero() {
		z.lo = start.Unix()
	}
	if !end.IsZero() {
		z.hi = end.Unix()
	}
}

// Time returns midnight UTC of d, for printing.
func (d Day) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String formats d as YYYY-MM-DD.
func (d Day) String() string {
	var buf [10]byte
	return string(d.AppendDate(buf[:0]))
}

// AppendDate appends d as String formats it.
func (d Day) AppendDate(b []byte) []byte {
	if out, ok := appendDate(b, d); ok {
		return out
	}
	return d.Time().AppendFormat(b, "2006-01-02")
}

// History is a member's cleaned purchase history by day.
type History struct {
	Days  []Day      // distinct purchase days, ascending
	Spend []Money    // net spend per day, same index as Days
	Cats  [][]string // categories bought per day (distinct, sorted; may share the purchases' slices: read only)
}

// Clean nets refunds against their sales, drops entries that cannot be
// trusted or are not purchases (counting each), and folds what is left into
// purchase days up to and including the day of asOf. A sale stamped by an
// untrusted clock and not corrected (Purchase.Untrusted) is left out with
// its refunds and counted as Untrusted; callers pass a corrected time as
// At (ledger.Purchase.When).
func Clean(m Member, asOf time.Time, cfg *Config) (History, Exclusions) {
	c := cfg.withDefaults()
	return newCleaner(asOf, &c).clean(&m)
}

// cleaner is Clean for many members as of one day: its scratch space is
// reused from member to member, so cleaning a population allocates only
// the histories it returns (rank_train_vs_scan, the report).
type cleaner struct {
	loc      *time.Location
	zone     zoneCache // the days of the sales, in loc
	keepZero bool
	last     Day
	sales    []cleanSale
	byID     saleTable
	days     []cleanDay
	// slab: the histories' slices are cut from shared chunks rather than
	// allocated one by one (for populations; a single Clean allocates
	// exactly).
	slab     bool
	dayBuf   []Day
	spendBuf []Money
	catBuf   [][]string
	// noCats: histories come without Cats; the caller reads the
	// categories of the sales kept (days) before the next member is
	// cleaned, as Analyze does to build the category rhythms
	// (rhythms.categoriesOf).
	noCats bool
}

// slabChunk is the number of purchase days per shared chunk.
const slabChunk = 1 << 14

// alloc returns the three slices of a history of n purchase days.
func (cl *cleaner) alloc(n int) History {
	if cl.noCats {
		return cl.allocDays(n)
	}
	if !cl.slab || n == 0 || n > slabChunk/4 {
		return History{Days: make([]Day, n), Spend: make([]Money, n), Cats: make([][]string, n)}
	}
	if len(cl.catBuf) < n {
		cl.catBuf = make([][]string, slabChunk)
	}
	h := cl.allocDays(n)
	h.Cats = cl.catBuf[:n:n]
	cl.catBuf = cl.catBuf[n:]
	return h
}

// allocDays returns the days and spends of a history of n purchase days.
func (cl *cleaner) allocDays(n int) History {
	if !cl.slab || n == 0 || n > slabChunk/4 {
		return History{Days: make([]Day, n), Spend: make([]Money, n)}
	}
	if len(cl.dayBuf) < n {
		cl.dayBuf, cl.spendBuf = make([]Day, slabChunk), make([]Money, slabChunk)
	}
	h := History{Days: cl.dayBuf[:n:n], Spend: cl.spendBuf[:n:n]}
	cl.dayBuf, cl.spendBuf = cl.dayBuf[n:], cl.spendBuf[n:]
	return h
}

// distinctSorted reports whether cats is not empty, strictly ascending
// and free of empty names: what cleaning would make of it.
func distinctSorted(cats []string) bool {
	if len(cats) == 0 || cats[0] == "" {
		return false
	}
	for i := 1; i < len(cats); i++ {
		if cats[i-1] >= cats[i] {
			return false
		}
	}
	return true
}

// cleanSale is one sale of the member being cleaned: its entries'
// indexes rather than copies of them, so the scratch space holds no
// pointers (nothing for the garbage collector to trace or guard).
type cleanSale struct {
	key     int32 // the entry whose SaleID names the sale
	sale    int32 // the entry of the sale itself (time, categories, clock), when hasSale
	amount  Money
	entries int32
	hasSale bool
}

type cleanDay struct {
	d      Day
	amount Money
	sale   int32 // the entry of the sale
}

// saleTable finds a member's sales by id when they are many: open
// addressing over indexes into the sales, emptied for the next member by
// a new generation rather than by clearing.
type saleTable struct {
	seed  maphash.Seed
	gen   uint32
	mask  uint64
	slots []saleSlot
}

type saleSlot struct {
	gen  uint32
	sale int32
}

// reset empties the table for up to n sales.
func (t *saleTable) reset(n int) {
	size := 64
	for size < 2*n {
		size <<= 1
	}
	if len(t.slots) < size {
		if t.slots == nil {
			t.seed = maphash.MakeSeed()
		}
		t.slots, t.gen = make([]saleSlot, size), 0
	}
	t.mask = uint64(size - 1)
	t.gen++
	if t.gen == 0 { // wrapped: old generations could match again
		clear(t.slots)
		t.gen = 1
	}
}

// find returns the sale whose key entry's id is id, or adds next under
// it: found is false and next is returned.
func (t *saleTable) find(id string, next int32, sales []cleanSale, ps []Purchase) (int32, bool) {
	for k := maphash.String(t.seed, id) & t.mask; ; k = (k + 1) & t.mask {
		sl := &t.slots[k]
		if sl.gen != t.gen {
			*sl = saleSlot{gen: t.gen, sale: next}
			return next, false
		}
		if ps[sales[sl.sale].key].SaleID == id {
			return sl.sale, true
		}
	}
}

// linearSales is the number of entries up to which a member's sales are
// matched by id with a linear scan rather than a table.
const linearSales = 16

// newCleaner prepares cleaning as of asOf under c (with defaults applied).
func newCleaner(asOf time.Time, c *Config) *cleaner {
	return &cleaner{loc: c.Location, zone: zoneCache{loc: c.Location}, keepZero: c.KeepZeroAmount, last: DayOf(asOf, c.Location)}
}

// newPopulationCleaner is newCleaner for many members: histories share
// chunks of memory, which live as long as any of them does.
func newPopulationCleaner(asOf time.Time, c *Config) *cleaner {
	cl := newCleaner(asOf, c)
	cl.slab = true
	return cl
}

// clean is Clean of one member.
func (cl *cleaner) clean(m *Member) (History, Exclusions) {
	var ex Exclusions
	var enrol Day
	hasEnrol := !m.EnrolledAt.IsZero()
	if hasEnrol {
		enrol = DayOf(m.EnrolledAt, cl.loc)
	}
	// Entries by sale id, in order of first appearance; an entry without
	// an id stands alone.
	cl.sales = cl.sales[:0]
	ps := m.Purchases
	useTable := len(ps) > linearSales
	if useTable {
		cl.byID.reset(len(ps))
	}
	for i := range ps {
		p := &ps[i]
		j := int32(-1)
		if p.SaleID != "" {
			if useTable {
				if k, ok := cl.byID.find(p.SaleID, int32(len(cl.sales)), cl.sales, ps); ok {
					j = k
				}
			} else {
				id := p.SaleID
				for k := range cl.sales {
					// Ids of one member's sales mostly differ in their
					// last byte: compared before the whole ids.
					if q := ps[cl.sales[k].key].SaleID; len(q) == len(id) && q[len(q)-1] == id[len(id)-1] && q == id {
						j = int32(k)
						break
					}
				}
			}
		}
		if j < 0 {
			j = int32(len(cl.sales))
			cl.sales = append(cl.sales, cleanSale{key: int32(i)})
		}
		s := &cl.sales[j]
		s.entries++
		s.amount += p.Amount
		if (p.Amount > 0 || cl.keepZero && p.Amount == 0) && !s.hasSale {
			s.hasSale, s.sale = true, int32(i)
		}
	}
	cl.days = cl.days[:0]
	sorted := true
	for k := range cl.sales {
		s := &cl.sales[k]
		entries := int(s.entries)
		switch {
		case !s.hasSale && s.amount == 0:
			ex.ZeroAmount += entries
			continue
		case !s.hasSale:
			ex.OrphanRefund += entries
			continue
		case s.amount < 0 || s.amount == 0 && !cl.keepZero:
			ex.Refunded += entries
			continue
		}
		sp := &ps[s.sale]
		if sp.Untrusted {
			ex.Untrusted += entries
			continue
		}
		d := cl.zone.day(sp.At)
		if d > cl.last {
			ex.Future += entries
			continue
		}
		if hasEnrol && d < enrol {
			ex.BeforeEnrolment += entries
			continue
		}
		if n := len(cl.days); n > 0 && d < cl.days[n-1].d {
			sorted = false
		}
		cl.days = append(cl.days, cleanDay{d: d, amount: s.amount, sale: s.sale})
	}
	if !sorted {
		// Stable, so the categories of one day meet in entry order (they
		// are sorted below anyway).
		slices.SortStableFunc(cl.days, func(a, b cleanDay) int { return int(a.d) - int(b.d) })
	}
	n := 0
	for k := range cl.days {
		if k == 0 || cl.days[k].d != cl.days[k-1].d {
			n++
		}
	}
	out := cl.alloc(n)
	j := -1
	for k := range cl.days {
		e := &cl.days[k]
		if k == 0 || e.d != cl.days[k-1].d {
			j++
			out.Days[j] = e.d
		}
		out.Spend[j] += e.amount
		if cl.noCats {
			continue
		}
		cats := ps[e.sale].Categories
		if out.Cats[j] == nil && distinctSorted(cats) {
			// The day's first sale with its categories already distinct
			// and sorted (the usual case): shared, not copied. Its
			// capacity is cut so a later sale on the same day appends to
			// a copy.
			out.Cats[j] = cats[:len(cats):len(cats)]
			continue
		}
		for _, c := range cats {
			if c != "" && !slices.Contains(out.Cats[j], c) {
				out.Cats[j] = append(out.Cats[j], c)
			}
		}
	}
	for j := range out.Cats {
		// A shared slice is sorted already and never written.
		if len(out.Cats[j]) > 1 && !slices.IsSorted(out.Cats[j]) {
			sort.Strings(out.Cats[j])
		}
	}
	if n == 0 {
		ex.NoPurchases = 1
	}
	return out, ex
}
