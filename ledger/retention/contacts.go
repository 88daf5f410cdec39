package retention

import (
	"fmt"
	"sort"
	"time"
)

// ContactKind names why a member is contacted.
type ContactKind string

// Contact kinds.
const (
	ContactBirthday  ContactKind = "birthday"   // birthday in the next few days
	ContactFirstTime ContactKind = "first-time" // bought once: the next-purchase benefit
	ContactFollowUp  ContactKind = "followup"   // 5-7 days after a purchase
	ContactDue       ContactKind = "due"        // past their own interval: a reminder
	ContactSleeping  ContactKind = "sleeping"   // reactivation offer
	ContactWinBack   ContactKind = "win-back"   // lost members; off unless asked for
)

// ContactKinds lists every kind in order of precedence: when a member
// qualifies for several in one run, the first wins, so nobody gets two
// messages from one run. The policy is written out in docs/retention.md.
var ContactKinds = []ContactKind{ContactBirthday, ContactFirstTime, ContactFollowUp, ContactDue, ContactSleeping, ContactWinBack}

// DefaultContactKinds are the kinds a list includes unless told otherwise:
// every kind but win-back.
var DefaultContactKinds = []ContactKind{ContactBirthday, ContactFirstTime, ContactFollowUp, ContactDue, ContactSleeping}

// ContactRecord is one contact that was made (recorded by sync/hq/contactlog).
type ContactRecord struct {
	MemberID string      `json:"member_id"`
	Kind     ContactKind `json:"kind"`
	At       time.Time   `json:"at"`
	Channel  string      `json:"channel,omitempty"`
	// HeldOut marks a member of the control group: listed, not contacted.
	// Held-out records do not count as contacts for the policy.
	HeldOut bool `json:"held_out,omitempty"`
}

// ContactHistory gives the contacts made with a member, in any order.
type ContactHistory interface {
	Contacts(memberID string) ([]ContactRecord, error)
}

// ContactOptions tunes ContactList. A nil *ContactOptions means defaults.
type ContactOptions struct {
	// Kinds to include; default DefaultContactKinds (win-back is off).
	Kinds []ContactKind
	// MaxPerLapse is the member's budget of contacts per lapse episode
	// (from one purchase day to the next), across first-time, follow-up,
	// due, sleeping and win-back; default 3. One slot is kept for the
	// sleeping offer (and one for win-back when it is on) until it is
	// made, so a lapsing regular always reaches it.
	MaxPerLapse int
	// MinGapDays is the least time between two contacts of any kind;
	// default 7.
	MinGapDays int
	// BirthdayDaysAhead: birthdays from asOf to asOf+N days; default 7.
	BirthdayDaysAhead int
	// FollowUpFrom, FollowUpTo: the follow-up window in days after the
	// last purchase; default 5, 7.
	FollowUpFrom, FollowUpTo int
	// FirstTimeWithinDays: one-purchase members whose purchase is at most
	// this old; default 30.
	FirstTimeWithinDays int
	// Channels is the order of preference of channels; a member is
	// contacted on the first one they consented to, and not at all when
	// they consented to none of them. Default Channels.
	Channels []string
	// HoldoutShare is the share of contacts held out as a control group
	// (not sent, recorded as held out); 0 means DefaultHoldoutShare, a
	// negative value none. HoldoutSeed makes the draw reproducible.
	HoldoutShare float64
	HoldoutSeed  string
	// LastRun is the day of the previous run (from the contact log);
	// zero when there was none. A follow-up is due when its window
	// overlaps the days since the last run (at most MinGapDays back), so
	// a weekly runner reaches every purchase whose window it straddles.
	LastRun time.Time
}

func (o *ContactOptions) withDefaults() ContactOptions {
	var c ContactOptions
	if o != nil {
		c = *o
	}
	if len(c.Kinds) == 0 {
		c.Kinds = DefaultContactKinds
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
	if len(c.Channels) == 0 {
		c.Channels = Channels
	}
	if c.HoldoutShare == 0 {
		c.HoldoutShare = DefaultHoldoutShare
	}
	if c.HoldoutSeed == "" {
		c.HoldoutSeed = "control"
	}
	return c
}

// Validate reports unusable options.
func (o *ContactOptions) Validate() error {
	c := o.withDefaults()
	if c.MaxPerLapse < 1 || c.MinGapDays < 0 || c.BirthdayDaysAhead < 0 || c.FirstTimeWithinDays < 0 {
		return fmt.Errorf("%w: contact options must be positive: %+v", ErrInvalid, c)
	}
	if c.HoldoutShare >= 1 {
		return fmt.Errorf("%w: holdout share %g must be below 1", ErrInvalid, c.HoldoutShare)
	}
	if c.FollowUpFrom < 1 || c.FollowUpTo < c.FollowUpFrom {
		return fmt.Errorf("%w: follow-up window %d..%d days", ErrInvalid, c.FollowUpFrom, c.FollowUpTo)
	}
	for _, k := range c.Kinds {
		if !validKind(k) {
			return fmt.Errorf("%w: unknown contact kind %q", ErrInvalid, k)
		}
	}
	for _, ch := range c.Channels {
		if !ValidChannel(ch) {
			return fmt.Errorf("%w: unknown channel %q (want one of %v)", ErrInvalid, ch, Channels)
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
	Name       string      `json:"name,omitempty"`
	Channel    string      `json:"channel"`           // the channel consented to
	Address    string      `json:"address,omitempty"` // its address (phone or email; empty in store)
	Kind       ContactKind `json:"kind"`
	Attempt    int         `json:"attempt"` // 1-based number of this contact within the lapse episode (0 for birthdays)
	LastBought string      `json:"last_purchase"`
	Segment    Segment     `json:"segment"`
	Value      string      `json:"value"`
	Reason     string      `json:"reason"`
	// Risk orders the list, riskiest first: the ranking model's
	// probability of no purchase in the next 91 days (RankModel, trained
	// on this analysis's own history), or days absent in own intervals
	// when no model can be trained.
	Risk float64 `json:"risk"`
	// HeldOut: this contact is in the control group; do not send it, record
	// it (contacts list --mark does) so the campaign can be measured.
	HeldOut bool `json:"held_out,omitempty"`
}

// ContactList lists who to contact as of the analysis date under the one
// contact policy (docs/retention.md, "Contact policy"): only members with
// consent; at most one contact per member per run, by precedence
// (ContactKinds); no two contacts within MinGapDays; per lapse episode
// (since the last purchase day) each kind at most once and at most
// MaxPerLapse contacts, with a slot kept for the sleeping offer; birthdays
// once per birthday, outside the budget. hist may be nil (nobody contacted
// yet).
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
		var ch *ChannelConsent
		for _, want := range o.Channels {
			for j := range p.Channels {
				if p.Channels[j].Channel == want && ch == nil {
					ch = &p.Channels[j]
				}
			}
		}
		if ch == nil {
			continue // no consent on any channel asked for
		}
		var recs []ContactRecord
		if hist != nil {
			var err error
			if recs, err = hist.Contacts(p.MemberID); err != nil {
				return nil, fmt.Errorf("contact history of %s: %w", p.MemberID, err)
			}
		}
		if c, ok := a.policy(p, recs, o, want); ok {
			c.Name, c.Channel, c.Address = p.Name, ch.Channel, ch.Address
			c.HeldOut = heldOut(o.HoldoutSeed, p.MemberID, c.Kind, p.Rhythm.Last, o.HoldoutShare)
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return out, nil
	}
	model, err := a.TrainRank(DefaultRankInnerDays)
	for i := range out {
		p, _ := a.Profile(out[i].MemberID)
		if err == nil {
			out[i].Risk, _ = model.ScoreProfile(a, p)
		} else if iv := a.ownInterval(p); iv > 0 && p.Rhythm.PurchaseDays > 0 {
			out[i].Risk = float64(p.DaysSince) / iv
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Risk != out[j].Risk {
			return out[i].Risk > out[j].Risk
		}
		return out[i].MemberID < out[j].MemberID
	})
	return out, nil
}

// episode is what the contact log says about a member as of a run.
type episode struct {
	last     Day                  // day of the latest contact of any kind up to asOf; -1 << 30 without
	used     int                  // contacts in this lapse episode, birthdays aside
	has      map[ContactKind]bool // kinds already made in this lapse episode
	everKind map[ContactKind]Day  // latest day of each kind ever (up to asOf)
}

func (a *Analysis) episodeOf(p *Profile, recs []ContactRecord) episode {
	loc := a.Config.Location
	e := episode{last: -1 << 30, has: map[ContactKind]bool{}, everKind: map[ContactKind]Day{}}
	for _, r := range recs {
		rd := DayOf(r.At, loc)
		if rd > a.AsOf || r.HeldOut {
			continue // recorded after this run's date: a rerun of the past
		}
		e.last = max(e.last, rd)
		if d, ok := e.everKind[r.Kind]; !ok || rd > d {
			e.everKind[r.Kind] = rd
		}
		if p.Rhythm.PurchaseDays > 0 && rd >= p.Rhythm.Last && r.Kind != ContactBirthday {
			e.used++
			e.has[r.Kind] = true
		}
	}
	return e
}

// policy applies the contact policy to one member: it returns the one
// contact to make now, if any.
func (a *Analysis) policy(p *Profile, recs []ContactRecord, o ContactOptions, want map[ContactKind]bool) (Contact, bool) {
	e := a.episodeOf(p, recs)
	if int(a.AsOf-e.last) < o.MinGapDays {
		return Contact{}, false // spacing: contacted too recently (also a same-day rerun)
	}
	for _, k := range ContactKinds {
		if !want[k] {
			continue
		}
		c, ok := a.qualifies(p, k, e, o)
		if !ok {
			continue
		}
		if k != ContactBirthday {
			if e.has[k] {
				continue // each kind once per lapse episode
			}
			reserve := 0
			if k != ContactSleeping && k != ContactWinBack && !e.has[ContactSleeping] {
				reserve++
			}
			if want[ContactWinBack] && k != ContactWinBack && !e.has[ContactWinBack] {
				reserve++
			}
			if e.used+1 > o.MaxPerLapse-reserve {
				continue
			}
			c.Attempt = e.used + 1
		}
		return c, true
	}
	return Contact{}, false
}

// qualifies reports whether p is an occasion for kind k now, whatever the
// budget.
func (a *Analysis) qualifies(p *Profile, k ContactKind, e episode, o ContactOptions) (Contact, bool) {
	c := Contact{MemberID: p.MemberID, Kind: k, Segment: p.Segment, Value: p.Value, LastBought: p.Rhythm.LastDate()}
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
		if d, ok := e.everKind[ContactBirthday]; ok && d > a.AsOf-Day(o.BirthdayDaysAhead)-30 {
			return c, false // already greeted for this birthday
		}
		c.Reason = fmt.Sprintf("birthday on %s", next.Time().Format("01-02"))
		return c, true
	case ContactFirstTime:
		if p.Rhythm.PurchaseDays != 1 || p.DaysSince > o.FirstTimeWithinDays {
			return c, false
		}
		if _, ok := e.everKind[ContactFirstTime]; ok {
			return c, false
		}
		c.Reason = "first purchase: offer the next-purchase benefit"
		return c, true
	case ContactFollowUp:
		if p.Rhythm.PurchaseDays == 0 || e.has[ContactFirstTime] {
			return c, false // the first-time message is this purchase's follow-up
		}
		if iv := a.ownInterval(p); iv <= float64(2*o.FollowUpTo) {
			return c, false // back within two windows anyway: a follow-up would only add noise
		}
		from, to := p.Rhythm.Last+Day(o.FollowUpFrom), p.Rhythm.Last+Day(o.FollowUpTo)
		since := a.AsOf - 1 // no earlier run: the window is checked on this day alone
		if !o.LastRun.IsZero() {
			since = max(min(DayOf(o.LastRun, a.Config.Location), a.AsOf-1), a.AsOf-Day(max(o.MinGapDays, 1)))
		}
		if from > a.AsOf || to <= since {
			return c, false
		}
		c.Reason = fmt.Sprintf("follow-up %d days after purchase", p.DaysSince)
		return c, true
	case ContactDue:
		if p.Status != StatusDue {
			return c, false
		}
		c.Reason = fmt.Sprintf("%d days since last purchase, usual interval %.0f days", p.DaysSince, p.Rhythm.MeanInterval)
		return c, true
	case ContactSleeping:
		if p.Status != StatusSleeping {
			return c, false
		}
		c.Reason = fmt.Sprintf("sleeping (%s): %d days since last purchase", a.Sleeping, p.DaysSince)
		if !p.Rhythm.HasInterval {
			c.Reason += a.oneTimeNote(p)
		}
		return c, true
	case ContactWinBack:
		if p.Status != StatusLost {
			return c, false
		}
		c.Reason = fmt.Sprintf("lost: %d days since last purchase", p.DaysSince)
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

// oneTimeNote says what the sleeping rule used for a member with one
// purchase day, who has no interval of their own.
func (a *Analysis) oneTimeNote(p *Profile) string {
	r := a.Sleeping
	switch {
	case r.Kind == SleepPNone && p.PNone > r.Threshold:
		return fmt.Sprintf("; one purchase, no own interval: BG/NBD P(no purchase in %d days) = %.2f", r.WindowDays, p.PNone)
	case r.Kind == SleepIntervals || r.Kind == SleepPNone && r.Intervals > 0:
		return fmt.Sprintf("; one purchase, no own interval: the population's median interval (%.0f days) used, absent > %.0f days", a.PopulationMedianInterval, r.Intervals*a.PopulationMedianInterval)
	}
	return "; one purchase, no own interval"
}
