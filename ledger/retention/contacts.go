package retention

import (
	"fmt"
	"time"
)

// ContactKind names why a member is contacted.
type ContactKind string

// Contact kinds.
const (
	ContactDue       ContactKind = "due"        // past their own interval: a reminder
	ContactSleeping  ContactKind = "sleeping"   // reactivation offer
	ContactBirthday  ContactKind = "birthday"   // birthday in the next few days
	ContactFollowUp  ContactKind = "followup"   // 5-7 days after a purchase
	ContactFirstTime ContactKind = "first-time" // bought once: the next-purchase benefit
)

// ContactKinds lists every kind in priority order: when a member qualifies
// for several, the first wins, so nobody gets two messages from one run.
var ContactKinds = []ContactKind{ContactBirthday, ContactSleeping, ContactDue, ContactFirstTime, ContactFollowUp}

// ContactRecord is one contact that was made (recorded by sync/hq/contactlog).
type ContactRecord struct {
	MemberID string      `json:"member_id"`
	Kind     ContactKind `json:"kind"`
	At       time.Time   `json:"at"`
}

// ContactHistory gives the contacts made with a member, in any order.
type ContactHistory interface {
	Contacts(memberID string) ([]ContactRecord, error)
}

// ContactOptions tunes ContactList. A nil *ContactOptions means defaults.
type ContactOptions struct {
	// Kinds to include; default all.
	Kinds []ContactKind
	// MaxPerLapse caps due and sleeping reminders between two purchases;
	// default 3. A purchase starts a new lapse.
	MaxPerLapse int
	// MinGapDays is the least time between two reminders; default 7.
	MinGapDays int
	// BirthdayDaysAhead: birthdays from asOf to asOf+N days; default 7.
	BirthdayDaysAhead int
	// FollowUpFrom, FollowUpTo: days after the last purchase; default 5, 7.
	FollowUpFrom, FollowUpTo int
	// FirstTimeWithinDays: one-purchase members whose purchase is at most
	// this old; default 30.
	FirstTimeWithinDays int
}

func (o *ContactOptions) withDefaults() ContactOptions {
	var c ContactOptions
	if o != nil {
		c = *o
	}
	if len(c.Kinds) == 0 {
		c.Kinds = ContactKinds
	}
	if c.MaxPerLapse == 0 {
		c.MaxPerLapse = 3
	}
	if c.MinGapDays == 0 {
		c.MinGapDays = 7
	}
	if c.BirthdayDaysAhead == 0 {
		c.BirthdayDaysAhead = 7
	}
	if c.FollowUpFrom == 0 && c.FollowUpTo == 0 {
		c.FollowUpFrom, c.FollowUpTo = 5, 7
	}
	if c.FirstTimeWithinDays == 0 {
		c.FirstTimeWithinDays = 30
	}
	return c
}

// Validate reports unusable options.
func (o *ContactOptions) Validate() error {
	c := o.withDefaults()
	if c.MaxPerLapse < 1 || c.MinGapDays < 0 || c.BirthdayDaysAhead < 0 || c.FirstTimeWithinDays < 0 {
		return fmt.Errorf("%w: contact options must be positive: %+v", ErrInvalid, c)
	}
	if c.FollowUpFrom < 1 || c.FollowUpTo < c.FollowUpFrom {
		return fmt.Errorf("%w: follow-up window %d..%d days", ErrInvalid, c.FollowUpFrom, c.FollowUpTo)
	}
	for _, k := range c.Kinds {
		if !validKind(k) {
			return fmt.Errorf("%w: unknown contact kind %q", ErrInvalid, k)
		}
	}
	return nil
}

func validKind(k ContactKind) bool {
	for _, x := range ContactKinds {
		if x == k {
			return true
		}
	}
	return false
}

// ParseContactKind checks a kind named on a command line or in a request.
func ParseContactKind(s string) (ContactKind, error) {
	k := ContactKind(s)
	if !validKind(k) {
		return "", fmt.Errorf("%w: unknown contact kind %q (want one of %v)", ErrInvalid, s, ContactKinds)
	}
	return k, nil
}

// Contact is one line of a contact list.
type Contact struct {
	MemberID   string      `json:"member_id"`
	Kind       ContactKind `json:"kind"`
	Attempt    int         `json:"attempt"` // 1-based reminder number within this lapse (due, sleeping)
	LastBought string      `json:"last_purchase"`
	Segment    Segment     `json:"segment"`
	Value      string      `json:"value"`
	Reason     string      `json:"reason"`
}

// ContactList lists who to contact as of the analysis date: only members
// with consent, at most one contact per member, reminders capped per lapse
// and spaced by MinGapDays, each kind not repeated for the same occasion.
// hist may be nil (nobody contacted yet).
func (a *Analysis) ContactList(hist ContactHistory, opts *ContactOptions) ([]Contact, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	want := map[ContactKind]bool{}
	for _, k := range o.Kinds {
		want[k] = true
	}
	var out []Contact
	for i := range a.Profiles {
		p := &a.Profiles[i]
		if !p.Consent || p.Rhythm.PurchaseDays == 0 && p.Birthday == "" {
			continue
		}
		var recs []ContactRecord
		if hist != nil {
			var err error
			if recs, err = hist.Contacts(p.MemberID); err != nil {
				return nil, fmt.Errorf("contact history of %s: %w", p.MemberID, err)
			}
		}
		for _, k := range ContactKinds {
			if !want[k] {
				continue
			}
			if c, ok := a.qualifies(p, k, recs, o); ok {
				out = append(out, c)
				break
			}
		}
	}
	return out, nil
}

func (a *Analysis) qualifies(p *Profile, k ContactKind, recs []ContactRecord, o ContactOptions) (Contact, bool) {
	loc := a.Config.Location
	c := Contact{MemberID: p.MemberID, Kind: k, Segment: p.Segment, Value: p.Value, LastBought: p.Rhythm.LastDate}
	// since reports whether a record of one of the kinds lies after day d,
	// and the number and latest day of such records.
	since := func(d Day, kinds ...ContactKind) (n int, latest Day) {
		latest = -1 << 30
		for _, r := range recs {
			rd := DayOf(r.At, loc)
			if rd <= d || rd > a.AsOf {
				continue
			}
			for _, kk := range kinds {
				if r.Kind == kk {
					n++
					latest = max(latest, rd)
				}
			}
		}
		return n, latest
	}
	switch k {
	case ContactBirthday:
		mo, dd, ok := birthdayMonthDay(p.Birthday)
		if !ok {
			return c, false
		}
		next, ok := nextBirthday(a.AsOf, mo, dd)
		if !ok || int(next-a.AsOf) > o.BirthdayDaysAhead {
			return c, false
		}
		if n, _ := since(a.AsOf-Day(o.BirthdayDaysAhead)-30, ContactBirthday); n > 0 {
			return c, false // already greeted for this birthday
		}
		c.Reason = fmt.Sprintf("birthday on %s", next.Time().Format("01-02"))
		return c, true
	case ContactSleeping, ContactDue:
		want := StatusDue
		if k == ContactSleeping {
			want = StatusSleeping
		}
		if p.Status != want || p.Rhythm.PurchaseDays == 0 {
			return c, false
		}
		n, latest := since(p.Rhythm.Last, ContactDue, ContactSleeping)
		if n >= o.MaxPerLapse || n > 0 && int(a.AsOf-latest) < o.MinGapDays {
			return c, false
		}
		c.Attempt = n + 1
		if k == ContactDue {
			c.Reason = fmt.Sprintf("%d days since last purchase, usual interval %.0f days", p.DaysSince, p.Rhythm.MeanInterval)
		} else {
			c.Reason = fmt.Sprintf("sleeping (%s): %d days since last purchase", a.Sleeping, p.DaysSince)
		}
		return c, true
	case ContactFirstTime:
		if p.Rhythm.PurchaseDays != 1 || p.DaysSince > o.FirstTimeWithinDays {
			return c, false
		}
		if n, _ := since(p.Rhythm.Last-1, ContactFirstTime); n > 0 {
			return c, false
		}
		c.Reason = "first purchase: offer the next-purchase benefit"
		return c, true
	case ContactFollowUp:
		if p.DaysSince < o.FollowUpFrom || p.DaysSince > o.FollowUpTo {
			return c, false
		}
		if n, _ := since(p.Rhythm.Last, ContactFollowUp, ContactFirstTime); n > 0 {
			return c, false
		}
		c.Reason = fmt.Sprintf("follow-up %d days after purchase", p.DaysSince)
		return c, true
	}
	return c, false
}

// nextBirthday is the first day on or after from that falls on month/day;
// 29 February falls on 28 February in other years.
func nextBirthday(from Day, mo time.Month, dd int) (Day, bool) {
	t := from.Time()
	for y := t.Year(); y <= t.Year()+1; y++ {
		d := dd
		if mo == time.February && dd == 29 && !isLeap(y) {
			d = 28
		}
		b := DayOf(time.Date(y, mo, d, 0, 0, 0, 0, time.UTC), time.UTC)
		if b >= from {
			return b, true
		}
	}
	return 0, false
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }
