package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Codes say why an event is held. They appear in head office's review
// list, its status counters and the notice a register shows.
const (
	CodeEarn   = "earn"   // earn/bonus points above what the sale's rule set allows
	CodeRules  = "rules"  // the sale's rule set version is unknown at head office
	CodeNoSale = "nosale" // earn/bonus points for a sale head office has not seen
	CodeSign   = "sign"   // points of the wrong sign for their kind, or an unknown kind adding points
	CodeAdjust = "adjust" // an adjustment over the per-event or per-day cap
	CodeAlias  = "alias"  // a member record claiming another member's alias
	// CodeReverse: a reversal giving points back that does not undo a
	// redemption of the same member at the same register, or gives back
	// more than it took.
	CodeReverse = "reverse"
	// CodeProfile: a member record or consent given from a store where
	// the member never enrolled or bought.
	CodeProfile = "profile"
	// CodeBonus: a first-purchase bonus for a member head office already
	// credited one, or a birthday bonus beyond the member's allowance for
	// that birthday's year (Limits.BirthdayPerYear).
	CodeBonus = "bonus"
)

// Defaults of Limits.
const (
	DefaultAdjustPerEvent = 10_000
	DefaultAdjustPerDay   = 50_000
	// DefaultBirthdayPerYear is how many birthday bonuses a member gets
	// chain-wide per birthday (year).
	DefaultBirthdayPerYear = 1
)

// Limits are the caps head office enforces. Zero values mean the defaults;
// a negative value means no adjustment at all is applied without review.
type Limits struct {
	// AdjustPerEvent caps the size (absolute points) of one adjustment.
	AdjustPerEvent int64
	// AdjustPerDay caps the sum of the sizes of one register's applied
	// adjustments on one day (head office's day, Location).
	AdjustPerDay int64
	// Location is the time zone of head office's day; default UTC.
	Location *time.Location
	// BirthdayPerYear is how many birthday bonuses a member is credited
	// chain-wide for one birthday (its year); zero means the default
	// (1), a negative value holds every birthday bonus for review.
	BirthdayPerYear int
}

// Policy holds the limits and the rule sets head office knows. Safe for
// concurrent use.
type Policy struct {
	limits Limits
	clock  clock.Clock
	mu     stdsync.RWMutex
	rules  map[int][]*rules.Engine // by version; scopes may reuse a number
}

// New returns a policy with the given limits; clk gives head office's day
// (default the system clock).
func New(l Limits, clk clock.Clock) *Policy {
	if l.AdjustPerEvent == 0 {
		l.AdjustPerEvent = DefaultAdjustPerEvent
	}
	if l.AdjustPerDay == 0 {
		l.AdjustPerDay = DefaultAdjustPerDay
	}
	if l.Location == nil {
		l.Location = time.UTC
	}
	if l.BirthdayPerYear == 0 {
		l.BirthdayPerYear = DefaultBirthdayPerYear
	}
	return &Policy{limits: l, clock: clock.Or(clk), rules: map[int][]*rules.Engine{}}
}

// Limits returns the limits in force (defaults filled in).
func (p *Policy) Limits() Limits { return p.limits }

// AddRuleSet makes a rule set known, so sales that report its version can
// be checked. A second rule set with the same version (another scope)
// is kept beside the first; a sale's allowance is the larger of the two.
func (p *Policy) AddRuleSet(rs *rules.RuleSet) error {
	e, err := rs.Compile()
	if err != nil {
		return fmt.Errorf("policy: rule set %d: %w", rs.Version, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, old := range p.rules[rs.Version] {
		if sameRules(old.RuleSet(), rs) {
			return nil
		}
	}
	p.rules[rs.Version] = append(p.rules[rs.Version], e)
	return nil
}

func sameRules(a, b *rules.RuleSet) bool {
	ja, err1 := jsonOf(a)
	jb, err2 := jsonOf(b)
	return err1 == nil && err2 == nil && ja == jb
}

// Versions lists the rule set versions head office knows.
func (p *Policy) Versions() []int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var v []int
	for k := range p.rules {
		v = append(v, k)
	}
	slices.Sort(v)
	return v
}

// Allowance is the most points sale may earn (earn and bonus events
// together, a later clock correction included) under the rule set
// version it reports; known is false when head office does not know
// that version.
func (p *Policy) Allowance(sale ledger.Sale) (allowed int64, known bool) {
	p.mu.RLock()
	engines := p.rules[sale.RuleVersion]
	p.mu.RUnlock()
	if len(engines) == 0 {
		return 0, false
	}
	lines := make([]rules.LineInput, 0, len(sale.Lines))
	for _, l := range sale.Lines {
		lines = append(lines, rules.LineInput{No: l.No, SKU: l.SKU, Category: l.Category, Amount: int64(max(l.Amount(), 0))})
	}
	allowed = -1
	for _, e := range engines {
		allowed = max(allowed, e.MaxEarn(lines))
	}
	return allowed, true
}

// Day is head office's current day ("2006-01-02" in Location), the
// period of the per-day adjustment cap.
func (p *Policy) Day() string {
	t, _ := p.clock.Now()
	return t.In(p.limits.Location).Format(time.DateOnly)
}

// Sale is what head office knows about the sale a point event names.
type Sale struct {
	Seen        bool  // the sale event has been applied
	Known       bool  // its rule set version was known when it was applied
	RuleVersion int   // the version it reported
	Allowed     int64 // its allowance (Allowance), when Known
	Earned      int64 // earn and bonus points of it applied so far
}

// Event is one event about to be applied, with the facts the store
// gathered for it. Exactly one of Point and Member is set; other events
// are not checked.
type Event struct {
	Register string
	Point    *ledger.PointEvent // Kind, MemberID, Points, SaleID, Reverses and Reason are used
	Member   *ledger.Member     // ID and Aliases are used
	// Sale: for an earn or bonus event, the sale it names.
	Sale Sale
	// AdjustedToday is the sum of the sizes of this register's
	// adjustments applied today (Day).
	AdjustedToday int64
	// AliasOwners maps each of the member record's aliases that already
	// belongs to a member to that member.
	AliasOwners map[string]string
	// Reversed: for a reversal giving points back (positive points), the
	// event it names (Reverses) as head office applied it.
	Reversed Reversed
	// ForeignStore: for a member record (or consent given, passed as a
	// member record with only ID and Consent), the register's store when
	// head office knows the member from other stores and never saw it at
	// this one; empty otherwise.
	ForeignStore string
	// Bonus: for a first-purchase or birthday bonus, what head office
	// already credited the member chain-wide.
	Bonus Bonus
}

// Bonus is what head office credited a member of the once-per-member
// bonuses (applied bonus events, any register).
type Bonus struct {
	// FirstPurchase: a first-purchase bonus was credited.
	FirstPurchase bool
	// Birthdays is how many birthday bonuses were credited for the
	// birthday in year BirthdayYear, the year of the one checked
	// (BirthdayYear).
	BirthdayYear int
	Birthdays    int
}

// BirthdayYear is the year of the birthday a birthday bonus credited at
// at was for: the year whose birthday (month and day of birthday,
// "YYYY-MM-DD" or "--MM-DD"; 29 February on 28 February in other years)
// lies nearest at, so a bonus in early January for a birthday on 30
// December counts for the December before. An unknown or malformed
// birthday gives at's year. A bonus window is days around the birthday,
// so the nearest birthday is the one it was for.
func BirthdayYear(birthday string, at time.Time) int {
	at = at.UTC()
	y := at.Year()
	var mm, dd int
	b := strings.TrimPrefix(birthday, "--")
	if len(b) == 10 {
		b = b[5:]
	}
	if _, err := fmt.Sscanf(b, "%02d-%02d", &mm, &dd); err != nil || len(b) != 5 || mm < 1 || mm > 12 || dd < 1 || dd > 31 {
		return y
	}
	best, bestDist := y, time.Duration(math.MaxInt64)
	for _, cand := range []int{y - 1, y, y + 1} {
		d := dd
		if mm == 2 && dd == 29 && !leap(cand) {
			d = 28
		}
		day := time.Date(cand, time.Month(mm), d, 12, 0, 0, 0, time.UTC)
		dist := at.Sub(day)
		if dist < 0 {
			dist = -dist
		}
		if dist < bestDist {
			best, bestDist = cand, dist
		}
	}
	return best
}

func leap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// Reversed is what head office knows about the event a reversal names.
type Reversed struct {
	Found     bool             // the register's stream holds it, applied
	Held      bool             // the policy held it: its points were never taken
	Kind      ledger.EventKind // its kind
	MemberID  string           // its member
	Points    int64            // its points (negative for a redemption)
	GivenBack int64            // points earlier reversals of it gave back
}

// Verdict is Check's answer: Code empty means apply; otherwise hold the
// event for review, with Text saying why in words.
type Verdict struct {
	Code string `json:"code,omitempty"`
	Text string `json:"text,omitempty"`
}

// Hold reports whether the event is to be held.
func (v Verdict) Hold() bool { return v.Code != "" }

func hold(code, format string, args ...any) Verdict {
	return Verdict{Code: code, Text: fmt.Sprintf(format, args...)}
}

// Check decides one event. It does not change anything; the caller
// records an applied adjustment's size and a sale's earned points.
func (p *Policy) Check(ev Event) Verdict {
	switch {
	case ev.Point != nil:
		return p.checkPoints(ev)
	case ev.Member != nil:
		for _, a := range ev.Member.Aliases {
			if owner, ok := ev.AliasOwners[a]; ok && owner != ev.Member.ID {
				return hold(CodeAlias, "member %s: a card or alias of member %s given to member %s; held, not moved", ev.Member.ID, owner, ev.Member.ID)
			}
		}
		if ev.ForeignStore != "" {
			return hold(CodeProfile, "member %s: a profile or consent change from store %s, where the member never enrolled or bought; held, not applied",
				ev.Member.ID, ev.ForeignStore)
		}
	}
	return Verdict{}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func (p *Policy) checkPoints(ev Event) Verdict {
	pe := ev.Point
	pts := int64(pe.Points)
	switch pe.Kind {
	case ledger.KindEarn, ledger.KindBonus:
		s := ev.Sale
		switch {
		case pts < 0:
			return hold(CodeSign, "%s of %d points for member %s: negative", pe.Kind, pts, pe.MemberID)
		case pe.SaleID == "" || !s.Seen:
			return hold(CodeNoSale, "%s of %d points for member %s names sale %q, which head office has not recorded", pe.Kind, pts, pe.MemberID, pe.SaleID)
		case !s.Known:
			return hold(CodeRules, "%s of %d points for sale %s: head office does not know rule set version %d, so cannot check it "+
				"(publish the rule set, or list it in policy.rules_files)", pe.Kind, pts, pe.SaleID, s.RuleVersion)
		case s.Earned+pts > s.Allowed:
			return hold(CodeEarn, "%s of %d points for sale %s: with the %d already earned that is more than the %d its rule set %d allows",
				pe.Kind, pts, pe.SaleID, s.Earned, s.Allowed, s.RuleVersion)
		}
		if pe.Kind != ledger.KindBonus {
			break
		}
		switch b := ev.Bonus; {
		case pe.Reason == rules.BonusFirstPurchase && b.FirstPurchase:
			return hold(CodeBonus, "first-purchase bonus of %d points for member %s (sale %s): head office already credited the member one; held, not paid twice",
				pts, pe.MemberID, pe.SaleID)
		case pe.Reason == rules.BonusBirthday && (p.limits.BirthdayPerYear < 0 || b.Birthdays >= p.limits.BirthdayPerYear):
			return hold(CodeBonus, "birthday bonus of %d points for member %s (sale %s): the member was credited %d for the %d birthday, the allowance is %d; held, not paid twice",
				pts, pe.MemberID, pe.SaleID, b.Birthdays, b.BirthdayYear, max(p.limits.BirthdayPerYear, 0))
		}
	case ledger.KindRedeem, ledger.KindExpire:
		if pts > 0 {
			return hold(CodeSign, "%s of +%d points for member %s: it can only take points", pe.Kind, pts, pe.MemberID)
		}
	case ledger.KindAdjust:
		lim := p.limits
		switch {
		case lim.AdjustPerEvent < 0 || abs(pts) > lim.AdjustPerEvent:
			return hold(CodeAdjust, "adjustment of %d points for member %s is over the cap of %d per adjustment", pts, pe.MemberID, max(lim.AdjustPerEvent, 0))
		case lim.AdjustPerDay < 0 || ev.AdjustedToday+abs(pts) > lim.AdjustPerDay:
			return hold(CodeAdjust, "adjustment of %d points for member %s: with the %d adjusted today by register %s that is over the cap of %d a day",
				pts, pe.MemberID, ev.AdjustedToday, ev.Register, max(lim.AdjustPerDay, 0))
		}
	case ledger.KindReverse:
		// A reversal undoes an earlier event of the same register. One
		// that takes points needs no check; one that gives points back
		// (a refunded or voided sale's redemption) gives back at most
		// what that redemption took from the same member.
		if pts <= 0 {
			break
		}
		r := ev.Reversed
		switch {
		case !r.Found:
			return hold(CodeReverse, "reversal of +%d points for member %s names event %q, which is not an applied event of register %s",
				pts, pe.MemberID, pe.Reverses, ev.Register)
		case r.Held:
			return hold(CodeReverse, "reversal of +%d points for member %s undoes event %s, which head office holds for review (its points were never taken)",
				pts, pe.MemberID, pe.Reverses)
		case r.Kind != ledger.KindRedeem || r.MemberID != pe.MemberID:
			return hold(CodeReverse, "reversal of +%d points for member %s undoes %s event %s of member %s: only a redemption of the same member can be given back",
				pts, pe.MemberID, r.Kind, pe.Reverses, r.MemberID)
		case r.GivenBack+pts > -r.Points:
			return hold(CodeReverse, "reversal of +%d points for member %s: with the %d already given back that is more than the %d redemption %s took",
				pts, pe.MemberID, r.GivenBack, -r.Points, pe.Reverses)
		}
	default:
		if pts > 0 {
			return hold(CodeSign, "unknown kind %q adds %d points for member %s", pe.Kind, pts, pe.MemberID)
		}
	}
	return Verdict{}
}

func jsonOf(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
