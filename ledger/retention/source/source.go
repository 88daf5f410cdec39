package source

import (
	"fmt"
	"sort"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// Purchase converts a ledger purchase index entry: dated by its corrected
// time when the register corrected an untrusted one, untrusted (left out
// of the analysis, counted) while it is not.
func Purchase(p ledger.Purchase) retention.Purchase {
	at, ok := p.When()
	if !ok {
		at = p.WallTime
	}
	return retention.Purchase{SaleID: p.SaleID, Seq: p.Seq, At: at, ClockTrusted: ok, Untrusted: !ok, Amount: retention.Money(p.Amount), Categories: p.Categories}
}

// Enrolled is when the member enrolled, zero when the register's clock was
// not trusted then (a 1970 enrolment is no cohort).
func Enrolled(m ledger.Member) time.Time {
	if !m.EnrolledTrusted {
		return time.Time{}
	}
	return m.EnrolledAt
}

// Member builds a retention.Member from the ledger's member record and
// purchase index (as Ledger.Member and Ledger.Purchases return them).
func Member(m ledger.Member, ps []ledger.Purchase) retention.Member {
	out := retention.Member{ID: m.ID, Birthday: m.Birthday, EnrolledAt: Enrolled(m)}
	setProfile(&out, m)
	for _, p := range ps {
		out.Purchases = append(out.Purchases, Purchase(p))
	}
	return out
}

// setProfile copies name, addresses and consent. The ledger records one
// consent for all channels, with how it was given in its Channel field;
// it becomes consent events on every channel the member has an address
// for (in store when none), so withdrawals in its history hold. The
// member's Consent is the member's choice (ledger.Consent.Supersedes):
// a change in the history that lost to it (a grant that cannot be shown
// to follow a withdrawal, a withdrawal stamped by an untrusted clock) is
// left out where its date would otherwise make it the latest, and the
// choice itself counts from its own time.
func setProfile(out *retention.Member, m ledger.Member) {
	out.Name, out.Email, out.Phone = m.Name, m.Contact.Email, m.Contact.Phone
	out.Consent = m.Consent.Given
	hist := m.ConsentHistory
	if len(hist) == 0 && (m.Consent.Given || !m.Consent.At.IsZero()) {
		hist = []ledger.Consent{m.Consent}
	} else if cur := m.Consent; cur != (ledger.Consent{}) && !choiceIsLatest(hist, cur) {
		hist = make([]ledger.Consent, 0, len(m.ConsentHistory)+1)
		for _, h := range m.ConsentHistory {
			if h.Given == cur.Given || !h.At.After(cur.At) {
				hist = append(hist, h)
			}
		}
		hist = append(hist, cur)
	}
	var chans []string
	if out.Phone != "" {
		chans = append(chans, retention.ChannelSMS, retention.ChannelPhone)
	}
	if out.Email != "" {
		chans = append(chans, retention.ChannelEmail)
	}
	if len(chans) == 0 {
		chans = []string{retention.ChannelInStore}
	}
	for _, h := range hist {
		for _, ch := range chans {
			out.Consents = append(out.Consents, retention.Consent{Channel: ch, Given: h.Given, At: h.At, How: h.Channel})
		}
	}
}

// choiceIsLatest reports whether the member's choice cur is the last
// change of hist and no other change with another answer is dated after
// it: the history says what cur says, as it is (no copy).
func choiceIsLatest(hist []ledger.Consent, cur ledger.Consent) bool {
	if len(hist) == 0 || hist[len(hist)-1] != cur {
		return false
	}
	for _, h := range hist {
		if h.Given != cur.Given && h.At.After(cur.At) {
			return false
		}
	}
	return true
}

// PurchaseSource lists every purchase of every member, such as head
// office's store (sync/hq/hqstore).
type PurchaseSource interface {
	EachPurchase(fn func(memberID string, p ledger.Purchase) error) error
}

// MemberSource lists member records (consent, birthday, enrolment).
type MemberSource interface {
	EachMember(fn func(m ledger.Member) error) error
}

// Collect reads members and purchases into retention Members sorted by
// id. members may be nil: then nobody has consent and nobody a birthday.
func Collect(src PurchaseSource, members MemberSource) ([]retention.Member, error) {
	byID := map[string]*retention.Member{}
	get := func(id string) *retention.Member {
		m := byID[id]
		if m == nil {
			m = &retention.Member{ID: id}
			byID[id] = m
		}
		return m
	}
	if members != nil {
		if err := members.EachMember(func(lm ledger.Member) error {
			m := get(lm.ID)
			m.Birthday, m.EnrolledAt = lm.Birthday, Enrolled(lm)
			setProfile(m, lm)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("read members: %w", err)
		}
	}
	if err := src.EachPurchase(func(id string, p ledger.Purchase) error {
		m := get(id)
		m.Purchases = append(m.Purchases, Purchase(p))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read purchases: %w", err)
	}
	out := make([]retention.Member, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
