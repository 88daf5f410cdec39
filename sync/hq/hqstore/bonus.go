package hqstore

import (
	"strconv"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
	"github.com/loyalty-terminal/loyalty/sync/hq/policy"
)

// The once-per-member bonuses (docs/hq.md "Policy", docs/protocol.md
// "Member summaries"). Head office keeps, per member, whether it credited
// a first-purchase bonus and how many birthday bonuses it credited for
// each birthday (year), as counters of the policy's Txn methods under the
// pseudo-register bonusScope(member), which no register id can be
// (register ids have no ':'). They are written when a bonus event's
// effect is applied (by ingest, or by a person approving a held one),
// with or without a policy, so the summaries carry them and the policy
// holds a second bonus (policy.CodeBonus). A flag and a count per year:
// no history.
//
// bonusState is what a summary reads, one counter: the latest birthday
// year credited times 2, plus 1 once a first-purchase bonus was credited.
const (
	bonusState       = "bonus/state"
	bonusBirthdayPre = "bonus/birthday/" // + year: how many credited for it
)

func bonusScope(member string) string { return "member:" + member }

// onceBonus reports whether p is a bonus head office credits once per
// member (first purchase) or per birthday.
func onceBonus(p *pointData) bool {
	return p.Kind == ledger.KindBonus && (p.Reason == rules.BonusFirstPurchase || p.Reason == rules.BonusBirthday)
}

// birthdayYear is the birthday year a birthday bonus event was for, from
// the member's profile at head office and the event's time.
func (a *applier) birthdayYear(p *pointData) (int, error) {
	at, err := time.Parse(time.RFC3339Nano, p.WallTime)
	if err != nil {
		at = p.recAt
	}
	if at.IsZero() {
		at, _ = a.opts.Clock.Now()
	}
	m, err := a.member(p.MemberID)
	if err != nil {
		return 0, err
	}
	prof, err := m.profile()
	if err != nil {
		return 0, err
	}
	return policy.BirthdayYear(prof.Birthday, at), nil
}

// bonusFacts is what head office credited the member of the bonus p is
// (policy.Event.Bonus). The member is read first, which locks it on a
// backend with several writers, so two registers' bonuses of one member
// are decided one after the other.
func (a *applier) bonusFacts(p *pointData) (policy.Bonus, error) {
	var b policy.Bonus
	if !onceBonus(p) {
		return b, nil
	}
	if _, err := a.member(p.MemberID); err != nil {
		return b, err
	}
	scope := bonusScope(p.MemberID)
	if p.Reason == rules.BonusFirstPurchase {
		n, err := a.tx.PolicyAdjusted(scope, bonusState)
		b.FirstPurchase = n&1 != 0
		return b, err
	}
	y, err := a.birthdayYear(p)
	if err != nil {
		return b, err
	}
	n, err := a.tx.PolicyAdjusted(scope, bonusBirthdayPre+strconv.Itoa(y))
	b.BirthdayYear, b.Birthdays = y, int(n)
	return b, err
}

// creditedBonus records an applied once-per-member bonus.
func (a *applier) creditedBonus(p *pointData) error {
	if !onceBonus(p) || p.Points <= 0 {
		return nil
	}
	scope := bonusScope(p.MemberID)
	st, err := a.tx.PolicyAdjusted(scope, bonusState)
	if err != nil {
		return err
	}
	if p.Reason == rules.BonusFirstPurchase {
		if st&1 != 0 {
			return nil
		}
		return a.tx.PutPolicyAdjusted(scope, bonusState, st|1)
	}
	y, err := a.birthdayYear(p)
	if err != nil {
		return err
	}
	key := bonusBirthdayPre + strconv.Itoa(y)
	n, err := a.tx.PolicyAdjusted(scope, key)
	if err != nil {
		return err
	}
	if err := a.tx.PutPolicyAdjusted(scope, key, n+1); err != nil {
		return err
	}
	if st>>1 >= int64(y) {
		return nil
	}
	return a.tx.PutPolicyAdjusted(scope, bonusState, int64(y)<<1|st&1)
}

// Values of MemberSummary.FirstBonus.
const (
	FirstBonusPending = ledger.FirstBonusPending // the member bought, no first-purchase bonus credited
	FirstBonusPaid    = ledger.FirstBonusPaid    // a first-purchase bonus was credited
)

// bonusSummary reads the member's bonus state for its summary; counted
// says head office has a purchase of the member that counts for its
// retention view (so the purchase days need no second look). A member
// with any purchase day recorded (one dated ahead of head office's
// clock too: a purchase is a purchase) and no first-purchase bonus
// credited has it pending.
func bonusSummary(tx Txn, member string, counted bool) (first string, birthdayYear int, err error) {
	st, err := tx.PolicyAdjusted(bonusScope(member), bonusState)
	if err != nil {
		return "", 0, err
	}
	switch {
	case st&1 != 0:
		first = FirstBonusPaid
	case counted:
		first = FirstBonusPending
	default:
		d, err := cumUpTo(tx, member, MaxFigureDay)
		if err != nil {
			return "", 0, err
		}
		if d.CumDays > 0 {
			first = FirstBonusPending
		}
	}
	return first, int(st >> 1), nil
}
