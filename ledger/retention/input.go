package retention

import (
	"errors"
	"fmt"
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
func (m *Member) legacyChannels() []string {
	var chans []string
	if m.Phone != "" {
		chans = append(chans, ChannelSMS, ChannelPhone)
	}
	if m.Email != "" {
		chans = append(chans, ChannelEmail)
	}
	if len(chans) == 0 {
		chans = []string{ChannelInStore}
	}
	return chans
}

// ChannelsAt returns the channels m may be contacted on as of asOf, in the
// order of Channels: from the consent events when there are any, else from
// the plain Consent flag (legacyChannels).
func (m *Member) ChannelsAt(asOf time.Time) []ChannelConsent {
	var out []ChannelConsent
	if len(m.Consents) == 0 {
		if m.Consent {
			for _, c := range m.legacyChannels() {
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
	y, m, d := t.In(loc).Date()
	return Day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Time returns midnight UTC of d, for printing.
func (d Day) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String formats d as YYYY-MM-DD.
func (d Day) String() string { return d.Time().Format("2006-01-02") }

// History is a member's cleaned purchase history by day.
type History struct {
	Days  []Day      // distinct purchase days, ascending
	Spend []Money    // net spend per day, same index as Days
	Cats  [][]string // categories bought per day (distinct, sorted)
}

// Clean nets refunds against their sales, drops entries that cannot be
// trusted or are not purchases (counting each), and folds what is left into
// purchase days up to and including the day of asOf. A sale stamped by an
// untrusted clock and not corrected (Purchase.Untrusted) is left out with
// its refunds and counted as Untrusted; callers pass a corrected time as
// At (ledger.Purchase.When).
func Clean(m Member, asOf time.Time, cfg *Config) (History, Exclusions) {
	c := cfg.withDefaults()
	loc, keepZero := c.Location, c.KeepZeroAmount
	var ex Exclusions
	last := DayOf(asOf, loc)
	var enrol Day
	hasEnrol := !m.EnrolledAt.IsZero()
	if hasEnrol {
		enrol = DayOf(m.EnrolledAt, loc)
	}
	type sale struct {
		at      time.Time
		amount  Money
		cats    []string
		hasSale bool
		entries int
		// untrusted: the sale was stamped by an uncorrected untrusted clock
		untrusted bool
	}
	sales := map[string]*sale{}
	var order []*sale
	for i, p := range m.Purchases {
		key := p.SaleID
		if key == "" {
			key = fmt.Sprintf("\x00%d", i) // no id: each entry stands alone
		}
		s := sales[key]
		if s == nil {
			s = &sale{}
			sales[key] = s
			order = append(order, s)
		}
		s.entries++
		s.amount += p.Amount
		if (p.Amount > 0 || keepZero && p.Amount == 0) && !s.hasSale {
			s.hasSale, s.at, s.cats, s.untrusted = true, p.At, p.Categories, p.Untrusted
		}
	}
	byDay := map[Day]int{}
	var h History
	for _, s := range order {
		switch {
		case !s.hasSale && s.amount == 0:
			ex.ZeroAmount += s.entries
			continue
		case !s.hasSale:
			ex.OrphanRefund += s.entries
			continue
		case s.amount < 0 || s.amount == 0 && !keepZero:
			ex.Refunded += s.entries
			continue
		}
		if s.untrusted {
			ex.Untrusted += s.entries
			continue
		}
		d := DayOf(s.at, loc)
		if d > last {
			ex.Future += s.entries
			continue
		}
		if hasEnrol && d < enrol {
			ex.BeforeEnrolment += s.entries
			continue
		}
		i, ok := byDay[d]
		if !ok {
			i = len(h.Days)
			byDay[d] = i
			h.Days = append(h.Days, d)
			h.Spend = append(h.Spend, 0)
			h.Cats = append(h.Cats, nil)
		}
		h.Spend[i] += s.amount
		for _, c := range s.cats {
			if c != "" && !slices.Contains(h.Cats[i], c) {
				h.Cats[i] = append(h.Cats[i], c)
			}
		}
	}
	idx := make([]int, len(h.Days))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return h.Days[idx[a]] < h.Days[idx[b]] })
	out := History{Days: make([]Day, len(idx)), Spend: make([]Money, len(idx)), Cats: make([][]string, len(idx))}
	for j, i := range idx {
		out.Days[j], out.Spend[j], out.Cats[j] = h.Days[i], h.Spend[i], h.Cats[i]
		sort.Strings(out.Cats[j])
	}
	if len(out.Days) == 0 {
		ex.NoPurchases = 1
	}
	return out, ex
}
